// Several msgbus servers on one Redis (serve --redis) act as one bus: writes on one node are read
// on another, subscribers everywhere see every message in id order, competing consumers on three
// nodes share 10,000 messages with no loss and no duplicate, leases outlive the node that granted
// them, and a Redis that goes away makes writes fail loudly, then service resumes by itself.

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { hasBinary } from "../helpers/binary.ts";
import { runCli, spawnCli } from "../helpers/cli.ts";
import { cleanupAll } from "../helpers/processes.ts";
import { hasRedis, startRedis, type TestRedis } from "../helpers/redis.ts";
import { startServer, type TestServer } from "../helpers/server.ts";
import { waitFor } from "../helpers/wait.ts";
import { Resp } from "./transports.ts";

const ready = hasBinary() && hasRedis();

describe.skipIf(!ready)("three msgbus nodes on one standalone Redis", () => {
  let redis: TestRedis;
  let nodes: TestServer[] = [];

  beforeAll(async () => {
    redis = await startRedis();
    nodes = await Promise.all([0, 1, 2].map(() => startServer({ args: ["--redis", redis.url] })));
  });

  afterAll(async () => {
    await Promise.all(nodes.map((n) => n.stop()));
    await redis?.stop();
    await cleanupAll();
  });

  const [A, B, C] = [0, 1, 2].map((i) => () => nodes[i]!);

  test("a message written on one node is taken on another, byte for byte", async () => {
    const payload = new Uint8Array([0, 255, 1, 13, 10, 128, 65]);
    expect((await runCli(["put", "--url", A().url, "cross"], { stdin: payload })).code).toBe(0);
    const got = await runCli(["get", "--url", B().url, "cross"]);
    expect(got.code).toBe(0);
    expect([...got.stdout]).toEqual([...payload]);
    expect((await runCli(["get", "--url", C().url, "cross"])).code).toBe(3); // taken once, by one node
    const http = await fetch(`${A().httpUrl}/_/health`);
    expect(await http.json()).toEqual({ status: "ok", redis: "up" });
  });

  test("peek on another node (RESP PEEK, HTTP ?peek) shows the queued messages in id order and takes none", async () => {
    for (const word of ["one", "two", "three"]) expect((await runCli(["put", "--url", A().url, "peeked", word])).code).toBe(0);
    const peeked = await runCli(["peek", "--url", B().url, "peeked", "-n", "2", "--since", "1", "--json"]);
    expect(peeked.code).toBe(0);
    expect(
      peeked.stdoutText
        .trim()
        .split("\n")
        .map((line) => JSON.parse(line).payload),
    ).toEqual(["two", "three"]);
    const overHttp = (await (await fetch(`${C().httpUrl}/peeked?peek&n=10`)).json()) as { id: number }[];
    expect(overHttp.map((m) => m.id)).toEqual([1, 2, 3]);
    expect((await runCli(["get", "--url", C().url, "peeked"])).stdoutText).toBe("one"); // still queued, in order
  });

  test("a subscriber on node B (WebSocket) sees every message published on node A, in id order", async () => {
    const sub = spawnCli(["sub", "--url", `ws://127.0.0.1:${B().httpPort}`, "sensors", "--json"]);
    await waitFor(async () => (await runCli(["pub", "--url", A().url, "sensors", "probe"])).code === 0 && sub.lines().length > 0, {
      what: "the subscriber to be live",
    });
    // A probe published before the subscriber's first line may still arrive later: probes are skipped.
    const written = () =>
      sub
        .lines()
        .map((line) => JSON.parse(line))
        .filter((m) => m.payload !== "probe");
    const lines = Array.from({ length: 50 }, (_, i) => `m${i}`).join("\n");
    expect((await runCli(["pub", "--url", A().url, "sensors", "--lines"], { stdin: lines })).code).toBe(0);
    await waitFor(() => written().length >= 50, { what: "the 50 messages" });
    const seen = written();
    await sub.stop();
    expect(seen.map((m) => m.payload)).toEqual(Array.from({ length: 50 }, (_, i) => `m${i}`));
    const ids = seen.map((m) => m.id);
    expect(ids).toEqual([...ids].sort((a, b) => a - b));
    expect(new Set(ids).size).toBe(50);
  });

  test("PUBLISH answers the subscribers on the node it is sent to, and the message is queued in Redis", async () => {
    const watchers = [await Resp.connect(A().port), await Resp.connect(A().port), await Resp.connect(B().port)];
    const publisher = await Resp.connect(A().port);
    try {
      expect(await publisher.send(["PUBLISH", "counted", "before"])).toBe(0);
      for (const watcher of watchers) await watcher.send(["SUBSCRIBE", "counted"]);
      expect(await publisher.send(["PUBLISH", "counted", "hello"])).toBe(2); // node B's subscriber is B's
      expect(await publisher.send(["LLEN", "counted"])).toBe(2);
      expect((await runCli(["get", "--url", C().url, "counted"])).stdoutText).toBe("before");
    } finally {
      for (const watcher of watchers) watcher.close();
      publisher.close();
    }
  });

  test("a since-replay on node C of messages written on A, then live ones written on B: no gap, no duplicate", async () => {
    const first = Array.from({ length: 5 }, (_, i) => `r${i + 1}`).join("\n");
    expect((await runCli(["put", "--url", A().url, "replay", "--lines"], { stdin: first })).code).toBe(0);
    const sub = spawnCli(["sub", "--url", C().url, "replay", "--since", "2", "--json"]);
    await sub.waitForLines(3);
    const later = Array.from({ length: 5 }, (_, i) => `r${i + 6}`).join("\n");
    expect((await runCli(["put", "--url", B().url, "replay", "--lines"], { stdin: later })).code).toBe(0);
    const seen = (await sub.waitForLines(8)).map((line) => JSON.parse(line));
    await sub.stop();
    expect(seen.map((m) => m.id)).toEqual([3, 4, 5, 6, 7, 8, 9, 10]);
    expect(seen.map((m) => m.payload)).toEqual(["r3", "r4", "r5", "r6", "r7", "r8", "r9", "r10"]);
  });

  test("10,000 messages consumed by `msgbus on` on three nodes: each exactly once", async () => {
    const total = 10000;
    const consumers = nodes.map((n) => spawnCli(["on", "--url", n.url, "work", "--concurrency", "32", "--json"]));
    const lines = Array.from({ length: total }, (_, i) => `job-${i}`).join("\n");
    expect((await runCli(["put", "--url", A().url, "work", "--lines"], { stdin: lines, timeoutMs: 30000 })).code).toBe(0);
    await waitFor(() => consumers.reduce((n, c) => n + c.lines().length, 0) >= total, { timeoutMs: 30000, what: `${total} messages consumed` });
    await new Promise((resolve) => setTimeout(resolve, 300)); // a duplicate would show up now
    await Promise.all(consumers.map((c) => c.stop()));
    const all = consumers.flatMap((c) => c.lines().map((l) => JSON.parse(l).payload));
    const counts = new Map<string, number>();
    for (const p of all) counts.set(p, (counts.get(p) ?? 0) + 1);
    expect([...counts.values()].filter((n) => n > 1)).toEqual([]);
    expect(all.length).toBe(total);
    expect(new Set(all).size).toBe(total);
    for (const c of consumers) expect(c.lines().length).toBeGreaterThan(0); // every node took part
  }, 60000);

  test("a node killed with SIGKILL while it holds leases: the other nodes deliver its messages after the lease time", async () => {
    const doomed = await startServer({ args: ["--redis", redis.url] });
    expect((await runCli(["put", "--url", A().url, "crash", "--lines"], { stdin: "c1\nc2\nc3" })).code).toBe(0);
    for (let i = 0; i < 3; i++) expect((await runCli(["get", "--url", doomed.url, "crash", "--lease", "1s"])).code).toBe(0);
    await doomed.stop("SIGKILL");
    expect((await runCli(["get", "--url", B().url, "crash"])).code).toBe(3); // still leased
    const again: string[] = [];
    for (let i = 0; i < 3; i++) {
      const got = await runCli(["get", "--url", i % 2 ? B().url : C().url, "crash", "--wait", "5s", "--json"]);
      expect(got.code).toBe(0);
      const message = JSON.parse(got.stdoutText);
      expect(message.deliveries).toBe(2);
      again.push(message.payload);
    }
    // Each returns to the head as its lease ends (as on one server): all three, each once.
    expect(again.sort()).toEqual(["c1", "c2", "c3"]);
  });

  test("a nacked message past its deliveries moves to <topic>.dead, read on another node", async () => {
    expect((await runCli(["put", "--url", A().url, "poison", "bad"])).code).toBe(0);
    for (let i = 1; i <= 2; i++) {
      const got = JSON.parse((await runCli(["get", "--url", nodes[i % 3]!.url, "poison", "--lease", "5s", "--max-deliveries", "2", "--json"])).stdoutText);
      expect((await runCli(["nack", "--url", nodes[(i + 1) % 3]!.url, "poison", String(got.id)])).code).toBe(0);
    }
    const dead = JSON.parse((await runCli(["get", "--url", C().url, "poison.dead", "--json"])).stdoutText);
    expect(dead.payload).toBe("bad");
    expect(dead.origin).toEqual({ topic: "poison", id: 1, deliveries: 2 });
  });
});

