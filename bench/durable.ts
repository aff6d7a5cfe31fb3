// Durable writes against in-memory ones and against Redis with and without its append-only file,
// in the same run, then the start-up time of a durable server holding 1,000,000 queued messages.
// Usage: bun bench/durable.ts [--quick]   (or `bun bench/run.ts --only durable`)

import { mkdtempSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ping } from "../test/helpers/redis.ts";
import { freePort } from "../test/helpers/ports.ts";
import { Output, spawnTracked } from "../test/helpers/processes.ts";
import { BINARY, cleanupAll, format, mib, need, redisBenchmark, redisCli, rss, startMsgbus, startRedis, table, type Running } from "./lib.ts";

/** Limits high enough that a benchmark's backlog (one topic, "mylist") is never dropped. */
const BIG = ["--max-queue", "5000000", "--max-queue-bytes", "4GiB", "--max-memory", "4GiB"];
const TARGET = 0.5;

interface Contender {
  name: string;
  start(dir: string): Promise<Running>;
  /** msgbus only: the queue must hold every write afterwards (nothing dropped). */
  msgbus: boolean;
}

const CONTENDERS: Contender[] = [
  { name: "msgbus in memory", msgbus: true, start: () => startMsgbus(BIG) },
  { name: "msgbus --data, --fsync process", msgbus: true, start: (dir) => startMsgbus(["--data", dir, "--fsync", "process", ...BIG]) },
  { name: "msgbus --data, --fsync always", msgbus: true, start: (dir) => startMsgbus(["--data", dir, "--fsync", "always", ...BIG]) },
  { name: "redis --appendonly no", msgbus: false, start: () => startRedis(["--appendonly", "no"]) },
  {
    name: "redis --appendonly yes --appendfsync everysec",
    msgbus: false,
    start: (dir) => startRedis(["--appendonly", "yes", "--appendfsync", "everysec", "--dir", dir]),
  },
];

function tempDir(): string {
  return mkdtempSync(join(tmpdir(), "msgbus-bench-durable-"));
}

/** Messages queued over every topic of a msgbus server (TOPICS, then LLEN of each). */
async function queued(port: number): Promise<number> {
  const cli = (...args: string[]) => redisCli(port, args);
  let total = 0;
  for (const topic of await cli("TOPICS")) total += Number((await cli("LLEN", topic))[0]);
  return total;
}

/** CPU seconds (user + system) a process has used so far (Linux; NaN elsewhere). */
function cpuSeconds(pid: number): number {
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]!.split(" ");
    return (Number(fields[11]) + Number(fields[12])) / 100; // utime, stime in USER_HZ (100 on Linux)
  } catch {
    return NaN;
  }
}

interface Result {
  rate: number;
  /** Server CPU per write in microseconds: steadier than req/s on a shared machine. */
  cpu: number;
}

