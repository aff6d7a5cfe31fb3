// Redis clients talking to msgbus: redis-cli and Bun's built-in RedisClient use the Redis aliases
// (RPUSH, LPOP, BLPOP, LLEN, PUBLISH, SUBSCRIBE), and what they write is what msgbus's own
// commands read, and the other way round.

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { RedisClient } from "bun";
import { hasBinary } from "../helpers/binary.ts";
import { runCli, spawnCli } from "../helpers/cli.ts";
import { cleanupAll, Output, spawnTracked } from "../helpers/processes.ts";
import { startServer, type TestServer } from "../helpers/server.ts";
import { waitFor } from "../helpers/wait.ts";

const hasRedisCli = Bun.which("redis-cli") !== null;

async function redisCli(port: number, ...args: string[]): Promise<{ code: number; out: string }> {
  const proc = spawnTracked(["redis-cli", "-p", String(port), ...args]);
  const out = new Output(proc.stdout);
  const code = await proc.exited;
  await out.done;
  return { code, out: out.text() };
}

let topicCount = 0;
const freshTopic = (name: string) => `${name}-${++topicCount}`;

afterAll(() => cleanupAll());

describe.skipIf(!hasBinary())("Redis clients", () => {
  let server: TestServer;
  let env: Record<string, string>;
  let redis: RedisClient;
  const cli = (args: string[], options: { stdin?: Uint8Array | string } = {}) => runCli(args, { env, ...options });

  beforeAll(async () => {
    server = await startServer({ httpPort: 0 });
    env = { MSGBUS_URL: server.url };
    redis = new RedisClient(`redis://127.0.0.1:${server.port}`);
  });
  afterAll(() => redis.close());

  // Skipped only on a developer machine without redis-cli; CI installs it.
  describe.skipIf(!hasRedisCli && !process.env.CI)("redis-cli", () => {
    test("redis-cli -p P RPUSH jobs x, then redis-cli -p P LPOP jobs", async () => {
      const jobs = freshTopic("jobs");
      expect(await redisCli(server.port, "RPUSH", jobs, "x")).toEqual({ code: 0, out: "1\n" });
      expect(await redisCli(server.port, "LPOP", jobs)).toEqual({ code: 0, out: "x\n" });
      expect(await redisCli(server.port, "LLEN", jobs)).toEqual({ code: 0, out: "0\n" });
    });

    test("what redis-cli pushes, msgbus get takes, and what msgbus put writes, redis-cli pops", async () => {
      const jobs = freshTopic("jobs");
      await redisCli(server.port, "RPUSH", jobs, "from redis-cli");
      expect((await cli(["get", jobs])).stdoutText).toBe("from redis-cli");
      await cli(["put", jobs, "from msgbus"]);
      expect((await redisCli(server.port, "LPOP", jobs)).out).toBe("from msgbus\n");
    });

    test("redis-cli BLPOP waits for a message written by msgbus put", async () => {
      const jobs = freshTopic("jobs");
      const blpop = spawnTracked(["redis-cli", "-p", String(server.port), "BLPOP", jobs, "10"]);
      const out = new Output(blpop.stdout);
      await waitFor(async () => ((await redis.send("STATS", [jobs])) as Record<string, number>).consumers > 0, { what: "BLPOP to wait" });
      await cli(["put", jobs, "wake up"]);
      expect(await blpop.exited).toBe(0);
      await out.done;
      expect(out.text()).toBe(`${jobs}\nwake up\n`);
    });
  });

  describe("Bun's RedisClient", () => {
    test("send('RPUSH'), llen and lpop work against msgbus, FIFO whatever the L or R", async () => {
      const jobs = freshTopic("jobs");
      expect(await redis.send("RPUSH", [jobs, "a", "b"])).toBe(2);
      expect(await redis.send("LPUSH", [jobs, "c"])).toBe(3);
      expect(await redis.llen(jobs)).toBe(3);
      expect(await redis.lpop(jobs)).toBe("a");
      expect(await redis.rpop(jobs)).toBe("b");
      expect((await cli(["get", jobs])).stdoutText).toBe("c");
      expect(await redis.lpop(jobs)).toBeNull();
    });

    test("publish reaches msgbus sub, and msgbus pub reaches a RedisClient subscriber", async () => {
      const news = freshTopic("news");
      const sub = spawnCli(["sub", news], { env });
      const subscriber = new RedisClient(`redis://127.0.0.1:${server.port}`);
      const received: string[] = [];
      try {
        await subscriber.subscribe(news, (message) => received.push(message));
        await waitFor(async () => ((await redis.send("STATS", [news])) as Record<string, number>).subscribers === 2, { what: "both subscribers" });
        expect(await redis.publish(news, "from redis")).toBe(2);
        await cli(["pub", news, "from msgbus"]);
        expect(await sub.waitForLines(2)).toEqual(["from redis", "from msgbus"]);
        await waitFor(() => received.length === 2, { what: "the RedisClient subscriber's messages" });
        expect(received).toEqual(["from redis", "from msgbus"]);
      } finally {
        subscriber.close();
        await sub.stop();
      }
    });

    test("binary payloads pushed by RedisClient come out of msgbus get byte for byte", async () => {
      const bin = freshTopic("bin");
      const payload = new Uint8Array([0, 1, 2, 255, 13, 10, 0]);
      expect(await redis.send("RPUSH", [bin, Buffer.from(payload) as unknown as string])).toBe(1);
      expect(await redis.lpush(bin, Buffer.from([]) as unknown as string)).toBe(2);
      expect((await cli(["get", bin])).stdout).toEqual(payload);
      const empty = await cli(["get", bin]);
      expect(empty.code).toBe(0);
      expect(empty.stdout.length).toBe(0);
    });
  });
});
