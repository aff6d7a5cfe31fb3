// What each command loads, read from the source's import graph (what Bun loads: type-only imports
// are dropped, dynamic imports count): `serve` starts without the client or the RESP reply reader,
// `put` and `get` without the server or SQLite, and only store/ opens `bun:sqlite`. The static
// graph (what loads before any code runs) pins start-up and idle memory: a server in memory mode
// loads no node:* module, SQLite or ioredis, and the write fast path only the TCP client.

import { describe, expect, test } from "bun:test";
import { readdirSync, readFileSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";

const SRC = resolve(import.meta.dir, "../../src");
const transpiler = new Bun.Transpiler({ loader: "ts" });

/** The specifiers a source file loads at run time (static and dynamic, or static only; not `import type`). */
function importsOf(file: string, staticOnly = false): string[] {
  const source = readFileSync(file, "utf8").replace(/^#!.*/, "");
  // A macro (`with { type: "macro" }`, the web console's bundle) runs at build time, not in the binary.
  const macros = new Set([...source.matchAll(/from\s+"([^"]+)"\s+with\s*\{\s*type:\s*"macro"\s*\}/g)].map((m) => m[1]));
  return transpiler
    .scanImports(source)
    .filter((i) => (!staticOnly || i.kind === "import-statement") && !(staticOnly && macros.has(i.path)))
    .map((i) => i.path);
}

/**
 * Every file of src/ (relative paths) and every outside module that `entry` loads, itself
 * included; with staticOnly, only what its static imports load (what is loaded before it runs).
 */
function importGraph(entry: string, staticOnly = false): { files: Set<string>; modules: Set<string> } {
  const files = new Set<string>();
  const modules = new Set<string>();
  const queue = [resolve(SRC, entry)];
  while (queue.length > 0) {
    const file = queue.pop()!;
    const name = relative(SRC, file);
    if (files.has(name)) continue;
    files.add(name);
    for (const specifier of importsOf(file, staticOnly)) {
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

  test("serve's static graph loads no node:* module, no SQLite and no ioredis: --data, --redis, --acl and TLS load theirs", () => {
    const graph = importGraph("commands/serve.ts", true);
    expect(graph.files).toContain("server/index.ts");
    expect(graph.files).toContain("server/auth.ts");
    // node:buffer's isUtf8 is the one allowed: the HTTP and WebSocket transports check every text message with it.
    expect([...graph.modules].filter((m) => m !== "node:buffer" && (m.startsWith("node:") || m.startsWith("bun:") || m.includes("ioredis")))).toEqual([]);
    expect([...graph.modules].filter((m) => !m.startsWith("node:"))).toEqual(["citty", "consola/core"]);
    expect([...graph.files].filter((file) => file.startsWith("store/"))).toEqual([]);
  });

  test("serve's fast path (commands/_serve.ts) loads the server without citty (and so without node:util)", () => {
    const graph = importGraph("commands/_serve.ts", true);
    expect(graph.files).toContain("server/index.ts");
    expect([...graph.modules].sort()).toEqual(["consola/core", "node:buffer"]);
  });

  test("the write fast path loads the reply reader, the TCP client's wording and the settings, and no node:* module, citty or consola", () => {
    const graph = importGraph("commands/_write-fast.ts", true);
    expect(graph.files).toContain("client/tcp-basics.ts");
    expect(graph.files).toContain("protocol/resp-reader.ts");
    expect(graph.files).toContain("config.ts");
    expect(graph.files).not.toContain("client/tcp.ts");
    expect([...graph.modules]).toEqual([]);
    expect([...graph.files].filter((file) => !/^(client|protocol|core)\/|^config\.ts$|^commands\/_(write-fast|exit|limit)\.ts$/.test(file))).toEqual([]);
  });

  test("src/cli.ts loads nothing before it looks at its arguments", () => {
    expect(importGraph("cli.ts", true).files).toEqual(new Set(["cli.ts"]));
    expect([...importGraph("cli.ts", true).modules]).toEqual([]);
  });
});
