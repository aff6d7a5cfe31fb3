// Starts the compiled `msgbus serve` on free loopback ports and waits until it accepts
// connections; its output is kept so a failing test can show what the server said.

import type { Subprocess } from "bun";
import { BINARY } from "./binary.ts";
import { freePort } from "./ports.ts";
import { Output, spawnTracked, stopProcess, testEnv } from "./processes.ts";
import { canConnect, waitFor } from "./wait.ts";

export interface ServerOptions {
  /** Extra arguments after `serve --host --port --http-port`. */
  args?: string[];
  /** Extra environment variables (MSGBUS_* from the test's own environment are removed). */
  env?: Record<string, string>;
  /** 0 turns HTTP off; default: a free port. */
  httpPort?: number;
  /** TCP port; default: a free port (e.g. reuse the old port to restart on the same --data). */
  port?: number;
  /** Default 4 s: well under bun test's default 5 s test timeout, so the error shows the server's stderr. */
  startTimeoutMs?: number;
}

export interface TestServer {
  port: number;
  httpPort: number;
  /** tcp://127.0.0.1:PORT, for --url or MSGBUS_URL. */
  url: string;
  /** http://127.0.0.1:HTTP_PORT ("" when HTTP is off). */
  httpUrl: string;
  proc: Subprocess<any, any, any>;
  stdoutText(): string;
  stderrText(): string;
  /** Sends `signal` (default SIGTERM), SIGKILLs after graceMs; resolves with the exit code. */
  stop(signal?: NodeJS.Signals, graceMs?: number): Promise<number>;
}

export async function startServer(options: ServerOptions = {}): Promise<TestServer> {
  // A port freed by freePort() can be taken by someone else before the server binds it: retry.
  for (let attempt = 1; ; attempt++) {
    try {
      return await startOnce(options);
    } catch (error) {
      const portTaken = error instanceof Error && /EADDRINUSE|address already in use|in use/i.test(error.message);
      if (!portTaken || attempt === 3 || options.port !== undefined) throw error;
    }
  }
}

async function startOnce(options: ServerOptions): Promise<TestServer> {
  const port = options.port ?? freePort();
  const httpPort = options.httpPort ?? freePort();
  const proc = spawnTracked([BINARY, "serve", "--host", "127.0.0.1", "--port", String(port), "--http-port", String(httpPort), ...(options.args ?? [])], {
    env: testEnv(options.env),
  });
  const stdout = new Output(proc.stdout);
  const stderr = new Output(proc.stderr);
  const server: TestServer = {
    port,
    httpPort,
    url: `tcp://127.0.0.1:${port}`,
    httpUrl: httpPort ? `http://127.0.0.1:${httpPort}` : "",
    proc,
    stdoutText: () => stdout.text(),
    stderrText: () => stderr.text(),
    stop: (signal = "SIGTERM", graceMs = 5000) => stopProcess(proc, signal, graceMs),
  };

  const timeoutMs = options.startTimeoutMs ?? 4000;
  let why = "";
  try {
    const state = await waitFor(
      async () => {
        if (proc.exitCode !== null || proc.signalCode !== null) return "exited";
        const ready = (await canConnect(port)) && (httpPort === 0 || (await canConnect(httpPort)));
        return ready && "ready";
      },
      { timeoutMs, what: `msgbus serve on ports ${port}/${httpPort}` },
    );
    if (state === "exited") why = `exited with code ${proc.exitCode ?? proc.signalCode}`;
  } catch (error) {
    why = (error as Error).message;
  }
  if (why) {
    await stopProcess(proc, "SIGKILL");
    await Promise.all([stdout.done, stderr.done]);
    throw new Error(`msgbus serve did not start (${why})\n--- stderr ---\n${stderr.text()}\n--- stdout ---\n${stdout.text()}`);
  }
  return server;
}
