// A throwaway redis-server on a free loopback port, for the shared-Redis mode and for comparing
// msgbus's RESP with the real thing. Nothing is written to disk.

import type { Subprocess } from "bun";
import { freePort } from "./ports.ts";
import { Output, spawnTracked, stopProcess } from "./processes.ts";
import { waitFor } from "./wait.ts";

export interface TestRedis {
  port: number;
  /** redis://127.0.0.1:PORT */
  url: string;
  proc: Subprocess<any, any, any>;
  /** SIGTERM, SIGKILL after a grace period; resolves with the exit code. */
  stop(): Promise<number>;
}

/** True when redis-server is on PATH (apt-get install redis-server). */
export function hasRedis(): boolean {
  return Bun.which("redis-server") !== null;
}

/** `port`: a given one (a restart on the same port); default a free one. */
export async function startRedis(extraArgs: string[] = [], port = freePort()): Promise<TestRedis> {
  if (!hasRedis()) throw new Error("redis-server is not on PATH (Debian: apt-get install redis-server)");
  const proc = spawnTracked(["redis-server", "--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", ...extraArgs]);
  // Read both pipes so redis never blocks on a full one; its log goes to stdout.
  const output = new Output(proc.stdout);
  const errors = new Output(proc.stderr);
  let why = "";
  try {
    const state = await waitFor(async () => (proc.exitCode !== null || proc.signalCode !== null ? "exited" : (await ping(port)) === "+PONG" && "ready"), {
      timeoutMs: 4000,
      what: `redis-server on port ${port} to answer PING`,
    });
    if (state === "exited") why = `redis-server exited with code ${proc.exitCode ?? proc.signalCode}`;
  } catch (error) {
    why = (error as Error).message;
  }
  if (why) {
    await stopProcess(proc, "SIGKILL");
    await Promise.all([output.done, errors.done]);
    throw new Error(`${why}\n--- redis-server output ---\n${output.text()}${errors.text()}`);
  }
  return { port, url: `redis://127.0.0.1:${port}`, proc, stop: () => stopProcess(proc, "SIGTERM", 3000) };
}

/** Sends PING over RESP and resolves with the first reply line ("+PONG"), or "" if unreachable. */
export function ping(port: number, hostname = "127.0.0.1", timeoutMs = 1000): Promise<string> {
  return new Promise((resolve) => {
    let reply = "";
    const timer = setTimeout(() => resolve(reply.split("\r\n")[0] ?? ""), timeoutMs);
    const done = (value: string) => {
      clearTimeout(timer);
      resolve(value);
    };
    Bun.connect({
      hostname,
      port,
      socket: {
        open(socket) {
          socket.write("*1\r\n$4\r\nPING\r\n");
        },
        data(socket, chunk) {
          reply += chunk.toString();
          if (reply.includes("\r\n")) {
            socket.end();
            done(reply.split("\r\n")[0]!);
          }
        },
        close() {
          done(reply.split("\r\n")[0] ?? "");
        },
        connectError() {
          done("");
        },
        error() {
          done("");
        },
      },
    }).catch(() => done(""));
  });
}
