// `bun run bench`: drives the compiled msgbus and a real redis-server with the same clients in
// the same run and prints ratios. Numbers are reported, never asserted (that is the tests' job).
// Usage: bun bench/run.ts [--quick] [--only resp,memory,fanout,latency,idle,http,durable,startup,redis]

import { cleanupAll, cpuSeconds, format, mib, redisBenchmark, redisBenchmarkTimed, rss, sleeps, startMsgbus, startRedis, table } from "./lib.ts";

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
    `\n## RESP: redis-benchmark -c 50 -n ${requests} -d 100, -t ping_inline, ping_mbulk, lpush, rpop and the command line PUBLISH t x (msgbus and redis-server, same run; median of ${rounds} alternating rounds)\n`,
  );
  const rows: (string | number)[][] = [];
  for (const pipeline of [1, 16]) {
    const n = pipeline === 1 ? Math.min(requests, 300000) : requests;
    const common = ["-c", "50", "-n", String(n), "-d", "100", "-P", String(pipeline)];
    // One test per run, so the server's CPU time can be read around each; PUBLISH to a topic
    // nobody subscribes to goes as a command line (-d does not apply to it).
    const tests = [
      ["-t", "ping_inline"],
      ["-t", "ping_mbulk"],
      ["-t", "lpush"],
      ["-t", "rpop"],
      ["PUBLISH", "t", "x"],
    ];
    // Fresh servers per round, alternating who goes first, so neither gets a warmer machine.
    const runs: Record<string, Record<string, { perSecond: number; cpu: number; clientCpu: number; sleeps: number }>[]> = { msgbus: [], redis: [] };
    for (let round = 0; round < rounds; round++) {
      for (const name of round % 2 === 0 ? ["msgbus", "redis"] : ["redis", "msgbus"]) {
        const server = name === "msgbus" ? await startMsgbus(big) : await startRedis();
        // The same unmeasured warm-up for both: msgbus's JIT compiles its hot paths during the
        // first ~100,000 requests (redis has nothing to warm). LPUSH and RPOP in equal numbers
        // leave the list as it was.
        for (const test of tests) await redisBenchmark(server.port, ["-c", "50", "-n", String(quick ? 50000 : 100000), "-d", "100", "-P", "16", ...test]);
        const result: Record<string, { perSecond: number; cpu: number; clientCpu: number; sleeps: number }> = {};
        for (const test of tests) {
          const before = cpuSeconds(server.pid);
          const slept = sleeps(server.pid);
          const measured = await redisBenchmarkTimed(server.port, [...common, ...test]);
          const cpu = ((cpuSeconds(server.pid) - before) * 1e6) / n;
          const clientCpu = (measured.clientCpu * 1e6) / n;
          const wakes = ((sleeps(server.pid) - slept) * 1000) / n;
          for (const [key, perSecond] of Object.entries(measured.rates)) result[key] = { perSecond, cpu, clientCpu, sleeps: wakes };
        }
        runs[name]!.push(result);
        await server.stop();
      }
    }
    for (const test of Object.keys(runs.redis![0]!)) {
      const m = median(runs.msgbus!.map((r) => r[test]?.perSecond ?? NaN));
      const r = median(runs.redis!.map((x) => x[test]!.perSecond));
      const mCpu = median(runs.msgbus!.map((x) => x[test]?.cpu ?? NaN));
      const rCpu = median(runs.redis!.map((x) => x[test]!.cpu));
      const mClient = median(runs.msgbus!.map((x) => x[test]?.clientCpu ?? NaN));
      const rClient = median(runs.redis!.map((x) => x[test]!.clientCpu));
      const mSleeps = median(runs.msgbus!.map((x) => x[test]?.sleeps ?? NaN));
      const rSleeps = median(runs.redis!.map((x) => x[test]!.sleeps));
      rows.push([
        `${test} -P ${pipeline}`,
        m,
        r,
        `${(m / r).toFixed(2)}x`,
        mCpu.toFixed(2),
        rCpu.toFixed(2),
        `${(rCpu / mCpu).toFixed(2)}x`,
        mClient.toFixed(2),
        rClient.toFixed(2),
        mSleeps.toFixed(1),
        rSleeps.toFixed(1),
      ]);
    }
  }
  console.log(
    table(
      [
        "test",
        "msgbus req/s",
        "redis req/s",
        "msgbus/redis",
        "msgbus CPU µs/req",
        "redis CPU µs/req",
        "CPU redis/msgbus",
        "client CPU µs/req (msgbus)",
        "client CPU µs/req (redis)",
        "msgbus sleeps/1k req",
        "redis sleeps/1k req",
      ],
      rows,
    ),
  );
  console.log("\n(CPU: the server process's user+system time per request, from /proc: steadier than req/s on a shared machine.)");
  console.log(
    "(client CPU: redis-benchmark's own user+system time per request. Where it exceeds the server's, the client is what limits req/s on 2 cores. Sleeps: how often the server's event loop ran out of work and waited; each costs the client a wakeup in its next send.)",
  );
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
}

async function memory(): Promise<void> {
  const count = quick ? 200000 : 1000000;
  const n = count.toLocaleString("en-US");
  console.log(`\n## Memory: ${n} queued 100-byte messages (redis-benchmark -t lpush ... one list)\n`);
  const rows: (string | number)[][] = [];
  // Per message of the first `count` (RSS with them − RSS of the server that has seen only a PING,
  // so what the process grows by on its first traffic counts against the messages: for msgbus
  // ~8 MiB of the JIT compilers, once per process), and of a second `count` written on top (what
  // one more message costs in a server that has been running).
  for (const name of ["msgbus", "redis"]) {
    const server = name === "msgbus" ? await startMsgbus(big) : await startRedis();
    const readings = [rss(server.pid)];
    for (let round = 0; round < 2; round++) {
      // One key (no -r): every LPUSH goes to the same list/topic "mylist".
      await redisBenchmark(server.port, ["-c", "50", "-n", String(count), "-d", "100", "-P", "16", "-t", "lpush"]);
      await Bun.sleep(500);
      readings.push(rss(server.pid));
    }
    const [empty, first, second] = readings as [number, number, number];
    rows.push([name, mib(empty), mib(first), `${Math.round((first - empty) / count)} B`, mib(second), `${Math.round((second - first) / count)} B`]);
    await server.stop();
  }
  console.log(
    table(["server", "RSS empty", `RSS with ${n}`, "per message", `RSS with ${(2 * count).toLocaleString("en-US")}`, `per message of the second ${n}`], rows),
  );
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
  if (wanted("startup")) await optional("startup", "./startup.ts");
  if (wanted("redis")) await optional("redis", "./redis.ts");
} finally {
  await cleanupAll();
}
console.log(`\n(${format(performance.now() / 1000)} s)`);
