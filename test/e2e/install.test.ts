// install.sh against a fake release, the musl binaries on a musl system, and the Dockerfile.
//
// The fake release is made here from dist/msgbus (the host binary, built by `npm test`) packed
// under every unix target's archive name, as build.ts lays archives out (msgbus-<target>/msgbus,
// LICENSE, README.md), with gzip's "stored" level so that packing and unpacking 100 MB takes well
// under a second. Building the real cross-target archives would take minutes; `npm run smoke`
// checks those. So these tests show which archive install.sh picks for a machine, that it checks
// it, installs it and runs it, not that the arm64 or darwin builds run.

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { gzipSync } from "node:zlib";
import { BINARY } from "../helpers/binary.ts";
import { cleanupAll, freePort, spawnTracked, stopProcess, testEnv } from "../helpers/index.ts";
import { canConnect, waitFor } from "../helpers/wait.ts";

const ROOT = join(import.meta.dir, "..", "..");
const INSTALL_SH = join(ROOT, "install.sh");
const VERSION: string = JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")).version;
const UNIX_TARGETS = ["linux-x64", "linux-x64-baseline", "linux-x64-musl", "linux-arm64", "linux-arm64-musl", "darwin-x64", "darwin-arm64"];
const POSIX = process.platform !== "win32";
const CPUINFO_AVX2 = "processor\t: 0\nflags\t\t: fpu sse sse2 ssse3 sse4_1 sse4_2 avx avx2 bmi2\n";
const CPUINFO_OLD = "processor\t: 0\nflags\t\t: fpu sse sse2 ssse3 sse4_1 sse4_2 popcnt\n";

const work = mkdtempSync(join(tmpdir(), "msgbus-install-test-"));
afterAll(async () => {
  await cleanupAll();
  rmSync(work, { recursive: true, force: true });
});

function sha256(data: Uint8Array | string): string {
  return new Bun.CryptoHasher("sha256").update(data).digest("hex");
}

/** A tar of msgbus-<target>/{msgbus,LICENSE,README.md}. */
function tarOf(target: string, binary: Uint8Array): Uint8Array {
  const dir = join(work, "pack", target);
  mkdirSync(join(dir, `msgbus-${target}`), { recursive: true });
  writeFileSync(join(dir, `msgbus-${target}`, "msgbus"), binary, { mode: 0o755 });
  for (const doc of ["LICENSE", "README.md"]) writeFileSync(join(dir, `msgbus-${target}`, doc), readFileSync(join(ROOT, doc)));
  const tar = Bun.spawnSync(["tar", "-cf", "-", `msgbus-${target}`], { cwd: dir });
  rmSync(dir, { recursive: true, force: true });
  if (!tar.success) throw new Error(`tar failed: ${tar.stderr}`);
  return tar.stdout;
}

/** The .tar.gz of a target, gzip level 0 (stored): fast both ways. */
function archive(target: string, binary: Uint8Array): Uint8Array {
  return gzipSync(tarOf(target, binary), { level: 0 });
}

/** A stand-in binary: a script that answers --version like msgbus, naming the archive it came in. */
function stub(target: string): Uint8Array {
  return new TextEncoder().encode(`#!/bin/sh\necho "${VERSION} (stand-in from msgbus-${target})"\n`);
}

/**
 * A release folder: install.sh, SHA256SUMS and an archive per unix target. linux-x64 holds the real
 * host binary; the others a stand-in script (the choice of archive is what they show; packing the
 * 100 MB binary seven times made this file take minutes on a busy machine).
 */
function makeRelease(name: string, binary: Uint8Array, targets: string[], change: (files: Map<string, Uint8Array>) => void = () => {}): string {
  const dir = join(work, name);
  mkdirSync(dir, { recursive: true });
  const files = new Map<string, Uint8Array>();
  for (const target of targets) files.set(`msgbus-${target}.tar.gz`, archive(target, target === "linux-x64" ? binary : stub(target)));
  files.set("install.sh", readFileSync(INSTALL_SH));
  const sums = [...files].map(([file, data]) => `${sha256(data)}  ${file}`).sort((a, b) => a.slice(66).localeCompare(b.slice(66)));
  change(files); // after the sums: a change here is what a corrupted download looks like
  for (const [file, data] of files) writeFileSync(join(dir, file), data);
  writeFileSync(join(dir, "SHA256SUMS"), `${sums.join("\n")}\n`);
  return dir;
}