describe.skipIf(!ready)("Redis going away and coming back", () => {
  let dir: string;
  let redis: TestRedis;
  let node: TestServer;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), "msgbus-redis-"));
    redis = await startRedis(["--appendonly", "yes", "--appendfsync", "everysec", "--dir", dir]);
    node = await startServer({ args: ["--redis", redis.url] });
  });

  afterAll(async () => {
    await node?.stop();
    await redis?.stop();
    await cleanupAll();
    rmSync(dir, { recursive: true, force: true });
  });

  test("writes fail loudly while Redis is down (exit 4, -UNAVAILABLE, 503) and resume without a restart; nothing acked is lost", async () => {
    const acked = Array.from({ length: 100 }, (_, i) => `keep-${i}`).join("\n");
    expect((await runCli(["put", "--url", node.url, "durable", "--lines"], { stdin: acked })).code).toBe(0);
    await redis.stop(); // SIGTERM: Redis writes its append-only file and exits

    const put = await runCli(["put", "--url", node.url, "durable", "lost?"]);
    expect(put.code).toBe(4);
    expect(put.stderr).toMatch(/redis/i);
    const posted = await fetch(`${node.httpUrl}/durable`, { method: "POST", body: "lost?" });
    expect(posted.status).toBe(503);
    const health = await fetch(`${node.httpUrl}/_/health`);
    expect(health.status).toBe(503);
    expect(await health.json()).toEqual({ status: "degraded", redis: "down" });

    redis = await startRedisOn(redis.port, dir);
    await waitFor(async () => (await fetch(`${node.httpUrl}/_/health`)).status === 200, { timeoutMs: 10000, what: "the node to reconnect" });
    expect((await runCli(["put", "--url", node.url, "durable", "after"])).code).toBe(0);
    const got: string[] = [];
    for (;;) {
      const one = await fetch(`${node.httpUrl}/durable`);
      if (one.status === 204) break;
      got.push(await one.text());
    }
    expect(got.length).toBe(101);
    expect(got.slice(0, 100)).toEqual(acked.split("\n"));
    expect(got[100]).toBe("after");
  }, 40000);
});

/** Restarts a Redis on the same port and directory (its append-only file comes back). */
async function startRedisOn(port: number, dir: string): Promise<TestRedis> {
  return startRedis(["--appendonly", "yes", "--dir", dir], port);
}
