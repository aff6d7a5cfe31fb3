// Two msgbus nodes on a three-master Redis Cluster (serve --redis redis+cluster://…): a topic and
// its dead-letter topic share one hash slot, so every script runs on one shard. One cluster for
// the whole file, to keep it fast.

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

const ready = hasBinary() && hasRedis() && Bun.which("redis-cli") !== null;

describe.skipIf(!ready)("two msgbus nodes on a three-master Redis Cluster", () => {
  let dir: string;
  let masters: TestRedis[] = [];
  let nodes: TestServer[] = [];

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), "msgbus-cluster-"));
    masters = await Promise.all(
      [0, 1, 2].map((i) => startRedis(["--cluster-enabled", "yes", "--cluster-config-file", join(dir, `nodes-${i}.conf`), "--dir", dir])),
    );
    const create = Bun.spawnSync([
      "redis-cli",
      "--cluster",
      "create",
      ...masters.map((m) => `127.0.0.1:${m.port}`),
      "--cluster-replicas",
      "0",
      "--cluster-yes",
    ]);
    if (create.exitCode !== 0) throw new Error(`redis-cli --cluster create failed: ${create.stdout.toString()}${create.stderr.toString()}`);
    await waitFor(
      () =>
        masters.every((m) =>
          Bun.spawnSync(["redis-cli", "-p", String(m.port), "cluster", "info"])
            .stdout.toString()
            .includes("cluster_state:ok"),
        ),
      { timeoutMs: 10000, what: "the cluster to be ok" },
    );
    const url = `redis+cluster://${masters.map((m) => `127.0.0.1:${m.port}`).join(",")}`;
    nodes = await Promise.all([0, 1].map(() => startServer({ args: ["--redis", url, "--max-deliveries", "2"], startTimeoutMs: 8000 })));
  }, 30000);

  afterAll(async () => {
    await Promise.all(nodes.map((n) => n.stop()));
    await Promise.all(masters.map((m) => m.stop()));
    await cleanupAll();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  test("put on one node, get on the other, for topics spread over the shards", async () => {
    const topics = Array.from({ length: 12 }, (_, i) => `spread-${i}`);
    for (const topic of topics) expect((await runCli(["put", "--url", nodes[0]!.url, topic, `for ${topic}`])).code).toBe(0);
    for (const topic of topics) {
      const got = await runCli(["get", "--url", nodes[1]!.url, topic]);
      expect(got.stdoutText).toBe(`for ${topic}`);
    }
    const slots = new Set(
      topics.map((t) =>
        Bun.spawnSync(["redis-cli", "-p", String(masters[0]!.port), "cluster", "keyslot", `{${t}}`])
          .stdout.toString()
          .trim(),
      ),
    );
    expect(slots.size).toBeGreaterThan(1);
  });

  test("a subscriber on one node sees every message published on the other, in id order", async () => {
    const sub = spawnCli(["sub", "--url", nodes[1]!.url, "cl-sensors", "--json"]);
    await waitFor(async () => (await runCli(["pub", "--url", nodes[0]!.url, "cl-sensors", "probe"])).code === 0 && sub.lines().length > 0, {
      what: "the subscriber to be live",
    });
    // A probe published before the subscriber's first line may still arrive later: probes are skipped.
    const written = () =>
      sub
        .lines()
        .map((l) => JSON.parse(l))
        .filter((m) => m.payload !== "probe");
    expect((await runCli(["pub", "--url", nodes[0]!.url, "cl-sensors", "--lines"], { stdin: "a\nb\nc\nd" })).code).toBe(0);
    await waitFor(() => written().length >= 4, { what: "the four messages" });
    const seen = written();
    await sub.stop();
    expect(seen.map((m) => m.payload)).toEqual(["a", "b", "c", "d"]);
    expect(seen.map((m) => m.id)).toEqual([...seen.map((m) => m.id)].sort((x, y) => x - y));
  });

  test("a lease taken on one node expires and the message is redelivered on the other; past its deliveries it is dead-lettered", async () => {
    expect((await runCli(["put", "--url", nodes[0]!.url, "cl-jobs", "fragile"])).code).toBe(0);
    const first = JSON.parse((await runCli(["get", "--url", nodes[0]!.url, "cl-jobs", "--lease", "300ms", "--json"])).stdoutText);
    expect(first.deliveries).toBe(1);
    const second = JSON.parse((await runCli(["get", "--url", nodes[1]!.url, "cl-jobs", "--wait", "5s", "--lease", "5s", "--json"])).stdoutText);
    expect(second.id).toBe(first.id);
    expect(second.deliveries).toBe(2);
    expect((await runCli(["nack", "--url", nodes[0]!.url, "cl-jobs", String(second.id)])).code).toBe(0);
    const dead = JSON.parse((await runCli(["get", "--url", nodes[1]!.url, "cl-jobs.dead", "--json"])).stdoutText);
    expect(dead.payload).toBe("fragile");
    expect(dead.origin).toEqual({ topic: "cl-jobs", id: first.id, deliveries: 2 });
  });
});
