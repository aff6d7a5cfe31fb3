// Release build: compiles src/cli.ts into one standalone msgbus binary per platform, packs each
// with LICENSE and README.md into archives (.tar.gz and .tar.xz; .zip for Windows), copies the
// install scripts and writes dist/SHA256SUMS over all of them. `--local` is the quick developer/test build.
//
//   bun build.ts                        every release target: binaries, archives, install scripts, SHA256SUMS
//   bun build.ts --target linux-arm64   one target (repeatable), with its archives
//   bun build.ts --no-xz                no .tar.xz (xz -6 takes ~1 min per target on a small machine)
//   bun build.ts --local                the host's binary only, as dist/msgbus (what tests run)
//   bun build.ts --local --target linux-arm64   dist/msgbus for another platform (e.g. qemu)
//   bun build.ts --local --target linux-x64-musl --out /tmp/x/msgbus   elsewhere than dist/

import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync } from "node:fs";
import { basename, dirname, join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { deflateRawSync, gzipSync } from "node:zlib";

const ROOT = import.meta.dir;
const DIST = join(ROOT, "dist");

/** Release targets: our platform name and Bun's compile target for it (docs/RELEASING.md: what runs where). */
const TARGETS = [
  { name: "linux-x64", bun: "bun-linux-x64" },
  { name: "linux-x64-baseline", bun: "bun-linux-x64-baseline" }, // x64 CPUs without AVX2 (install.sh picks it)
  { name: "linux-x64-musl", bun: "bun-linux-x64-musl" }, // Alpine and other musl systems
  { name: "linux-arm64", bun: "bun-linux-arm64" },
  { name: "linux-arm64-musl", bun: "bun-linux-arm64-musl" },
  { name: "windows-x64", bun: "bun-windows-x64" },
  { name: "darwin-x64", bun: "bun-darwin-x64" },
  { name: "darwin-arm64", bun: "bun-darwin-arm64" },
] as const;
type Target = (typeof TARGETS)[number];

/** Shipped beside the binary in every archive, and the install scripts shipped beside the archives. */
const DOCS = ["LICENSE", "README.md"];
const INSTALLERS = ["install.sh", "install.ps1"];

const options = parseOptions();

if (options.help) {
  console.log(`usage: bun build.ts [--local] [--target <${TARGETS.map((t) => t.name).join("|")}>]... [--no-xz] [--out file (with --local)] [--entry file]`);
  process.exit(0);
}

const version: string = (await Bun.file(join(ROOT, "package.json")).json()).version;
const entry = resolve(ROOT, options.entry!);
const targets = (options.target ?? []).map(findTarget);
// Archive mtimes and the build date of --version: SOURCE_DATE_EPOCH when set (reproducible builds).
const mtime = Number(process.env.SOURCE_DATE_EPOCH || Math.floor(Date.now() / 1000));
const commit = gitCommit();
const xz = !options.local && !options["no-xz"] && Bun.which("xz") !== null;
let xzQueue: Promise<unknown> = Promise.resolve(); // one xz at a time (it uses every core), beside the next compile

try {
  if (options.local) {
    // No target: Bun reuses its own executable for the host, so nothing is downloaded.
    const target = targets[0];
    if (targets.length > 1) fail("--local builds one binary; give at most one --target");
    const windows = target ? isWindows(target) : process.platform === "win32";
    const file = options.out ? resolve(options.out) : join(DIST, windows ? "msgbus.exe" : "msgbus");
    await compile(target, file);
    report(file);
  } else {
    if (options.out) fail("--out goes with --local");
    if (!xz) console.log(options["no-xz"] ? "no .tar.xz: --no-xz" : "no .tar.xz: the xz command is not installed (apt-get install xz-utils)");
    // A full build removes earlier release files so no stale archive is ever released
    // (dist/msgbus stays: tests running at the same time may be using it).
    if (targets.length === 0) removeReleaseFiles();
    for (const target of targets.length ? targets : TARGETS) {
      const file = join(DIST, `msgbus-${target.name}${isWindows(target) ? ".exe" : ""}`);
      await compile(target, file);
      report(file);
      for (const archive of await pack(target, file)) report(archive);
    }
    await xzQueue;
    // The install scripts name the repository their downloads come from: OWNER/msgbus until a
    // release build (GITHUB_REPOSITORY in GitHub Actions, or MSGBUS_REPOSITORY) says which.
    const repository = process.env.MSGBUS_REPOSITORY ?? process.env.GITHUB_REPOSITORY;
    for (const name of INSTALLERS) {
      const text = readFileSync(join(ROOT, name), "utf8");
      await Bun.write(join(DIST, name), repository ? text.replaceAll("OWNER/msgbus", repository) : text);
      report(join(DIST, name));
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
        out: { type: "string" },
        "no-xz": { type: "boolean", default: false },
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
    if (file.startsWith("msgbus-") || file === "SHA256SUMS" || INSTALLERS.includes(file)) rmSync(join(DIST, file), { force: true });
  }
}

function findTarget(name: string): Target {
  const target = TARGETS.find((t) => t.name === name || t.bun === name || `msgbus-${t.name}` === name);
  if (!target) fail(`unknown target "${name}"; one of: ${TARGETS.map((t) => t.name).join(", ")}`);
  return target!;
}

function isWindows(target: Target): boolean {
  return target.name.startsWith("windows");
}

/** The commit built: MSGBUS_COMMIT (the Dockerfile's), GITHUB_SHA in CI, else git's HEAD (-dirty for uncommitted changes), else "unknown". */
function gitCommit(): string {
  const sha = (process.env.MSGBUS_COMMIT || process.env.GITHUB_SHA)?.slice(0, 12);
  if (sha) return sha;
  if (!Bun.which("git")) return "unknown";
  const head = Bun.spawnSync(["git", "rev-parse", "--short=12", "HEAD"], { cwd: ROOT, stderr: "ignore" });
  if (!head.success) return "unknown";
  const dirty = Bun.spawnSync(["git", "status", "--porcelain", "--untracked-files=no"], { cwd: ROOT, stderr: "ignore" });
  return head.stdout.toString().trim() + (dirty.success && dirty.stdout.length > 0 ? "-dirty" : "");
}

/** The host's platform name, for a --local build without --target. */
function hostName(): string {
  return `${process.platform === "win32" ? "windows" : process.platform}-${process.arch}`;
}

// Every compile goes through here: the one place for Bun.build's options (minify, defines, compile flags).
async function compile(target: Target | undefined, outfile: string): Promise<void> {
  mkdirSync(dirname(outfile), { recursive: true });
  const date = new Date(mtime * 1000).toISOString().replace(/\.\d+Z$/, "Z");
  const result = await Bun.build({
    entrypoints: [entry],
    minify: true,
    // Start-up (docs/BENCHMARKS.md): with splitting, each lazily imported command is its own chunk,
    // so the built-in modules only the server needs (bun:sqlite, node:crypto, consola's tty) load
    // with `serve` and not with `msgbus put`; bytecode spares parsing and compiling at each start.
    splitting: true,
    format: "esm",
    bytecode: true,
    // Global constants the CLI prints for --version (src/cli.ts: `declare const MSGBUS_VERSION`,
    // `MSGBUS_BUILD`), e.g. "0.1.0 (commit 4d03afe1c2b3, built 2025-11-30T13:20:00Z, linux-x64)".
    define: {
      MSGBUS_VERSION: JSON.stringify(version),
      MSGBUS_BUILD: JSON.stringify(`commit ${commit}, built ${date}, ${target?.name ?? hostName()}`),
    },
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

type Entry = { name: string; data: Uint8Array; mode: number };

/**
 * The archives of one target, each holding a folder msgbus-<target>/ with the binary (msgbus, or
 * msgbus.exe; mode 0755), LICENSE and README.md: .tar.gz and .tar.xz (queued) for unix, .zip for Windows.
 */
async function pack(target: Target, binary: string): Promise<string[]> {
  const folder = `msgbus-${target.name}`;
  const entries: Entry[] = [
    { name: `${folder}/${isWindows(target) ? "msgbus.exe" : "msgbus"}`, data: new Uint8Array(await Bun.file(binary).arrayBuffer()), mode: 0o755 },
    ...DOCS.map((name) => ({ name: `${folder}/${name}`, data: new Uint8Array(readFileSync(join(ROOT, name))), mode: 0o644 })),
  ];
  const base = join(DIST, folder);
  if (isWindows(target)) {
    await Bun.write(`${base}.zip`, zip(entries));
    return [`${base}.zip`];
  }
  const tarball = tar(folder, entries);
  await Bun.write(`${base}.tar.gz`, gzipSync(tarball, { level: 9 }));
  if (xz) {
    const out = `${base}.tar.xz`;
    xzQueue = xzQueue.then(async () => {
      const proc = Bun.spawn(["xz", "-6", "-T0", "-c"], { stdin: new Blob([tarball]), stdout: Bun.file(out), stderr: "inherit" });
      if ((await proc.exited) !== 0) throw new Error(`xz ${basename(out)} failed`);
      report(out);
    });
  }
  return [`${base}.tar.gz`];
}

/** A ustar archive of one folder; written here because Bun.Archive cannot mark a file executable. */
function tar(folder: string, entries: Entry[]): Uint8Array {
  const blocks: Uint8Array[] = [header(`${folder}/`, 0, 0o755, "5")];
  for (const entry of entries) {
    blocks.push(header(entry.name, entry.data.length, entry.mode, "0"));
    const padded = new Uint8Array(Math.ceil(entry.data.length / 512) * 512);
    padded.set(entry.data);
    blocks.push(padded);
  }
  blocks.push(new Uint8Array(1024)); // two zero blocks end the archive
  return concat(blocks);
}

function header(name: string, size: number, mode: number, type: string): Uint8Array {
  const header = new Uint8Array(512);
  const put = (offset: number, text: string) => header.set(new TextEncoder().encode(text), offset);
  const octal = (value: number, width: number) => value.toString(8).padStart(width - 1, "0") + "\0";
  if (name.length > 100) throw new Error(`tar: name too long: ${name}`);
  put(0, name);
  put(100, octal(mode, 8));
  put(108, octal(0, 8));
  put(116, octal(0, 8));
  put(124, octal(size, 12));
  put(136, octal(mtime, 12));
  put(148, " ".repeat(8)); // checksum field counts as spaces while summing
  put(156, type);
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
  return header;
}

function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((sum, part) => sum + part.length, 0));
  let offset = 0;
  for (const part of parts) {
    out.set(part, offset);
    offset += part.length;
  }
  return out;
}

/** A zip (deflate), so Windows users can unpack with Explorer. No zip64: files < 4 GiB. */
function zip(entries: Entry[]): Uint8Array {
  const date = new Date(mtime * 1000);
  const dosTime = (date.getUTCHours() << 11) | (date.getUTCMinutes() << 5) | (date.getUTCSeconds() >> 1);
  const dosDate = ((date.getUTCFullYear() - 1980) << 9) | ((date.getUTCMonth() + 1) << 5) | date.getUTCDate();
  const locals: Uint8Array[] = [];
  const centrals: Uint8Array[] = [];
  let offset = 0;
  for (const entry of entries) {
    const nameBytes = new TextEncoder().encode(entry.name);
    const body = deflateRawSync(entry.data, { level: 9 });
    const crc = Bun.hash.crc32(entry.data);

    const local = new DataView(new ArrayBuffer(30));
    local.setUint32(0, 0x04034b50, true);
    local.setUint16(4, 20, true); // version needed: 2.0 (deflate)
    local.setUint16(8, 8, true); // method: deflate
    local.setUint16(10, dosTime, true);
    local.setUint16(12, dosDate, true);
    local.setUint32(14, crc, true);
    local.setUint32(18, body.length, true);
    local.setUint32(22, entry.data.length, true);
    local.setUint16(26, nameBytes.length, true);

    const central = new DataView(new ArrayBuffer(46));
    central.setUint32(0, 0x02014b50, true);
    central.setUint16(4, (3 << 8) | 20, true); // made by Unix, so unzip there keeps the mode
    central.setUint16(6, 20, true);
    central.setUint16(10, 8, true);
    central.setUint16(12, dosTime, true);
    central.setUint16(14, dosDate, true);
    central.setUint32(16, crc, true);
    central.setUint32(20, body.length, true);
    central.setUint32(24, entry.data.length, true);
    central.setUint16(28, nameBytes.length, true);
    central.setUint32(38, ((0o100000 | entry.mode) << 16) >>> 0, true);
    central.setUint32(42, offset, true); // local header offset

    locals.push(new Uint8Array(local.buffer), nameBytes, body);
    centrals.push(new Uint8Array(central.buffer), nameBytes);
    offset += 30 + nameBytes.length + body.length;
  }
  const centralSize = centrals.reduce((sum, part) => sum + part.length, 0);
  const end = new DataView(new ArrayBuffer(22));
  end.setUint32(0, 0x06054b50, true);
  end.setUint16(8, entries.length, true);
  end.setUint16(10, entries.length, true);
  end.setUint32(12, centralSize, true);
  end.setUint32(16, offset, true);
  return concat([...locals, ...centrals, new Uint8Array(end.buffer)]);
}

/** SHA256SUMS over every release asset in dist/ (archives, install scripts), in `sha256sum -c` format. */
async function writeChecksums(): Promise<string> {
  const archives = readdirSync(DIST)
    .filter((f) => /\.(tar\.gz|tar\.xz|zip)$/.test(f) || INSTALLERS.includes(f))
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
  const shown = file.startsWith(DIST) ? join("dist", basename(file)) : file;
  console.log(`${shown.padEnd(38)} ${size.padStart(11)}`);
}

function fail(message: string): never {
  console.error(`build: ${message}`);
  process.exit(1);
}
