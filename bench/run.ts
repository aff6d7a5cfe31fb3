// `bun run bench`: drives the compiled msgbus and a real redis-server with the same clients in
// the same run and prints ratios. Numbers are reported, never asserted (that is the tests' job).
// Usage: bun bench/run.ts [--quick] [--only resp,memory,fanout,latency,idle,http,durable]

import { cleanupAll, format, mib, redisBenchmark, rss, startMsgbus, startRedis, table } from "./lib.ts";

const argv = process.argv.slice(2);
const quick = argv.includes("--quick");
const onlyIndex = argv.indexOf("--only");
const only = onlyIndex >= 0 ? new Set(argv[onlyIndex + 1]!.split(",")) : undefined;
const wanted = (part: string) => !only || only.has(part);

const big = ["--max-queue", "5000000", "--max-queue-bytes", "4GiB", "--max-memory", "4GiB"];

async function resp(): Promise<void> {
  const requests = quick ? 200000 : 1000000;
  const rounds = quick ? 1 : 3;
  console.log(
    `\n## RESP: redis-benchmark -c 50 -n ${requests} -d 100 -t ping,lpush,rpop, and the command line PUBLISH t x (msgbus and redis-server, same run; median of ${rounds} alternating rounds)\n`,
  );
  const rows: (string | number)[][] = [];
  for (const pipeline of [1, 16]) {
    const n = pipeline === 1 ? Math.min(requests, 300000) : requests;
    const args = ["-c", "50", "-n", String(n), "-d", "100", "-P", String(pipeline), "-t", "ping,lpush,rpop"];
    // Fresh servers per round, alternating who goes first, so neither gets a warmer machine.
    const runs: Record<string, Record<string, number>[]> = { msgbus: [], redis: [] };
    for (let round = 0; round < rounds; round++) {
      for (const name of round % 2 === 0 ? ["msgbus", "redis"] : ["redis", "msgbus"]) {
        const server = name === "msgbus" ? await startMsgbus(big) : await startRedis();
        const result = await redisBenchmark(server.port, args);
        // PUBLISH to a topic nobody subscribes to, as a command line (-d does not apply).
        Object.assign(result, await redisBenchmark(server.port, [...args.slice(0, -2), "PUBLISH", "t", "x"]));
        runs[name]!.push(result);
        await server.stop();
      }
    }
    for (const test of Object.keys(runs.redis![0]!)) {
      const m = median(runs.msgbus!.map((r) => r[test] ?? NaN));
      const r = median(runs.redis!.map((x) => x[test]!));
      rows.push([`${test} -P ${pipeline}`, m, r, `${(m / r).toFixed(2)}x`]);
    }
  }
  console.log(table(["test", "msgbus req/s", "redis req/s", "msgbus/redis"], rows));
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
}

async function memory(): Promise<void> {
  const count = quick ? 200000 : 1000000;
  console.log(`\n## Memory: ${count.toLocaleString("en-US")} queued 100-byte messages (redis-benchmark -t lpush -r 1 ... one list)\n`);
  const rows: (string | number)[][] = [];
  for (const name of ["msgbus", "redis"]) {
    const server = name === "msgbus" ? await startMsgbus(big) : await startRedis();
    const before = rss(server.pid);
    // One key (no -r): every LPUSH goes to the same list/topic "mylist".
    await redisBenchmark(server.port, ["-c", "50", "-n", String(count), "-d", "100", "-P", "16", "-t", "lpush"]);
    await Bun.sleep(500);
    const after = rss(server.pid);
    rows.push([name, mib(before), mib(after), `${Math.round((after - before) / count)} B`]);
    await server.stop();
  }
  console.log(table(["server", "RSS empty", `RSS with ${count.toLocaleString("en-US")}`, "per message"], rows));
}

async function optional(part: string, file: string): Promise<void> {
  let module: { run?: (options: { quick: boolean }) => Promise<void> };
  try {
    module = await import(file);
  } catch (error) {
    console.log(`\n(${part} benchmark not available: ${error instanceof Error ? error.message : String(error)})`);
    return;
  }
  if (module.run) await module.run({ quick });
}

try {
  console.log(`# msgbus benchmark — ${new Date().toISOString()} — ${navigator.hardwareConcurrency} cores, bun ${Bun.version}`);
  if (wanted("resp")) await resp();
  if (wanted("memory")) await memory();
  const peers = new Set(["fanout", "latency", "idle"].filter(wanted));
  if (peers.size > 0) {
    const { run } = await import("./peers.ts");
    await run({ quick, parts: peers });
  }
  if (wanted("http")) await optional("http", "./http.ts");
  if (wanted("durable")) await optional("durable", "./durable.ts");
} finally {
  await cleanupAll();
}
console.log(`\n(${format(performance.now() / 1000)} s)`);
