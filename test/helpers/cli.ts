// Runs the compiled msgbus client: runCli for commands that finish (put, get, pub), spawnCli for
// the ones that run until stopped (sub, on), with their stdout readable line by line.
// Point them at a test server with `env: { MSGBUS_URL: server.url }` or a `--url` argument.

import type { Subprocess } from "bun";
import { BINARY } from "./binary.ts";
import { Output, spawnTracked, stopProcess, testEnv } from "./processes.ts";

export interface CliOptions {
  /** Bytes or text for stdin; default: none (end-of-file at once). */
  stdin?: Uint8Array | string;
  env?: Record<string, string>;
  /** runCli: the command is killed and the test fails after this long. Default 10 s. */
  timeoutMs?: number;
  cwd?: string;
}

export interface CliResult {
  code: number;
  stdout: Uint8Array;
  stdoutText: string;
  stderr: string;
}

export async function runCli(args: string[], options: CliOptions = {}): Promise<CliResult> {
  const timeoutMs = options.timeoutMs ?? 10000;
  const proc = start(args, options);
  const stdout = new Output(proc.stdout);
  const stderr = new Output(proc.stderr);
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    stopProcess(proc, "SIGKILL");
  }, timeoutMs);
  const code = await proc.exited;
  clearTimeout(timer);
  await Promise.all([stdout.done, stderr.done]);
  if (timedOut) {
    throw new Error(`msgbus ${args.join(" ")} did not finish within ${timeoutMs} ms\n--- stderr ---\n${stderr.text()}`);
  }
  const bytes = stdout.bytes();
  return { code, stdout: bytes, stdoutText: new TextDecoder().decode(bytes), stderr: stderr.text() };
}

export interface RunningCli {
  proc: Subprocess<any, any, any>;
  /** Complete stdout lines so far (without the newline). */
  lines(): string[];
  stdoutBytes(): Uint8Array;
  stderrText(): string;
  /** Resolves with the first n lines once they have arrived; rejects on timeout or early exit. */
  waitForLines(n: number, timeoutMs?: number): Promise<string[]>;
  /** Resolves once stderr matches `pattern`; rejects on timeout or early exit. */
  waitForStderr(pattern: RegExp, timeoutMs?: number): Promise<void>;
  /** Sends `signal` (default SIGTERM), SIGKILLs after graceMs; resolves with the exit code. */
  stop(signal?: NodeJS.Signals, graceMs?: number): Promise<number>;
}

export function spawnCli(args: string[], options: CliOptions = {}): RunningCli {
  const proc = start(args, options);
  const stdout = new Output(proc.stdout);
  const stderr = new Output(proc.stderr);
  const lines = () => {
    const text = stdout.text();
    return text
      .slice(0, text.lastIndexOf("\n") + 1)
      .split("\n")
      .slice(0, -1);
  };

  // Waits until `ready()` holds, checking on every chunk of output, until a deadline.
  const waitUntil = (ready: () => boolean, what: string, timeoutMs: number) =>
    new Promise<void>((resolve, reject) => {
      const stopListening = [stdout.onData(check), stderr.onData(check)];
      const timer = setTimeout(() => finish(new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)), timeoutMs);
      let ended = false;
      Promise.all([stdout.done, stderr.done, proc.exited]).then(() => {
        ended = true;
        check();
      });
      function check() {
        if (ready()) finish();
        else if (ended) finish(new Error(`msgbus ${args[0]} exited (code ${proc.exitCode}) before ${what}`));
      }
      function finish(error?: Error) {
        clearTimeout(timer);
        for (const unsubscribe of stopListening) unsubscribe();
        if (!error) return resolve();
        error.message += `\n--- stdout so far ---\n${stdout.text()}\n--- stderr ---\n${stderr.text()}`;
        reject(error);
      }
      check();
    });

  return {
    proc,
    lines,
    stdoutBytes: () => stdout.bytes(),
    stderrText: () => stderr.text(),
    async waitForLines(n, timeoutMs = 5000) {
      await waitUntil(() => lines().length >= n, `${n} line(s) of output`, timeoutMs);
      return lines().slice(0, n);
    },
    waitForStderr: (pattern, timeoutMs = 5000) => waitUntil(() => pattern.test(stderr.text()), `stderr to match ${pattern}`, timeoutMs),
    stop: (signal = "SIGTERM", graceMs = 3000) => stopProcess(proc, signal, graceMs),
  };
}

function start(args: string[], options: CliOptions): Subprocess<any, any, any> {
  const stdin = typeof options.stdin === "string" ? new TextEncoder().encode(options.stdin) : options.stdin;
  return spawnTracked([BINARY, ...args], { stdin: stdin ?? "ignore", env: testEnv(options.env), cwd: options.cwd });
}
