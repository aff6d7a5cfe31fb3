// At-least-once end to end: leases, acks, nacks, retries, dead letters, crashed consumers,
// concurrency and graceful stops, with the compiled binary's `on`, `get --lease`, `ack`, `nack`.

import { topicStats } from "../helpers/stats.ts";
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { RedisClient } from "bun";
import { hasBinary } from "../helpers/binary.ts";
import { runCli, spawnCli } from "../helpers/cli.ts";
import { cleanupAll } from "../helpers/processes.ts";
import { startServer, type TestServer } from "../helpers/server.ts";
import { waitFor } from "../helpers/wait.ts";

const POSIX = process.platform !== "win32";

/** Lines of a file the handlers append to ([] while it does not exist). */
function linesOf(file: string): string[] {
  if (!existsSync(file)) return [];
  return readFileSync(file, "utf8")
    .split("\n")
    .filter((line) => line !== "");
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

let topicCount = 0;
const freshTopic = (name: string) => `${name}-${++topicCount}`;

afterAll(() => cleanupAll());

describe.skipIf(!hasBinary() || !POSIX)("leases, retries and dead letters", () => {
  let server: TestServer;
  let env: Record<string, string>;
  let dir: string;
  const cli = (args: string[], options: { stdin?: Uint8Array | string; timeoutMs?: number } = {}) => runCli(args, { env, ...options });
  let fileCount = 0;
  const freshFile = (name: string) => join(dir, `${name}-${++fileCount}`);

  beforeAll(async () => {
    server = await startServer({ httpPort: 0 });
    env = { MSGBUS_URL: server.url };
    dir = mkdtempSync(join(tmpdir(), "msgbus-leases-"));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  test("a handler that always fails: the message ends in <topic>.dead after exactly --max-deliveries tries", async () => {
    const topic = freshTopic("doomed");
    const tries = freshFile("tries");
    await cli(["put", topic, "poison"]);
    const on = spawnCli(["on", topic, "--max-deliveries", "3", "--", "sh", "-c", `echo "$MSGBUS_DELIVERY" >> "${tries}"; exit 1`], { env });
    const dead = await cli(["get", `${topic}.dead`, "--wait", "10s", "--json"]);
    expect(dead.code).toBe(0);
    const message = JSON.parse(dead.stdoutText);
    expect(message).toMatchObject({ topic: `${topic}.dead`, payload: "poison", origin: { topic, id: 1 } });
    expect(await on.stop()).toBe(0);
    expect(linesOf(tries)).toEqual(["1", "2", "3"]);
    expect(await topicStats(server.port, topic)).toMatchObject({ depth: 0, inflight: 0, acked: 0, dead_lettered: 1 });
    expect(on.stderrText()).toContain(`handler exited with code 1 for message 1 of ${topic} (delivery 3): moved to ${topic}.dead`);
  });

  test("get --json on <topic>.dead shows the number of tries in origin, and its own first delivery", async () => {
    const topic = freshTopic("counted");
    await cli(["put", topic, "poison"]);
    const on = spawnCli(["on", topic, "--max-deliveries", "2", "--", "false"], { env });
    const dead = JSON.parse((await cli(["get", `${topic}.dead`, "--wait", "10s", "--json"])).stdoutText);
    await on.stop();
    expect(dead.origin).toEqual({ topic, id: 1, deliveries: 2 });
    expect(dead.deliveries).toBe(1);
  });

  test("a handler that fails once: retried once, then acked", async () => {
    const topic = freshTopic("flaky");
    const tries = freshFile("tries");
    await cli(["put", topic, "job"]);
    const handler = `cat > /dev/null; echo "$MSGBUS_DELIVERY" >> "${tries}"; [ "$MSGBUS_DELIVERY" -ge 2 ]`;
    const on = spawnCli(["on", topic, "--", "sh", "-c", handler], { env });
    await waitFor(async () => (await topicStats(server.port, topic)).acked === 1, { what: "the ack" });
    expect(await on.stop()).toBe(0);
    expect(linesOf(tries)).toEqual(["1", "2"]);
    expect(await topicStats(server.port, topic)).toMatchObject({ depth: 0, inflight: 0, acked: 1, redelivered: 1, dead_lettered: 0 });
    expect((await cli(["get", `${topic}.dead`])).code).toBe(3);
  });

  test("an on process killed mid-job gives its message back to another consumer", async () => {
    const topic = freshTopic("crash");
    const started = freshFile("started");
    await cli(["put", topic, "precious"]);
    // The handler records its pid so the test can end it: it runs in a process group of its own.
    const first = spawnCli(["on", topic, "--", "sh", "-c", `echo $$ >> "${started}"; exec sleep 30`], { env });
    const handlerPid = Number(await waitFor(() => linesOf(started)[0], { what: "the first handler to start" }));
    try {
      expect(await first.stop("SIGKILL")).toBe(128 + 9);
      const second = spawnCli(["on", topic, "--json"], { env });
      const [line] = await second.waitForLines(1);
      expect(JSON.parse(line!)).toMatchObject({ id: 1, payload: "precious", deliveries: 2 });
      await second.stop();
    } finally {
      if (isAlive(handlerPid)) process.kill(handlerPid, "SIGKILL");
    }
  });

  test("an expired lease delivers the message again, and only the current delivery can be acked", async () => {
    const topic = freshTopic("expiry");
    await cli(["put", topic, "job"]);
    const first = JSON.parse((await cli(["get", topic, "--lease", "1s", "--json"])).stdoutText);
    expect(first).toMatchObject({ id: 1, deliveries: 1, payload: "job" });
    expect((await cli(["get", topic])).code).toBe(3); // hidden while leased
    const second = await waitFor(
      async () => {
        const got = await cli(["get", topic, "--lease", "30s", "--json"]);
        return got.code === 0 && JSON.parse(got.stdoutText);
      },
      { timeoutMs: 5000, intervalMs: 100, what: "the message to come back after its lease" },
    );
    expect(second).toMatchObject({ id: 1, deliveries: 2, payload: "job" });
    const stale = await cli(["ack", topic, "1", "--delivery", "1"]);
    expect(stale.code).toBe(8);
    expect(stale.stderr).toMatch(/^msgbus: .*delivered again\n$/);
    expect(await cli(["ack", topic, "1", "--delivery", "2"])).toMatchObject({ code: 0, stdoutText: "", stderr: "" });
    expect((await cli(["ack", topic, "1"])).code).toBe(8);
    expect(await topicStats(server.port, topic)).toMatchObject({ depth: 0, inflight: 0, acked: 1 });
  });

  test("nack --delay holds the message back, then it is delivered again", async () => {
    const topic = freshTopic("nack");
    await cli(["put", topic, "job"]);
    const first = JSON.parse((await cli(["get", topic, "--lease", "30s", "--json"])).stdoutText);
    const nacked = Date.now();
    expect((await cli(["nack", topic, String(first.id), "--delay", "2s", "--delivery", "1"])).code).toBe(0);
    // Held back: counted as delayed, not ready (2 s is slack for these two calls, not a window to hit).
    expect(await topicStats(server.port, topic)).toMatchObject({ depth: 0, inflight: 0, delayed: 1 });
    expect((await cli(["get", topic])).code).toBe(3);
    // The long poll is woken by the message's return, not by a sleep.
    const again = JSON.parse((await cli(["get", topic, "--wait", "10s", "--json"])).stdoutText);
    expect(again).toMatchObject({ id: first.id, deliveries: 2 });
    expect(Date.now() - nacked).toBeGreaterThanOrEqual(2000);
  });

  test("--concurrency 4 runs four handlers at once and handles each message once", async () => {
    const topic = freshTopic("parallel");
    const log = freshFile("log");
    await cli(["put", topic, "--lines"], { stdin: Array.from({ length: 12 }, (_, i) => `job${i + 1}`).join("\n") });
    // Each handler holds on until the test creates `release`: the first four are seen running at
    // once, and no fifth starts while they run.
    const release = freshFile("release");
    const handler = `p=$(cat); echo "start $p $(date +%s%N)" >> "${log}"; while [ ! -e "${release}" ]; do sleep 0.01; done; echo "end $p $(date +%s%N)" >> "${log}"`;
    const on = spawnCli(["on", topic, "--concurrency", "4", "--", "sh", "-c", handler], { env });
    await waitFor(() => linesOf(log).length === 4, { timeoutMs: 10000, what: "four handlers to start" });
    expect(await topicStats(server.port, topic)).toMatchObject({ inflight: 4, depth: 8 });
    expect(linesOf(log)).toHaveLength(4);
    writeFileSync(release, "");
    await waitFor(async () => (await topicStats(server.port, topic)).acked === 12, { timeoutMs: 20000, what: "12 acks" });
    expect(await on.stop()).toBe(0);
    const events = linesOf(log).map((line) => {
      const [kind, job, ns] = line.split(" ");
      return { kind: kind!, job: job!, at: BigInt(ns!) };
    });
    const starts = events.filter((e) => e.kind === "start").map((e) => e.job);
    expect(starts.sort()).toEqual(Array.from({ length: 12 }, (_, i) => `job${i + 1}`).sort());
    let running = 0;
    let most = 0;
    for (const e of events.sort((x, y) => (x.at < y.at ? -1 : x.at > y.at ? 1 : x.kind === "end" ? -1 : 1))) {
      running += e.kind === "start" ? 1 : -1;
      most = Math.max(most, running);
    }
    expect(most).toBe(4);
    expect(await topicStats(server.port, topic)).toMatchObject({ depth: 0, inflight: 0, redelivered: 0 });
  });

  test("--timeout kills a handler that runs too long and nacks its message", async () => {
    const topic = freshTopic("slow");
    const pids = freshFile("pids");
    await cli(["put", topic, "job"]);
    const on = spawnCli(["on", topic, "--timeout", "300ms", "--max-deliveries", "2", "--", "sh", "-c", `echo $$ >> "${pids}"; sleep 30`], { env });
    const dead = await cli(["get", `${topic}.dead`, "--wait", "10s", "--json"]);
    expect(JSON.parse(dead.stdoutText)).toMatchObject({ payload: "job", origin: { topic, id: 1 } });
    await on.stop();
    const handlers = linesOf(pids).map(Number);
    expect(handlers).toHaveLength(2);
    for (const pid of handlers) await waitFor(() => !isAlive(pid), { what: `handler ${pid} to be killed` });
    expect(on.stderrText()).toContain("handler ran longer than 300ms");
  });

  test("SIGTERM lets the running handler finish and acks it, then on exits 0", async () => {
    const topic = freshTopic("graceful");
    const log = freshFile("log");
    await cli(["put", topic, "--lines"], { stdin: "first\nsecond\n" });
    const release = freshFile("release");
    const handler = `p=$(cat); echo "started $p" >> "${log}"; while [ ! -e "${release}" ]; do sleep 0.01; done; echo "finished $p" >> "${log}"`;
    const on = spawnCli(["on", topic, "--", "sh", "-c", handler], { env });
    await waitFor(() => linesOf(log).includes("started first"), { what: "the first handler" });
    const stopped = on.stop("SIGTERM", 10000);
    // The handler runs until released: `on` has sent OFF (no consumer left) and still holds the lease.
    await waitFor(async () => (await topicStats(server.port, topic)).consumers === 0, { what: "on to stop consuming" });
    expect(await topicStats(server.port, topic)).toMatchObject({ inflight: 1, depth: 1 });
    writeFileSync(release, "");
    expect(await stopped).toBe(0);
    expect(linesOf(log)).toEqual(["started first", "finished first"]);
    const s = await topicStats(server.port, topic);
    expect(s).toMatchObject({ acked: 1, inflight: 0, depth: 1 });
    expect((await cli(["get", topic])).stdoutText).toBe("second");
  });

  // On SIGTERM `on` sends OFF: no new message comes, the running one is still acked.
  test("SIGTERM does not count a delivery for a message that was never started", async () => {
    const topic = freshTopic("uncounted");
    const log = freshFile("log");
    await cli(["put", topic, "--lines"], { stdin: "first\nsecond\n" });
    const release = freshFile("release");
    const on = spawnCli(["on", topic, "--", "sh", "-c", `echo started >> "${log}"; while [ ! -e "${release}" ]; do sleep 0.01; done`], { env });
    await waitFor(() => linesOf(log).length === 1, { what: "the first handler" });
    const stopped = on.stop("SIGTERM", 10000);
    await waitFor(async () => (await topicStats(server.port, topic)).consumers === 0, { what: "on to stop consuming" });
    writeFileSync(release, "");
    expect(await stopped).toBe(0);
    const second = JSON.parse((await cli(["get", topic, "--json"])).stdoutText);
    expect(second).toMatchObject({ payload: "second", deliveries: 1 });
  });

  test("sub -- command runs the command for every broadcast, one at a time, in order", async () => {
    const topic = freshTopic("broadcast");
    const log = freshFile("log");
    const sub = spawnCli(["sub", topic, "--", "sh", "-c", `echo "$MSGBUS_ID $(cat)" >> "${log}"`], { env });
    await waitFor(async () => (await topicStats(server.port, topic)).subscribers === 1, { what: "the subscriber" });
    for (const word of ["alpha", "beta", "gamma"]) await cli(["pub", topic, word]);
    await waitFor(() => linesOf(log).length === 3, { what: "3 handled broadcasts" });
    expect(await sub.stop()).toBe(0);
    expect(linesOf(log)).toEqual(["1 alpha", "2 beta", "3 gamma"]);
  });

  test("10,000 messages through 3 competing workers that fail ~10% of the time: each acked once or dead-lettered, none lost", async () => {
    const topic = freshTopic("load");
    const acked = freshFile("acked");
    const count = 10000;
    const payloads = Array.from({ length: count }, (_, i) => `m${i + 1}`);
    expect((await cli(["put", topic, "--lines"], { stdin: payloads.join("\n") })).code).toBe(0);
    // $$ is the handler's pid: a cheap stand-in for randomness that needs no extra process.
    const handler = `p=$(cat); [ $(($$ % 10)) -eq 0 ] && exit 1; echo "$p" >> "${acked}"`;
    const workers = [1, 2, 3].map(() => spawnCli(["on", topic, "--concurrency", "4", "--max-deliveries", "2", "--", "sh", "-c", handler], { env }));
    await waitFor(
      async () => {
        const s = await topicStats(server.port, topic);
        return s.depth === 0 && s.inflight === 0 && s.delayed === 0 && s.acked + s.dead_lettered === count;
      },
      { timeoutMs: 90000, intervalMs: 250, what: `${count} messages acked or dead-lettered` },
    );
    for (const worker of workers) expect(await worker.stop()).toBe(0);

    const done = linesOf(acked);
    expect(new Set(done).size).toBe(done.length); // nobody handled a message twice successfully
    const redis = new RedisClient(`redis://127.0.0.1:${server.port}`);
    const dead: string[] = [];
    try {
      for (let payload = await redis.lpop(`${topic}.dead`); payload !== null; payload = await redis.lpop(`${topic}.dead`)) dead.push(payload);
    } finally {
      redis.close();
    }
    expect(done.filter((p) => dead.includes(p))).toEqual([]);
    expect([...done, ...dead].sort()).toEqual([...payloads].sort());
    const s = await topicStats(server.port, topic);
    expect(s.acked).toBe(done.length);
    expect(s.dead_lettered).toBe(dead.length);
    expect(s.redelivered).toBeGreaterThan(0); // the failures were retried
  }, 120000);
});