/** A PATH folder whose `uname` (and `sysctl`) answer as another machine would. */
function fakeMachine(name: string, unameS: string, unameM: string, sysctl = ""): string {
  const dir = join(work, "machines", name);
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, "uname"), `#!/bin/sh\ncase "$1" in -s) echo ${unameS} ;; -m) echo ${unameM} ;; *) echo ${unameS} ;; esac\n`, { mode: 0o755 });
  writeFileSync(join(dir, "sysctl"), `#!/bin/sh\n${sysctl ? `echo "${sysctl}"` : "exit 1"}\n`, { mode: 0o755 });
  const cpuinfo = join(dir, "cpuinfo");
  writeFileSync(cpuinfo, CPUINFO_AVX2);
  return dir;
}

interface Run {
  code: number;
  out: string;
  prefix: string;
}

let n = 0;
async function install(opts: { machine: string; base: string; env?: Record<string, string>; shell?: string; args?: string[] }): Promise<Run> {
  const prefix = join(work, `prefix-${++n}`);
  const proc = Bun.spawn([opts.shell ?? "dash", INSTALL_SH, "--prefix", prefix, ...(opts.args ?? [])], {
    env: testEnv({
      PATH: `${opts.machine}:${process.env.PATH}`,
      HOME: join(work, "home"),
      MSGBUS_INSTALL_BASE: opts.base,
      MSGBUS_INSTALL_LIBC: "glibc", // the host's libc must not decide; musl cases set it
      MSGBUS_INSTALL_CPUINFO: join(opts.machine, "cpuinfo"),
      ...opts.env,
    }),
    stdout: "pipe",
    stderr: "pipe",
  });
  const [out, err, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
  return { code, out: out + err, prefix };
}

/** What the installed binary says to --version; the prefix is removed after (100 MB each). */
function installedVersion(prefix: string): string {
  const run = Bun.spawnSync([join(prefix, "bin", "msgbus"), "--version"]);
  rmSync(prefix, { recursive: true, force: true });
  return run.stdout.toString().trim();
}

const hasDash = Bun.which("dash") !== null;
const hasTar = Bun.which("tar") !== null && Bun.which("gzip") !== null;
if (!hasDash) console.log("install.sh tests: SKIP: dash is not installed (apt-get install dash)");

describe.skipIf(!POSIX || !hasDash || !hasTar)("install.sh from a fake release served over HTTP", () => {
  let release = "";
  let corrupt = "";
  let xzRelease = "";
  let server: ReturnType<typeof Bun.serve> | undefined;
  let url = "";
  const requests: string[] = [];
  const linux = fakeMachine("linux-x64", "Linux", "x86_64");
  const arm = fakeMachine("linux-arm64", "Linux", "aarch64");
  const old = fakeMachine("linux-x64-old", "Linux", "x86_64");
  writeFileSync(join(old, "cpuinfo"), CPUINFO_OLD);
  const macArm = fakeMachine("darwin-arm64", "Darwin", "arm64");
  const macIntel = fakeMachine("darwin-x64", "Darwin", "x86_64", "SMEP ERMS RDWRFSGS TSC_THREAD_OFFSET BMI1 AVX2 BMI2 INVPCID");
  const pi = fakeMachine("armv7", "Linux", "armv7l");
  const pi6 = fakeMachine("armv6", "Linux", "armv6l");

  beforeAll(() => {
    const binary = new Uint8Array(readFileSync(BINARY));
    release = makeRelease("release", binary, UNIX_TARGETS);
    corrupt = makeRelease("corrupt", binary, ["linux-x64"], (files) => {
      const bad = files.get("msgbus-linux-x64.tar.gz")!.slice();
      bad[bad.length >> 1]! ^= 0xff; // one flipped byte in the middle of the binary
      files.set("msgbus-linux-x64.tar.gz", bad);
    });
    server = Bun.serve({
      hostname: "127.0.0.1",
      port: 0,
      fetch(req) {
        const path = decodeURIComponent(new URL(req.url).pathname);
        requests.push(path);
        const [, folder, file] = path.split("/");
        const dirs: Record<string, string> = { release, corrupt, xz: xzRelease };
        const dir = folder ? dirs[folder] : undefined;
        if (!dir || !file || file.includes("..") || !existsSync(join(dir, file))) return new Response("not found", { status: 404 });
        return new Response(Bun.file(join(dir, file)));
      },
    });
    url = `http://127.0.0.1:${server.port}`;
  }, 120_000);
  afterAll(() => server?.stop(true));

  test("linux x86_64 with AVX2, glibc, curl, under dash: linux-x64, installed and run", async () => {
    const run = await install({ machine: linux, base: `${url}/release`, env: { MSGBUS_INSTALL_DOWNLOADER: "curl" } });
    expect(run.out).toContain("for linux-x64 from");
    expect(run.code).toBe(0);
    expect(run.out).toContain(`installed ${run.prefix}/bin/msgbus`);
    expect(run.out).toContain("checksum ok: msgbus-linux-x64.tar.gz");
    expect(installedVersion(run.prefix)).toStartWith(`${VERSION} (commit `);
    expect(requests).toContain("/release/msgbus-linux-x64.tar.gz");
  });

  test.skipIf(Bun.which("wget") === null)("the same with wget instead of curl", async () => {
    const run = await install({ machine: linux, base: `${url}/release/`, env: { MSGBUS_INSTALL_DOWNLOADER: "wget" } });
    expect(run.code).toBe(0);
    expect(installedVersion(run.prefix)).toStartWith(VERSION);
  });
  if (Bun.which("wget") === null) console.log("install.sh with wget: SKIP: wget is not installed");

  test("detection: aarch64 → linux-arm64, musl → -musl, no AVX2 → linux-x64-baseline, Darwin → darwin-*", async () => {
    const cases: [string, string, Record<string, string>][] = [
      [arm, "linux-arm64", {}],
      [linux, "linux-x64-musl", { MSGBUS_INSTALL_LIBC: "musl" }],
      [arm, "linux-arm64-musl", { MSGBUS_INSTALL_LIBC: "musl" }],
      [old, "linux-x64-baseline", {}],
      [old, "linux-x64-musl", { MSGBUS_INSTALL_LIBC: "musl" }], // no musl baseline build: noted, the musl one
      [macArm, "darwin-arm64", {}],
      [macIntel, "darwin-x64", {}],
    ];
    const runs = await Promise.all(cases.map(([machine, , env]) => install({ machine, base: `${url}/release`, env })));
    runs.forEach((run, i) => {
      const target = cases[i]![1];
      expect(`${target}: ${run.out}`).toContain(`for ${target} from`);
      expect(run.code).toBe(0);
      expect(run.out).toContain(`checksum ok: msgbus-${target}.tar.gz`);
      expect(run.out).toContain(`msgbus --version: ${VERSION} (stand-in from msgbus-${target})`);
      expect(installedVersion(run.prefix)).toBe(`${VERSION} (stand-in from msgbus-${target})`);
    });
    expect(runs[4]!.out).toContain("no AVX2");
  });

  test("armv7l and armv6l (32-bit Raspberry Pi OS) are refused with what to do instead; nothing is downloaded", async () => {
    for (const machine of [pi, pi6]) {
      const before = requests.length;
      const run = await install({ machine, base: `${url}/release` });
      expect(run.code).toBe(1);
      expect(run.out).toMatch(/32-bit system \(armv[67]l\)/);
      expect(run.out).toContain("Raspberry Pi OS (64-bit)");
      expect(run.out).toMatch(/Pi 3, 4, 5/);
      expect(existsSync(join(run.prefix, "bin", "msgbus"))).toBe(false);
      expect(requests.length).toBe(before);
    }
  });

  test("a corrupted archive is refused by the checksum and nothing is installed", async () => {
    for (const downloader of ["curl", "wget"].filter((d) => Bun.which(d))) {
      const run = await install({ machine: linux, base: `${url}/corrupt`, env: { MSGBUS_INSTALL_DOWNLOADER: downloader } });
      expect(run.code).toBe(1);
      expect(run.out).toContain("checksum mismatch for msgbus-linux-x64.tar.gz");
      expect(run.out).toContain("Nothing was installed");
      expect(existsSync(join(run.prefix, "bin"))).toBe(false);
    }
  });

  test("a local folder (a plain path or file://) as the release; --target windows-x64 and unknown options are refused", async () => {
    for (const base of [release, `file://${release}`]) {
      const run = await install({ machine: arm, base });
      expect(run.code).toBe(0);
      expect(installedVersion(run.prefix)).toBe(`${VERSION} (stand-in from msgbus-linux-arm64)`);
    }
    const missing = await install({ machine: linux, base: release, args: ["--target", "windows-x64"] });
    expect(missing.code).toBe(1);
    expect(missing.out).toContain("install.ps1");
    const unknownOption = await install({ machine: linux, base: release, args: ["--frobnicate"] });
    expect(unknownOption.code).toBe(1);
    expect(unknownOption.out).toContain("unknown option '--frobnicate'");
  });

  test.skipIf(Bun.which("bash") === null)("the same script under bash (as sh) installs too", async () => {
    const run = await install({ machine: linux, base: `${url}/release`, shell: "bash" });
    expect(run.code).toBe(0);
    expect(installedVersion(run.prefix)).toStartWith(VERSION);
  });

  test.skipIf(Bun.which("xz") === null)("when the release has a .tar.xz and xz is here, the .tar.xz is taken", async () => {
    // A tiny stand-in binary keeps xz fast; what matters is which archive is fetched and unpacked.
    const xzStub = new TextEncoder().encode("#!/bin/sh\necho 9.9.9-from-xz\n");
    xzRelease = makeRelease("xz", new Uint8Array(readFileSync(BINARY)), ["linux-x64"], (files) => {
      const xz = Bun.spawnSync(["xz", "-0", "-c"], { stdin: tarOf("linux-x64", xzStub) });
      files.set("msgbus-linux-x64.tar.xz", xz.stdout);
    });
    // SHA256SUMS was written before the change: add the .tar.xz line as a release would have it.
    const xzFile = readFileSync(join(xzRelease, "msgbus-linux-x64.tar.xz"));
    writeFileSync(join(xzRelease, "SHA256SUMS"), `${readFileSync(join(xzRelease, "SHA256SUMS"), "utf8")}${sha256(xzFile)}  msgbus-linux-x64.tar.xz\n`);
    const run = await install({ machine: linux, base: `${url}/xz` });
    expect(run.code).toBe(0);
    expect(run.out).toContain("checksum ok: msgbus-linux-x64.tar.xz");
    expect(installedVersion(run.prefix)).toBe("9.9.9-from-xz");
  });
  if (Bun.which("xz") === null) console.log("install.sh .tar.xz: SKIP: xz is not installed (apt-get install xz-utils)");

  test.skipIf(Bun.which("shellcheck") === null)("install.sh is POSIX sh: shellcheck -s sh finds nothing", () => {
    const run = Bun.spawnSync(["shellcheck", "-s", "sh", INSTALL_SH]);
    expect(run.stdout.toString() + run.stderr.toString()).toBe("");
    expect(run.exitCode).toBe(0);
  });
  if (Bun.which("shellcheck") === null) console.log("install.sh shellcheck: SKIP: shellcheck is not installed (apt-get install shellcheck)");
});

// ---- the musl binaries on a musl system ----

/**
 * How to run a musl build here, or why not. Bun's musl runtime needs the musl loader and a musl
 * build of libstdc++ and libgcc_s (Alpine's libstdc++ and libgcc packages). Debian's `musl`
 * package brings the loader only, so on Debian this is a SKIP unless MSGBUS_TEST_ALPINE_ROOT names
 * an Alpine root filesystem with those libraries (then: qemu-x86_64 -L ROOT, i.e. Alpine's own
 * loader and libraries, the same way the smoke test runs linux-arm64 on an x64 machine).
 */
function muslRunner(): { runner: string[]; how: string } | { skip: string } {
  if (process.platform !== "linux" || process.arch !== "x64") return { skip: "not an x86-64 Linux machine" };
  const root = process.env.MSGBUS_TEST_ALPINE_ROOT;
  if (root) {
    const qemu = Bun.which("qemu-x86_64-static") ?? Bun.which("qemu-x86_64");
    if (!existsSync(join(root, "lib/ld-musl-x86_64.so.1"))) return { skip: `MSGBUS_TEST_ALPINE_ROOT=${root} has no lib/ld-musl-x86_64.so.1` };
    if (!qemu) return { skip: "MSGBUS_TEST_ALPINE_ROOT is set but qemu-user is not installed (apt-get install qemu-user-static)" };
    return { runner: [qemu, "-L", root], how: `${qemu} -L ${root}` };
  }
  if (!existsSync("/lib/ld-musl-x86_64.so.1"))
    return { skip: "no musl loader /lib/ld-musl-x86_64.so.1 (apt-get install musl, or set MSGBUS_TEST_ALPINE_ROOT)" };
  const paths = existsSync("/etc/ld-musl-x86_64.path")
    ? readFileSync("/etc/ld-musl-x86_64.path", "utf8").split(/[:\n]/).filter(Boolean)
    : ["/lib", "/usr/local/lib", "/usr/lib"];
  if (!paths.some((dir) => existsSync(join(dir, "libstdc++.so.6")))) {
    return {
      skip: `the musl loader is here but no musl build of libstdc++.so.6 in ${paths.join(":")} (Bun's musl runtime needs it: Alpine's libstdc++ and libgcc; Debian has no such package); set MSGBUS_TEST_ALPINE_ROOT to an Alpine root filesystem with them`,
    };
  }
  return { runner: [], how: "natively, with the system's musl loader" };
}

const musl = POSIX ? muslRunner() : { skip: "not POSIX" };
if ("skip" in musl) console.log(`musl binary: SKIP: ${musl.skip}`);

describe.skipIf("skip" in musl)("the linux-x64-musl binary on a musl system", () => {
  const runner = "runner" in musl ? musl.runner : [];
  const bin = join(work, "musl", "msgbus");

  beforeAll(() => {
    // Only this one target is compiled here (Bun fetches its musl runtime from npm once).
    const build = Bun.spawnSync([process.execPath, "build.ts", "--local", "--target", "linux-x64-musl", "--out", bin], { cwd: ROOT });
    if (!build.success) throw new Error(`build of linux-x64-musl failed: ${build.stderr}`);
  }, 120_000);

  test("--version, serve, put and get", async () => {
    const version = Bun.spawnSync([...runner, bin, "--version"]);
    expect(version.stderr.toString()).toBe("");
    expect(version.stdout.toString()).toMatch(new RegExp(`^${VERSION.replaceAll(".", "\\.")} \\(.*, linux-x64-musl\\)\\n$`));
    const port = freePort();
    const httpPort = freePort();
    const serve = spawnTracked([...runner, bin, "serve", "--port", String(port), "--http-port", String(httpPort)], { env: testEnv() });
    await waitFor(() => canConnect(port), { timeoutMs: 30_000, what: "the musl msgbus serve to listen" });
    const url = `tcp://127.0.0.1:${port}`;
    const put = Bun.spawnSync([...runner, bin, "put", "--url", url, "musl.jobs", "hello from musl"], { env: testEnv() });
    expect(put.exitCode).toBe(0);
    const get = Bun.spawnSync([...runner, bin, "get", "--url", url, "musl.jobs"], { env: testEnv() });
    expect(get.stdout.toString()).toBe("hello from musl");
    expect(await stopProcess(serve, "SIGTERM", 10_000)).toBe(0);
  }, 90_000);
});

// ---- the Dockerfile ----

describe("Dockerfile", () => {
  const text = readFileSync(join(ROOT, "Dockerfile"), "utf8");
  const lines = text.split("\n").filter((line) => !line.startsWith("#"));

  test("multi-stage; non-root user, /data volume, both ports, HEALTHCHECK on /_/health, exec-form entry point", () => {
    expect(lines.filter((line) => line.startsWith("FROM ")).length).toBe(2);
    expect(text).toMatch(/^FROM --platform=\$BUILDPLATFORM \S+ AS build$/m);
    expect(text).toMatch(/^USER 10001:10001$/m);
    expect(text).toMatch(/^VOLUME \/data$/m);
    expect(text).toMatch(/^EXPOSE 6552 6553$/m);
    expect(text).toMatch(/^HEALTHCHECK .*\\\n\s+CMD wget -q -O \/dev\/null "http:\/\/127\.0\.0\.1:\$\{MSGBUS_HTTP_PORT:-6553\}\/_\/health"/m);
    // Exec form: msgbus is PID 1 and gets docker stop's SIGTERM itself (no shell in between).
    expect(text).toMatch(/^ENTRYPOINT \["\/usr\/local\/bin\/msgbus"\]$/m);
    expect(text).toMatch(/^CMD \["serve", "--host", "0\.0\.0\.0", "--data", "\/data"\]$/m);
  });

  const hadolint = Bun.which("hadolint");
  if (!hadolint) console.log("Dockerfile: hadolint: SKIP: hadolint is not installed (not packaged by Debian 12 nor on npm)");
  test.skipIf(!hadolint)("hadolint finds nothing", () => {
    const run = Bun.spawnSync([hadolint!, join(ROOT, "Dockerfile")]);
    expect(run.stdout.toString()).toBe("");
    expect(run.exitCode).toBe(0);
  });

  // `docker info` needs a running engine; the CLI alone (as on this project's machines) is not enough.
  const docker = Bun.which("docker");
  const engine = docker !== null && Bun.spawnSync([docker, "info"], { stdout: "ignore", stderr: "ignore" }).success;
  if (!engine) console.log(`Dockerfile: image build: SKIP: ${docker ? "the docker CLI is here but no engine answers (docker info fails)" : "no docker"}`);
  test.skipIf(!engine)(
    "the image builds, becomes healthy, serves put/get over HTTP and stops with exit 0 on docker stop",
    async () => {
      const tag = `msgbus-test:${process.pid}`;
      const build = Bun.spawnSync([docker!, "build", "-t", tag, ROOT]);
      expect(build.exitCode).toBe(0);
      const httpPort = freePort();
      const name = `msgbus-test-${process.pid}`;
      const run = Bun.spawnSync([docker!, "run", "-d", "--name", name, "-p", `127.0.0.1:${httpPort}:6553`, tag]);
      expect(run.exitCode).toBe(0);
      try {
        await waitFor(() => Bun.spawnSync([docker!, "inspect", "-f", "{{.State.Health.Status}}", name]).stdout.toString().trim() === "healthy", {
          timeoutMs: 60_000,
          intervalMs: 500,
          what: "the container to be healthy",
        });
        expect((await fetch(`http://127.0.0.1:${httpPort}/docker.jobs`, { method: "POST", body: "hi" })).status).toBe(200);
        expect(await (await fetch(`http://127.0.0.1:${httpPort}/docker.jobs`)).text()).toBe("hi");
        const user = Bun.spawnSync([docker!, "exec", name, "id", "-u"]).stdout.toString().trim();
        expect(user).toBe("10001");
        Bun.spawnSync([docker!, "stop", name]);
        expect(Bun.spawnSync([docker!, "inspect", "-f", "{{.State.ExitCode}}", name]).stdout.toString().trim()).toBe("0");
      } finally {
        Bun.spawnSync([docker!, "rm", "-f", name]);
        Bun.spawnSync([docker!, "rmi", tag]);
      }
    },
    600_000,
  );
});
