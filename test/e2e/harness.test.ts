// The test harness tested: free ports, polling, process cleanup (also when the test process
// itself dies), a real redis-server, and the compiled binary once `bun run build:local` made it.

import { afterAll, describe, expect, test } from "bun:test";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { hasBinary } from "../helpers/binary.ts";
import { runCli, spawnCli } from "../helpers/cli.ts";
import { freePort } from "../helpers/ports.ts";
import { cleanupAll, Output, spawnTracked, stopProcess } from "../helpers/processes.ts";
import { hasRedis, ping, startRedis } from "../helpers/redis.ts";
import { startServer } from "../helpers/server.ts";
import { canConnect, waitFor } from "../helpers/wait.ts";

afterAll(() => cleanupAll());

const POSIX = process.platform !== "win32";
const BUN = process.execPath;
const PROCESSES_TS = join(import.meta.dir, "..", "helpers", "processes.ts");

/** Runs a Bun script as a tracked process and waits for its first line of stdout. */
async function startScript(code: string): Promise<{ proc: ReturnType<typeof spawnTracked>; firstLine: string }> {
  const proc = spawnTracked([BUN, "-e", code]);
  const stdout = new Output(proc.stdout);
  const firstLine = await waitFor(() => stdout.text().match(/^(.*)\n/)?.[1], { timeoutMs: 10000, what: "the script's first line" });
  return { proc, firstLine };
}

/** Alive and not a zombie (a container's PID 1 may never reap what it inherits). */
function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  const stat = `/proc/${pid}/stat`;
  return !(existsSync(stat) && readFileSync(stat, "utf8").split(") ")[1]?.startsWith("Z"));
}

describe("ports and polling", () => {
  test("freePort gives distinct ports that can be bound at once", () => {
    const ports = [freePort(), freePort(), freePort()];
    expect(new Set(ports).size).toBe(3);
    for (const port of ports) {
      const listener = Bun.listen({ hostname: "127.0.0.1", port, socket: { data() {} } });
      expect(listener.port).toBe(port);
      listener.stop(true);
    }
  });

  test("waitFor returns the first truthy value, and times out naming what it waited for", async () => {
    let calls = 0;
    expect(await waitFor(() => ++calls >= 3 && "done", { intervalMs: 1 })).toBe("done");
    expect(calls).toBe(3);
    const failing = waitFor(
      () => {
        throw new Error("still broken");
      },
      { timeoutMs: 50, what: "the moon" },
    );
    await expect(failing).rejects.toThrow(/waiting for the moon: still broken/);
  });
});

describe.skipIf(!POSIX)("process cleanup", () => {
  test("stopProcess SIGKILLs a process that ignores SIGTERM", async () => {
    const { proc } = await startScript(`process.on("SIGTERM", () => {}); console.log("ready"); setInterval(() => {}, 1000);`);
    const started = Date.now();
    expect(await stopProcess(proc, "SIGTERM", 200)).toBe(128 + 9);
    expect(Date.now() - started).toBeGreaterThanOrEqual(200);
    expect(isAlive(proc.pid)).toBe(false);
  });

  test("stopping a process also stops the processes it started", async () => {
    const { proc, firstLine } = await startScript(
      `const child = Bun.spawn([process.execPath, "-e", "setTimeout(() => {}, 30000)"]); console.log(child.pid); await child.exited;`,
    );
    const grandchild = Number(firstLine);
    expect(isAlive(grandchild)).toBe(true);
    await stopProcess(proc);
    await waitFor(() => !isAlive(grandchild), { timeoutMs: 2000, what: `grandchild ${grandchild} to die` });
  });

  test("cleanupAll stops every tracked process", async () => {
    const scripts = await Promise.all([1, 2].map(() => startScript(`console.log("ready"); setInterval(() => {}, 1000);`)));
    await cleanupAll(200);
    for (const { proc } of scripts) {
      expect(proc.exitCode ?? proc.signalCode).not.toBeNull();
      expect(isAlive(proc.pid)).toBe(false);
    }
  });

  // The grandchildren run in their own process groups, so only the runner's exit hooks can reach them.
  for (const ending of ["process.exit(0)", `process.kill(process.pid, "SIGINT")`, `process.kill(process.pid, "SIGTERM")`]) {
    test(`a test process that ends with ${ending} takes its tracked processes with it`, async () => {
      const { proc, firstLine } = await startScript(`
        import { spawnTracked } from ${JSON.stringify(PROCESSES_TS)};
        const child = spawnTracked([process.execPath, "-e", "setTimeout(() => {}, 30000)"]);
        console.log(child.pid);
        setTimeout(() => ${ending}, 50);
        setInterval(() => {}, 1000);`);
      const grandchild = Number(firstLine);
      expect(grandchild).toBeGreaterThan(0);
      await proc.exited;
      await waitFor(() => !isAlive(grandchild), { timeoutMs: 2000, what: `grandchild ${grandchild} to die` });
    });
  }
});

