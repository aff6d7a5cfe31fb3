// Release build: compiles src/cli.ts into one standalone msgbus binary per platform, packs each
// into an archive and writes dist/SHA256SUMS. `--local` is the quick developer/test build.
//
//   bun build.ts                        every release target: binaries, archives, SHA256SUMS
//   bun build.ts --target linux-arm64   one target (repeatable), with its archive
//   bun build.ts --local                the host's binary only, as dist/msgbus (what tests run)
//   bun build.ts --local --target linux-arm64   dist/msgbus for another platform (e.g. qemu)

import { existsSync, mkdirSync, readdirSync, rmSync, statSync } from "node:fs";
import { basename, join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { deflateRawSync, gzipSync } from "node:zlib";

const ROOT = import.meta.dir;
const DIST = join(ROOT, "dist");

/** Release targets: our platform name and Bun's compile target for it. */
const TARGETS = [
  { name: "linux-x64", bun: "bun-linux-x64" },
  { name: "linux-arm64", bun: "bun-linux-arm64" },
  { name: "windows-x64", bun: "bun-windows-x64" },
  { name: "darwin-x64", bun: "bun-darwin-x64" },
  { name: "darwin-arm64", bun: "bun-darwin-arm64" },
] as const;
type Target = (typeof TARGETS)[number];

const options = parseOptions();

if (options.help) {
  console.log(`usage: bun build.ts [--local] [--target <${TARGETS.map((t) => t.name).join("|")}>]... [--entry file]`);
  process.exit(0);
}

const version: string = (await Bun.file(join(ROOT, "package.json")).json()).version;
const entry = resolve(ROOT, options.entry!);
const targets = (options.target ?? []).map(findTarget);

try {
  if (options.local) {
    // No target: Bun reuses its own executable for the host, so nothing is downloaded.
    const target = targets[0];
    if (targets.length > 1) fail("--local builds one binary; give at most one --target");
    const file = join(DIST, target?.name.startsWith("windows") || (!target && process.platform === "win32") ? "msgbus.exe" : "msgbus");
    await compile(target, file);
    report(file);
  } else {
    // A full build removes earlier release files so no stale archive is ever released
    // (dist/msgbus stays: tests running at the same time may be using it).
    if (targets.length === 0) removeReleaseFiles();
    for (const target of targets.length ? targets : TARGETS) {
      const file = join(DIST, `msgbus-${target.name}${target.name.startsWith("windows") ? ".exe" : ""}`);
      await compile(target, file);
      report(file);
      for (const archive of await pack(target, file)) report(archive);
    }
    report(await writeChecksums());
  }
} catch (error) {
  fail(error instanceof Error ? error.message : String(error));
}

function parseOptions() {
  try {
    return parseArgs({
      args: Bun.argv.slice(2),
      options: {
        local: { type: "boolean", default: false },
        target: { type: "string", multiple: true },
        entry: { type: "string", default: "src/cli.ts" },
        help: { type: "boolean", short: "h", default: false },
      },
    }).values;
  } catch (error) {
    fail((error as Error).message);
  }
}

function removeReleaseFiles(): void {
  if (!existsSync(DIST)) return;
  for (const file of readdirSync(DIST)) {
    if (file.startsWith("msgbus-") || file === "SHA256SUMS") rmSync(join(DIST, file), { force: true });
  }
}

function findTarget(name: string): Target {
  const target = TARGETS.find((t) => t.name === name || t.bun === name || `msgbus-${t.name}` === name);
  if (!target) fail(`unknown target "${name}"; one of: ${TARGETS.map((t) => t.name).join(", ")}`);
  return target!;
}

async function compile(target: Target | undefined, outfile: string): Promise<void> {
  mkdirSync(DIST, { recursive: true });
  const result = await Bun.build({
    entrypoints: [entry],
    minify: true,
    // Start-up (docs/BENCHMARKS.md): with splitting, each lazily imported command is its own chunk,
    // so the built-in modules only the server needs (bun:sqlite, node:crypto, consola's tty) load
    // with `serve` and not with `msgbus put`; bytecode spares parsing and compiling at each start.
    splitting: true,
    format: "esm",
    bytecode: true,
    // A global constant the CLI prints for --version (src/cli.ts: `declare const MSGBUS_VERSION`).
    define: { MSGBUS_VERSION: JSON.stringify(version) },
    compile: {
      ...(target ? { target: target.bun } : {}),
      outfile,
      // A server binary must not change behaviour because of a .env or bunfig.toml in its cwd.
      autoloadDotenv: false,
      autoloadBunfig: false,
    },
    throw: false,
  });
  if (!result.success) {
    for (const log of result.logs) console.error(log);
    throw new Error(`build of ${target?.name ?? "host"} failed`);
  }
}

/** tar.gz for every target (binary named msgbus, or msgbus.exe), plus a .zip for Windows. */
async function pack(target: Target, binary: string): Promise<string[]> {
  const inner = target.name.startsWith("windows") ? "msgbus.exe" : "msgbus";
  const data = new Uint8Array(await Bun.file(binary).arrayBuffer());
  const mtime = Number(process.env.SOURCE_DATE_EPOCH ?? Math.floor(Date.now() / 1000));
  const base = join(DIST, `msgbus-${target.name}`);
  await Bun.write(`${base}.tar.gz`, gzipSync(tar(inner, data, mtime), { level: 9 }));
  if (!target.name.startsWith("windows")) return [`${base}.tar.gz`];
  await Bun.write(`${base}.zip`, zip(inner, data, mtime));
  return [`${base}.tar.gz`, `${base}.zip`];
}

/** A one-file ustar archive; written here because Bun.Archive cannot mark a file executable. */
function tar(name: string, data: Uint8Array, mtime: number): Uint8Array {
  const header = new Uint8Array(512);
  const put = (offset: number, text: string) => header.set(new TextEncoder().encode(text), offset);
  const octal = (value: number, width: number) => value.toString(8).padStart(width - 1, "0") + "\0";
  put(0, name);
  put(100, octal(0o755, 8));
  put(108, octal(0, 8));
  put(116, octal(0, 8));
  put(124, octal(data.length, 12));
  put(136, octal(mtime, 12));
  put(148, " ".repeat(8)); // checksum field counts as spaces while summing
  put(156, "0");
  put(257, "ustar\0" + "00");
  put(265, "root");
  put(297, "root");
  put(
    148,
    octal(
      header.reduce((sum, byte) => sum + byte, 0),
      7,
    ) + " ",
  );
  const padded = Math.ceil(data.length / 512) * 512;
  const out = new Uint8Array(512 + padded + 1024); // data padded to a block, then two zero blocks
  out.set(header, 0);
  out.set(data, 512);
  return out;
}

/** A one-file zip (deflate), so Windows users can unpack with Explorer. No zip64: files < 4 GiB. */
function zip(name: string, data: Uint8Array, mtime: number): Uint8Array {
  const nameBytes = new TextEncoder().encode(name);
  const body = deflateRawSync(data, { level: 9 });
  const crc = Bun.hash.crc32(data);
  const date = new Date(mtime * 1000);
  const dosTime = (date.getUTCHours() << 11) | (date.getUTCMinutes() << 5) | (date.getUTCSeconds() >> 1);
  const dosDate = ((date.getUTCFullYear() - 1980) << 9) | ((date.getUTCMonth() + 1) << 5) | date.getUTCDate();

  const local = new DataView(new ArrayBuffer(30));
  local.setUint32(0, 0x04034b50, true);
  local.setUint16(4, 20, true); // version needed: 2.0 (deflate)
  local.setUint16(8, 8, true); // method: deflate
  local.setUint16(10, dosTime, true);
  local.setUint16(12, dosDate, true);
  local.setUint32(14, crc, true);
  local.setUint32(18, body.length, true);
  local.setUint32(22, data.length, true);
  local.setUint16(26, nameBytes.length, true);

  const central = new DataView(new ArrayBuffer(46));
  central.setUint32(0, 0x02014b50, true);
  central.setUint16(4, (3 << 8) | 20, true); // made by Unix, so unzip there keeps the 0755 mode
  central.setUint16(6, 20, true);
  central.setUint16(10, 8, true);
  central.setUint16(12, dosTime, true);
  central.setUint16(14, dosDate, true);
  central.setUint32(16, crc, true);
  central.setUint32(20, body.length, true);
  central.setUint32(24, data.length, true);
  central.setUint16(28, nameBytes.length, true);
  central.setUint32(38, (0o100755 << 16) >>> 0, true);
  central.setUint32(42, 0, true); // local header offset

  const centralOffset = 30 + nameBytes.length + body.length;
  const end = new DataView(new ArrayBuffer(22));
  end.setUint32(0, 0x06054b50, true);
  end.setUint16(8, 1, true);
  end.setUint16(10, 1, true);
  end.setUint32(12, 46 + nameBytes.length, true);
  end.setUint32(16, centralOffset, true);

  const parts = [new Uint8Array(local.buffer), nameBytes, body, new Uint8Array(central.buffer), nameBytes, new Uint8Array(end.buffer)];
  const out = new Uint8Array(parts.reduce((sum, part) => sum + part.length, 0));
  let offset = 0;
  for (const part of parts) {
    out.set(part, offset);
    offset += part.length;
  }
  return out;
}

/** SHA256SUMS over the archives in dist/, in `sha256sum -c` format. */
async function writeChecksums(): Promise<string> {
  const archives = readdirSync(DIST)
    .filter((f) => f.endsWith(".tar.gz") || f.endsWith(".zip"))
    .sort();
  const lines: string[] = [];
  for (const file of archives) {
    const hasher = new Bun.CryptoHasher("sha256");
    hasher.update(await Bun.file(join(DIST, file)).arrayBuffer());
    lines.push(`${hasher.digest("hex")}  ${file}`);
  }
  const out = join(DIST, "SHA256SUMS");
  await Bun.write(out, lines.join("\n") + "\n");
  return out;
}

function report(file: string): void {
  const bytes = statSync(file).size;
  const size = bytes < 1024 * 1024 ? `${bytes} B` : `${(bytes / 1024 / 1024).toFixed(1)} MiB`;
  console.log(`${join("dist", basename(file)).padEnd(34)} ${size.padStart(11)}`);
}

function fail(message: string): never {
  console.error(`build: ${message}`);
  process.exit(1);
}
