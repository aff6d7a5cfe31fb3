// HTTP figures: writes/s with wrk (POST, 100-byte body). WebSocket fan-out is measured beside
// redis-server and nats-server in bench/peers.ts.
// Usage: bun bench/http.ts [--quick]   (or `bun run bench --only http`)

import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { cleanupAll, need, startMsgbus, table } from "./lib.ts";

export interface WrkResult {
  requestsPerSecond: number;
  latencyAvgMs: number;
  requests: number;
  errors: number;
}

/** wrk against POST /{topic} with a `bodyBytes` body (a lua script written to a temp file). */
export async function httpWrites(
  httpPort: number,
  options: { seconds?: number; connections?: number; threads?: number; bodyBytes?: number } = {},
): Promise<WrkResult> {
  need("wrk", "apt-get install wrk");
  const { seconds = 5, connections = 50, threads = 1, bodyBytes = 100 } = options;
  const dir = mkdtempSync(join(tmpdir(), "msgbus-wrk-"));
  const script = join(dir, "post.lua");
  writeFileSync(script, `wrk.method = "POST"\nwrk.body = string.rep("x", ${bodyBytes})\nwrk.headers["Content-Type"] = "application/octet-stream"\n`);
  try {
    const proc = Bun.spawn(["wrk", "-t", String(threads), "-c", String(connections), "-d", `${seconds}s`, "-s", script, `http://127.0.0.1:${httpPort}/bench`], {
      stdout: "pipe",
      stderr: "pipe",
    });
    const out = await new Response(proc.stdout).text();
    await proc.exited;
    const perSecond = Number(/Requests\/sec:\s+([\d.]+)/.exec(out)?.[1] ?? NaN);
    const latency = /Latency\s+([\d.]+)(us|ms|s)/.exec(out);
    const latencyAvgMs = latency ? Number(latency[1]) * ({ us: 0.001, ms: 1, s: 1000 } as Record<string, number>)[latency[2]!]! : NaN;
    const requests = Number(/(\d+) requests in/.exec(out)?.[1] ?? NaN);
    const errors =
      Number(/Non-2xx or 3xx responses: (\d+)/.exec(out)?.[1] ?? 0) +
      Number(
        /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/
          .exec(out)
          ?.slice(1)
          .reduce((a, b) => a + Number(b), 0) ?? 0,
      );
    return { requestsPerSecond: perSecond, latencyAvgMs, requests, errors };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** The bench runner's entry: prints both tables. */
export async function run({ quick }: { quick: boolean }): Promise<void> {
  const seconds = quick ? 3 : 10;
  console.log(`\n## HTTP writes: wrk -t1 -c50 -d${seconds}s, POST /bench with a 100-byte body\n`);
  const msgbus = await startMsgbus(["--max-queue", "5000000", "--max-queue-bytes", "4GiB", "--max-memory", "4GiB"]);
  const writes = await httpWrites(msgbus.httpPort!, { seconds, connections: 50 });
  console.log(
    table(
      ["server", "writes/s", "avg latency", "non-2xx/errors"],
      [["msgbus HTTP", writes.requestsPerSecond, `${writes.latencyAvgMs.toFixed(2)} ms`, String(writes.errors)]],
    ),
  );
  await msgbus.stop();
  // WebSocket fan-out beside redis-server and nats-server: bench/peers.ts (`--only fanout`).
}

if (import.meta.main) {
  try {
    await run({ quick: process.argv.includes("--quick") });
  } finally {
    await cleanupAll();
  }
}