// Skipped only on a developer machine without Redis; CI installs it, so there it must run.
describe.skipIf(!hasRedis() && !process.env.CI)("redis-server", () => {
  test("startRedis answers PING and stop() ends it", async () => {
    const redis = await startRedis();
    expect(await ping(redis.port)).toBe("+PONG");
    expect(await redis.stop()).toBe(0);
    expect(isAlive(redis.proc.pid)).toBe(false);
    expect(await canConnect(redis.port)).toBe(false);
  });
});

// `npm test` builds dist/msgbus first; a bare `bun test` without a build skips these.
describe.skipIf(!hasBinary())("the compiled binary", () => {
  const version: string = JSON.parse(readFileSync(join(import.meta.dir, "..", "..", "package.json"), "utf8")).version;

  test("--version prints the version from package.json, then the commit, build date and target", async () => {
    const result = await runCli(["--version"]);
    expect(result.code).toBe(0);
    const platform = `${process.platform === "win32" ? "windows" : process.platform}-${process.arch}`;
    expect(result.stdoutText.trim()).toMatch(
      new RegExp(`^${version.replaceAll(".", "\\.")} \\(commit [0-9a-f]{7,}(-dirty)?, built \\d{4}-\\d\\d-\\d\\dT\\d\\d:\\d\\d:\\d\\dZ, ${platform}\\)$`),
    );
  });

  test("spawnCli reads output lines as they come and reports an early exit", async () => {
    const help = spawnCli(["--help"]);
    expect((await help.waitForLines(1)).length).toBe(1);
    await expect(spawnCli(["--help"]).waitForLines(100_000)).rejects.toThrow(/exited \(code 0\) before 100000 line/);
  });

  // HTTP off: this checks the harness; the HTTP tests check that the HTTP port comes up.
  test("startServer waits until msgbus serve accepts connections; SIGTERM stops it with exit 0", async () => {
    const server = await startServer({ httpPort: 0 });
    expect(await canConnect(server.port)).toBe(true);
    expect(await server.stop()).toBe(0);
    expect(await canConnect(server.port)).toBe(false);
  });

  test("startServer fails fast with the server's stderr when serve cannot start", async () => {
    const started = Date.now();
    await expect(startServer({ args: ["--overflow", "sideways"] })).rejects.toThrow(/did not start \(exited with code [1-9]\d*\)[\s\S]*stderr[\s\S]*sideways/);
    expect(Date.now() - started).toBeLessThan(10000);
  });
});

describe.skipIf(!POSIX || !hasBinary())("serve and early signals", () => {
  test("SIGTERM while serve is still starting stops it gracefully with exit 0 (supervisors restart fast)", async () => {
    const { BINARY } = await import("../helpers/binary.ts");
    const { mkdtempSync, rmSync } = await import("node:fs");
    const { tmpdir } = await import("node:os");
    for (let round = 0; round < 3; round++) {
      // The data directory's lock appears while serve opens its store, before any listener: the
      // process is running our code by then, so a kill there tests serve and not the runtime's start.
      const dir = mkdtempSync(join(tmpdir(), "msgbus-early-"));
      try {
        const proc = spawnTracked([BINARY, "serve", "--port", "0", "--http-port", "0", "--data", dir]);
        await waitFor(() => existsSync(join(dir, "msgbus.lock")) || proc.exitCode !== null, {
          timeoutMs: 10000,
          intervalMs: 1,
          what: "serve to open its data directory",
        });
        proc.kill("SIGTERM");
        expect(await proc.exited).toBe(0);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    }
  });
});
