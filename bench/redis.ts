// `bun run bench --only redis`: writes (LPUSH) and takes (RPOP) per second through 1, 2 and 3
// msgbus nodes sharing one redis-server (serve --redis), beside one in-memory msgbus and beside
// the same commands sent straight to that redis-server: the cost of the msgbus layer.

import { format, redisBenchmark, startMsgbus, startRedis, table } from "./lib.ts";

export async function run({ quick }: { quick: boolean }): Promise<void> {
  const perClient = quick ? 20000 : 100000;
  const clients = 48;
  console.log(
    `\n## Redis mode: redis-benchmark -d 100 -P 16 -t lpush,rpop, ${clients} connections split over the nodes, ${perClient.toLocaleString("en-US")} requests per node (sum of req/s)\n`,
  );
  const rows: (string | number)[][] = [];
  const measure = async (ports: number[]): Promise<Record<string, number>> => {
    const results = await Promise.all(
      ports.map((port) => redisBenchmark(port, ["-c", String(clients / ports.length), "-n", String(perClient), "-d", "100", "-P", "16", "-t", "lpush,rpop"])),
    );
    const sum: Record<string, number> = {};
    for (const r of results) for (const [test, value] of Object.entries(r)) sum[test] = (sum[test] ?? 0) + value;
    return sum;
  };
  const add = (name: string, r: Record<string, number>) => rows.push([name, format(r.LPUSH ?? NaN), format(r.RPOP ?? NaN)]);

  const redis = await startRedis();
  add("redis-server, straight", await measure([redis.port]));
  const memory = await startMsgbus(["--max-queue", "5000000", "--max-queue-bytes", "4GiB", "--max-memory", "4GiB"]);
  add("msgbus, in memory", await measure([memory.port]));
  await memory.stop();
  for (const count of [1, 2, 3]) {
    const nodes = await Promise.all(
      Array.from({ length: count }, () => startMsgbus(["--redis", `redis://127.0.0.1:${redis.port}`, "--max-queue", "5000000", "--max-queue-bytes", "4GiB"])),
    );
    add(`msgbus --redis, ${count} node${count > 1 ? "s" : ""}`, await measure(nodes.map((n) => n.port)));
    await Promise.all(nodes.map((n) => n.stop()));
    Bun.spawnSync(["redis-cli", "-p", String(redis.port), "flushall"]);
  }
  await redis.stop();
  console.log(table(["server", "writes/s (LPUSH)", "takes/s (RPOP)"], rows));
}