async function writes(quick: boolean): Promise<void> {
  const requests = { 1: quick ? 50000 : 200000, 16: quick ? 200000 : 1000000 } as const;
  console.log(
    `\n## Durable writes: redis-benchmark -c 50 -d 100 -t lpush, -n ${requests[1].toLocaleString("en-US")} at -P 1 and ` +
      `${requests[16].toLocaleString("en-US")} at -P 16 (fresh server and data directory each)\n`,
  );
  const results = new Map<string, Record<number, Result>>();
  const problems: string[] = [];
  for (const pipeline of [1, 16] as const) {
    const n = requests[pipeline];
    // Alternate who goes first, so nobody always gets the warmest (or busiest) machine.
    const order = pipeline === 1 ? CONTENDERS : [...CONTENDERS].reverse();
    for (const contender of order) {
      const dir = tempDir();
      try {
        const server = await contender.start(dir);
        const cpuBefore = cpuSeconds(server.pid);
        const rates = await redisBenchmark(server.port, ["-c", "50", "-n", String(n), "-d", "100", "-P", String(pipeline), "-t", "lpush"]);
        const cpu = ((cpuSeconds(server.pid) - cpuBefore) * 1e6) / n;
        if (contender.msgbus) {
          const depth = await queued(server.port);
          if (depth !== n) problems.push(`${contender.name} -P ${pipeline}: ${depth} of ${n} writes queued afterwards`);
        }
        await server.stop();
        const row = results.get(contender.name) ?? {};
        row[pipeline] = { rate: rates.LPUSH ?? NaN, cpu };
        results.set(contender.name, row);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    }
  }
  const memory = results.get(CONTENDERS[0]!.name)!;
  const ratio = (value: number, base: number) => `${(value / base).toFixed(2)}x`;
  console.log(
    table(
      ["server", "-P 1 req/s", "vs memory", "-P 16 req/s", "vs memory", "CPU µs/write -P 1", "-P 16"],
      CONTENDERS.map((c) => {
        const r = results.get(c.name)!;
        return [c.name, r[1]!.rate, ratio(r[1]!.rate, memory[1]!.rate), r[16]!.rate, ratio(r[16]!.rate, memory[16]!.rate), r[1]!.cpu, r[16]!.cpu];
      }),
    ),
  );
  console.log(`\n("vs memory": against msgbus in memory in the same run; CPU: the server process's user + system time per write)`);
  const durable = results.get(CONTENDERS[1]!.name)![16]!.rate / memory[16]!.rate;
  console.log(
    `\ntarget: durable (--fsync process) >= ${TARGET}x in-memory with pipelining (-P 16): ${durable.toFixed(2)}x, ` + (durable >= TARGET ? "met" : "NOT met"),
  );
  for (const problem of problems) console.log(`warning: ${problem}`);
}

interface Started {
  /** From spawn until the TCP port answered PING. */
  readyMs: number;
  /** The server's "recovered N queued messages ... in X ms" line. */
  recovered: string;
  rss: number;
  stop(): Promise<number>;
}

/** Spawns `msgbus serve` on `dir` and times it from spawn until its TCP port answers PING. */
async function timedStart(dir: string): Promise<Started> {
  const port = freePort();
  const started = performance.now();
  const proc = spawnTracked([BINARY, "serve", "--host", "127.0.0.1", "--port", String(port), "--http-port", "0", "--data", dir, ...BIG], {
    stdout: "ignore",
    stderr: "pipe",
  });
  const log = new Output(proc.stderr);
  for (;;) {
    if ((await ping(port, "127.0.0.1", 200)) === "+PONG") break;
    if (proc.exitCode !== null || proc.signalCode !== null) throw new Error(`msgbus serve exited (${proc.exitCode ?? proc.signalCode}):\n${log.text()}`);
    if (performance.now() - started > 120000) throw new Error(`msgbus serve did not answer PING within 120 s:\n${log.text()}`);
    await Bun.sleep(5);
  }
  const readyMs = performance.now() - started;
  const recovered = /recovered .*/.exec(log.text())?.[0] ?? '(no "recovered" line in the log)';
  return {
    readyMs,
    recovered,
    rss: rss(proc.pid),
    async stop() {
      proc.kill("SIGTERM");
      const code = await proc.exited;
      await log.done;
      return code;
    },
  };
}

async function startup(quick: boolean): Promise<void> {
  const count = quick ? 200000 : 1000000;
  console.log(`\n## Durable start-up: ${count.toLocaleString("en-US")} queued 100-byte messages (--fsync process)\n`);
  const dir = tempDir();
  try {
    const empty = await timedStart(dir);
    const fill = await empty.stop();
    if (fill !== 0) throw new Error(`msgbus serve exited with ${fill} on SIGTERM`);

    const server = await startMsgbus(["--data", dir, ...BIG]);
    const filling = performance.now();
    const rates = await redisBenchmark(server.port, ["-c", "50", "-n", String(count), "-d", "100", "-P", "16", "-t", "lpush"]);
    const filled = performance.now() - filling;
    const depth = await queued(server.port);
    const stopping = performance.now();
    await server.stop();
    const stopMs = performance.now() - stopping;
    const files = ["msgbus.db", "msgbus.db-wal"].map((f) => {
      try {
        return statSync(join(dir, f)).size;
      } catch {
        return 0;
      }
    });

    const restarted = await timedStart(dir);
    const exit = await restarted.stop();
    console.log(
      table(
        ["step", "result"],
        [
          ["start on an empty directory, spawn to PING", `${format(empty.readyMs)} ms`],
          [
            "fill (redis-benchmark -c 50 -P 16 -t lpush)",
            `${format(filled / 1000)} s, ${format(rates.LPUSH ?? NaN)} writes/s, ${depth.toLocaleString("en-US")} queued`,
          ],
          ["graceful stop (SIGTERM: flush, checkpoint)", `${format(stopMs)} ms`],
          ["files after the stop", `msgbus.db ${mib(files[0]!)}, WAL ${mib(files[1]!)}`],
          ["restart, spawn to PING", `${format(restarted.readyMs)} ms`],
          ["server's log", restarted.recovered],
          ["RSS after the restart", mib(restarted.rss)],
          ["exit code of the second stop", String(exit)],
        ],
      ),
    );
    if (depth !== count) console.log(`warning: ${depth} of ${count} messages queued after the fill`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

export async function run({ quick }: { quick: boolean }): Promise<void> {
  need("redis-cli", "apt-get install redis-tools");
  await writes(quick);
  await startup(quick);
}

if (import.meta.main) {
  const started = performance.now();
  try {
    await run({ quick: process.argv.includes("--quick") });
  } finally {
    await cleanupAll();
  }
  console.log(`\n(${format((performance.now() - started) / 1000)} s)`);
}
