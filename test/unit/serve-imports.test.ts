// What each command loads, read from the source's import graph (what Bun loads: type-only imports
// are dropped, dynamic imports count): `serve` starts without the client or the RESP reply reader,
// `put` and `get` without the server or SQLite, and only store/ opens `bun:sqlite`.

import { describe, expect, test } from "bun:test";
import { readdirSync, readFileSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";

const SRC = resolve(import.meta.dir, "../../src");
const transpiler = new Bun.Transpiler({ loader: "ts" });

/** The specifiers a source file loads at run time (static and dynamic; not `import type`). */
function importsOf(file: string): string[] {
  return transpiler.scanImports(readFileSync(file, "utf8").replace(/^#!.*/, "")).map((i) => i.path);
}

/** Every file of src/ (relative paths) and every outside module that `entry` loads, itself included. */
function importGraph(entry: string): { files: Set<string>; modules: Set<string> } {
  const files = new Set<string>();
  const modules = new Set<string>();
  const queue = [resolve(SRC, entry)];
  while (queue.length > 0) {
    const file = queue.pop()!;
    const name = relative(SRC, file);
    if (files.has(name)) continue;
    files.add(name);
    for (const specifier of importsOf(file)) {
      if (specifier.startsWith(".")) queue.push(resolve(dirname(file), specifier));
      else modules.add(specifier);
    }
  }
  return { files, modules };
}

function sourceFiles(dir = SRC): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    return entry.isDirectory() ? sourceFiles(path) : entry.name.endsWith(".ts") ? [path] : [];
  });
}

/** The files of protocol/ that define the client's RESP reply reader (a class named …Reader). */
const readerFiles = sourceFiles(join(SRC, "protocol")).filter((file) => /^export class \w*Reader\b/m.test(readFileSync(file, "utf8")));
/** Until protocol/resp.ts is split, the reader shares its file with the server's request parser. */
const readerSharesParserFile = readerFiles.some((file) => /^export class RespParser\b/m.test(readFileSync(file, "utf8")));

describe("what each command loads", () => {
  const serve = importGraph("commands/serve.ts");

  test("the walk sees serve's own imports (the server, the configuration)", () => {
    expect(serve.files).toContain("server/index.ts");
    expect(serve.files).toContain("config.ts");
    expect(readerFiles.length).toBeGreaterThan(0);
  });

  test("serve loads nothing under src/client/", () => {
    expect([...serve.files].filter((file) => file.startsWith("client/"))).toEqual([]);
  });

  test("no file serve loads imports the RESP reply reader", () => {
    const importers = [...serve.files].filter((file) => /\bRespReader\b/.test(readFileSync(join(SRC, file), "utf8")) && !readerFiles.includes(join(SRC, file)));
    expect(importers).toEqual([]);
  });

  test.skipIf(readerSharesParserFile)("serve does not load the file of the RESP reply reader", () => {
    expect([...serve.files].filter((file) => readerFiles.includes(join(SRC, file)))).toEqual([]);
  });

  for (const command of ["put", "get"]) {
    test(`${command} loads nothing under src/server/ and not bun:sqlite`, () => {
      const graph = importGraph(`commands/${command}.ts`);
      expect(graph.files).toContain("client/tcp.ts");
      expect([...graph.files].filter((file) => file.startsWith("server/") || file.startsWith("store/"))).toEqual([]);
      expect(graph.modules.has("bun:sqlite")).toBe(false);
    });
  }

  test("only src/store/ imports bun:sqlite", () => {
    const importers = sourceFiles()
      .filter((file) => importsOf(file).includes("bun:sqlite"))
      .map((file) => relative(SRC, file));
    expect(importers.length).toBeGreaterThan(0);
    expect(importers.filter((file) => !file.startsWith("store/"))).toEqual([]);
  });
});
