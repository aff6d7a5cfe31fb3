// Every process a test starts goes through spawnTracked, so none outlives the test run: cleanupAll()
// (call it in afterAll) stops them all, and exit/SIGINT/SIGTERM of the test process kills the rest.

import type { Subprocess } from "bun";

const POSIX = process.platform !== "win32";
const live = new Set<Subprocess>();

export interface SpawnTrackedOptions {
  cwd?: string;
  /** The whole environment of the child (see testEnv). Default: testEnv(). */
  env?: Record<string, string | undefined>;
  /** Default "ignore": the child reads end-of-file at once. */
  stdin?: "ignore" | "pipe" | "inherit" | Uint8Array | Blob;
  stdout?: "pipe" | "ignore" | "inherit";
  stderr?: "pipe" | "ignore" | "inherit";
}

/** Bun.spawn, remembered for cleanup. stdout and stderr are piped unless told otherwise. */
export function spawnTracked(cmd: string[], options: SpawnTrackedOptions = {}): Subprocess<any, any, any> {
  const proc = Bun.spawn(cmd, {
    cwd: options.cwd,
    env: options.env ?? testEnv(),
    stdin: options.stdin ?? "ignore",
    stdout: options.stdout ?? "pipe",
    stderr: options.stderr ?? "pipe",
    // Its own process group, so cleanup also reaches what it spawns (`msgbus on -- cmd`).
    detached: POSIX,
  });
  live.add(proc);
  proc.exited.then(() => live.delete(proc));
  return proc;
}

/**
 * Sends `signal` to the process, waits up to graceMs, then SIGKILLs its whole group.
 * Resolves with the exit code (128 + signal number when a signal ended it).
 */
export async function stopProcess(proc: Subprocess<any, any, any>, signal: NodeJS.Signals = "SIGTERM", graceMs = 3000): Promise<number> {
  if (proc.exitCode === null && proc.signalCode === null) {
    proc.kill(signal);
    const timer = setTimeout(() => killGroup(proc), graceMs);
    await proc.exited;
    clearTimeout(timer);
  }
  // The leader may exit while children it started live on in the group.
  killGroup(proc);
  return proc.exited;
}

/** Stops every tracked process (SIGTERM, then SIGKILL after graceMs). For afterAll. */
export async function cleanupAll(graceMs = 1000): Promise<void> {
  await Promise.all([...live].map((proc) => stopProcess(proc, "SIGTERM", graceMs)));
}

/** How many tracked processes are still running. */
export function liveCount(): number {
  return live.size;
}

function killGroup(proc: Subprocess<any, any, any>): void {
  try {
    if (POSIX) process.kill(-proc.pid, "SIGKILL");
    else proc.kill("SIGKILL");
  } catch {
    // Already gone.
  }
}

/**
 * The test process's environment without msgbus settings (MSGBUS_*, beuss's BHOST/BPORT/
 * BMAXMESSAGESIZE), so a developer's shell cannot change what a test sees, plus `extra`.
 */
export function testEnv(extra: Record<string, string> = {}): Record<string, string | undefined> {
  const env: Record<string, string | undefined> = {};
  for (const [key, value] of Object.entries(process.env)) {
    if (key.startsWith("MSGBUS_") || key === "BHOST" || key === "BPORT" || key === "BMAXMESSAGESIZE") continue;
    env[key] = value;
  }
  return { ...env, ...extra };
}

/** Collects a piped stream as it arrives; `text()` and `bytes()` show what came so far. */
export class Output {
  private chunks: Uint8Array[] = [];
  private listeners = new Set<() => void>();
  /** Resolves when the stream has ended. */
  readonly done: Promise<void>;

  constructor(stream: ReadableStream<Uint8Array> | null | undefined | number) {
    this.done = stream && typeof stream !== "number" ? this.read(stream) : Promise.resolve();
  }

  private async read(stream: ReadableStream<Uint8Array>): Promise<void> {
    try {
      for await (const chunk of stream) {
        this.chunks.push(chunk);
        for (const listener of this.listeners) listener();
      }
    } catch {
      // The process was killed mid-write; keep what arrived.
    } finally {
      for (const listener of this.listeners) listener();
    }
  }

  bytes(): Uint8Array {
    return Buffer.concat(this.chunks);
  }

  text(): string {
    return new TextDecoder().decode(this.bytes());
  }

  /** Calls `listener` after every chunk and once at the end; returns an unsubscribe function. */
  onData(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }
}

const HOOKED = Symbol.for("msgbus.test.processes.hooked");
if (!(globalThis as any)[HOOKED]) {
  (globalThis as any)[HOOKED] = true;
  const killAll = () => {
    for (const proc of live) killGroup(proc);
  };
  process.on("exit", killAll);
  for (const [signal, code] of [
    ["SIGINT", 130],
    ["SIGTERM", 143],
  ] as const) {
    process.on(signal, () => {
      killAll();
      process.exit(code);
    });
  }
}
