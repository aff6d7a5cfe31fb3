// The house rules for imports, checked on every run: no cycle anywhere in src/, core/ imports
// nothing outside core/, and the one-way order commands -> client | server -> core, protocol, store.
// Run-time imports come from Bun's own scanner (it sees `export * from`, dynamic `import()` and
// side-effect imports, skips comments, strings and type-only imports); the layer rules also count
// type-only imports, found by a statement-level pattern with comments removed.

import { describe, expect, test } from "bun:test";
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";

const SRC = resolve(import.meta.dir, "..", "..", "src");
const scanner = new Bun.Transpiler({ loader: "ts" });

function sourceFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return sourceFiles(path);
    return /\.tsx?$/.test(name) && !/\.d\.ts$/.test(name) ? [path] : [];
  });
}

/** A relative specifier as a file: as written, or with `.ts` or `/index.ts` added (as the bundler would). */
function resolveSpecifier(from: string, spec: string): string {
  const base = resolve(dirname(from), spec);
  for (const candidate of [base, `${base}.ts`, join(base, "index.ts")]) if (existsSync(candidate) && statSync(candidate).isFile()) return candidate;
  return base;
}

const relativeOnly = (spec: string) => spec.startsWith("./") || spec.startsWith("../");

/** Relative imports that load code at run time (`import type`, `export type` and `{ type X }` are erased). */
function runtimeImports(file: string): string[] {
  return scanner
    .scanImports(readFileSync(file, "utf8").replace(/^#!.*/, "")) // the scanner refuses a shebang line
    .map((i) => i.path)
    .filter(relativeOnly)
    .map((spec) => resolveSpecifier(file, spec));
}

/** Every relative import, type-only ones included (a layer rule holds for types too). */
function importsOfAnyKind(file: string): string[] {
  const text = readFileSync(file, "utf8")
    .replace(/\/\*[\s\S]*?\*\//g, "")
    .replace(/(^|\s)\/\/.*$/gm, "$1");
  const statements = /^\s*(?:import|export)\b[^;]*?\bfrom\s*["']([^"']+)["']|^\s*import\s*["']([^"']+)["']|\bimport\(\s*["']([^"']+)["']\s*\)/gm;
  const specs = [...text.matchAll(statements)].map((m) => (m[1] ?? m[2] ?? m[3])!).filter(relativeOnly);
  return [...new Set([...specs.map((spec) => resolveSpecifier(file, spec)), ...runtimeImports(file)])];
}

const files = sourceFiles(SRC);
const graph = new Map(files.map((f) => [f, runtimeImports(f).filter((target) => files.includes(target))]));
const area = (file: string) => relative(SRC, file).split("/")[0]!;
const edge = (from: string, to: string) => `${relative(SRC, from)} -> ${relative(SRC, to)}`;

describe("imports", () => {
  test("the scanner finds imports (src/cli.ts loads its subcommands)", () => {
    expect(graph.get(join(SRC, "cli.ts"))?.length ?? 0).toBeGreaterThan(0);
  });

  test("every relative import names a file that exists", () => {
    const missing = files.flatMap((f) =>
      importsOfAnyKind(f)
        .filter((t) => !files.includes(t))
        .map((t) => edge(f, t)),
    );
    expect(missing).toEqual([]);
  });

  test("src/ has no import cycle", () => {
    const cycles: string[] = [];
    const state = new Map<string, "open" | "done">();
    const stack: string[] = [];
    const visit = (file: string) => {
      state.set(file, "open");
      stack.push(file);
      for (const next of graph.get(file) ?? []) {
        if (state.get(next) === "open") cycles.push([...stack.slice(stack.indexOf(next)), next].map((f) => relative(SRC, f)).join(" -> "));
        else if (!state.has(next)) visit(next);
      }
      stack.pop();
      state.set(file, "done");
    };
    for (const file of files) if (!state.has(file)) visit(file);
    expect(cycles).toEqual([]);
  });

  test("core/ imports nothing outside core/", () => {
    const outside = files
      .filter((f) => area(f) === "core")
      .flatMap((f) =>
        importsOfAnyKind(f)
          .filter((t) => area(t) !== "core")
          .map((t) => edge(f, t)),
      );
    expect(outside).toEqual([]);
  });

  test("imports point one way: protocol and store never reach server, client or commands", () => {
    const upward: Record<string, string[]> = {
      protocol: ["server", "client", "commands", "store"],
      store: ["server", "client", "commands"],
      server: ["client", "commands"],
      client: ["server", "commands"],
    };
    const wrong = files.flatMap((f) => {
      const banned = upward[area(f)] ?? [];
      return importsOfAnyKind(f)
        .filter((t) => banned.includes(area(t)))
        .map((t) => edge(f, t));
    });
    expect(wrong).toEqual([]);
  });
});
