// End-to-end: `serve --data DIR` keeps every acknowledged message through kill -9, SIGTERM and
// restarts (issue 5), and refuses a data directory it cannot use. The compiled binary as a process,
// driven over raw RESP so that every acknowledgement (`:id`) is seen exactly when it arrives.

import { afterAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { Database } from "bun:sqlite";
import { existsSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { encodeCommand } from "../../src/protocol/resp-writer.ts";
import { RespErrorValue, RespReader, type RespValue } from "../../src/protocol/resp-reader.ts";
import { cleanupAll, freePort, removeTempDirs, tempDir, hasBinary, runCli, startServer, waitFor, type TestServer } from "../helpers/index.ts";

// Servers start, crash and restart here; on a busy 2-core machine that can take more than bun's
// default 5 s. `bun run test` passes --timeout; this covers `bun test test/e2e/durable.test.ts`.
setDefaultTimeout(60000);

afterAll(async () => {
  await cleanupAll();
  removeTempDirs();
});

const dataDir = () => tempDir("msgbus-durable-");

/** A durable server on `dir`, HTTP off (the RESP port is all these tests use). */
function serve(dir: string, args: string[] = []): Promise<TestServer> {
  return startServer({ httpPort: 0, args: ["--data", dir, ...args], startTimeoutMs: 15000 });
}

/** SIGKILL: no flush, no close, no goodbye. Resolves once the process is gone. */
async function crash(server: TestServer): Promise<void> {
  expect(await server.stop("SIGKILL")).toBe(128 + 9);
}

// ---- a raw RESP connection: pipelined commands, replies in order, pushes aside ----

type Arg = string | number | Uint8Array;

class Resp {
  private readonly reader = new RespReader();
  private readonly waiting: { resolve: (v: RespValue) => void; reject: (e: Error) => void }[] = [];
  /** Message frames pushed by ON/SUB, in arrival order. */
  readonly pushes: RespValue[][] = [];
  /** After ON: unsolicited message frames are pushes, not replies. */
  consuming = false;
  isClosed = false;
  readonly closed: Promise<void>;
  private socket!: Awaited<ReturnType<typeof Bun.connect>>;
  private markClosed!: () => void;

  private constructor() {
    this.closed = new Promise((resolve) => (this.markClosed = resolve));
  }

  static async connect(port: number): Promise<Resp> {
    const c = new Resp();
    c.socket = await Bun.connect({
      hostname: "127.0.0.1",
      port,
      socket: {
        data: (_socket, chunk) => c.received(chunk),
        close: () => c.ended(),
        error: () => c.ended(),
      },
    });
    return c;
  }

  /** Sends every command in one write; one promise per reply, settled in order. */
  pipeline(commands: Arg[][]): Promise<RespValue>[] {
    if (this.isClosed) return commands.map(() => Promise.reject(new Error("connection closed")));
    const promises = commands.map(
      () =>
        new Promise<RespValue>((resolve, reject) => {
          this.waiting.push({ resolve, reject });
        }),
    );
    for (const p of promises) p.catch(() => {});
    this.socket.write(Buffer.concat(commands.map((args) => encodeCommand(args))));
    return promises;
  }

  send(...args: Arg[]): Promise<RespValue> {
    return this.pipeline([args])[0]!;
  }

  close(): void {
    this.socket.end();
  }

  private received(chunk: Uint8Array): void {
    this.reader.feed(chunk);
    for (let item = this.reader.next(); item; item = this.reader.next()) {
      const value = item.value;
      if (this.consuming && isMessageFrame(value)) this.pushes.push(value as RespValue[]);
      else this.waiting.shift()?.resolve(value);
    }
  }

  private ended(): void {
    if (this.isClosed) return;
    this.isClosed = true;
    for (const w of this.waiting.splice(0)) w.reject(new Error("connection closed"));
    this.markClosed();
  }
}

function isMessageFrame(value: RespValue): boolean {
  return Array.isArray(value) && value[0] instanceof Uint8Array && text(value[0]) === "message";
}

function text(bytes: RespValue): string {
  return new TextDecoder().decode(bytes as Uint8Array);
}

interface Frame {
  topic: string;
  payload: Uint8Array;
  id: number;
  deliveries: number;
  origin?: { topic: string; id: number; deliveries: number };
}

/** The native message frame: ["message", topic, payload, id, created, deliveries, origin topic, id, deliveries]. */
function frame(value: RespValue): Frame {
  if (!isMessageFrame(value)) throw new Error(`expected a message frame, got ${describeValue(value)}`);
  const v = value as RespValue[];
  const f: Frame = { topic: text(v[1]!), payload: v[2] as Uint8Array, id: v[3] as number, deliveries: v[5] as number };
  if (v[6] !== null) f.origin = { topic: text(v[6]!), id: v[7] as number, deliveries: v[8] as number };
  return f;
}

function describeValue(value: RespValue): string {
  if (value instanceof RespErrorValue) return `-${value.message}`;
  if (value instanceof Uint8Array) return JSON.stringify(text(value));
  if (Array.isArray(value)) return `[${value.map(describeValue).join(", ")}]`;
  return JSON.stringify(value);
}

/** Takes every queued message of `topic` (GET, pipelined), oldest first. */
async function takeAll(c: Resp, topic: string): Promise<Frame[]> {
  const frames: Frame[] = [];
  for (;;) {
    const replies = await Promise.all(c.pipeline(Array.from({ length: 500 }, () => ["GET", topic])));
    for (const reply of replies) {
      if (reply === null) return frames;
      frames.push(frame(reply));
    }
  }
}

/** PUTs each payload as its own command, in one pipeline; the ids (or errors) in order. */
function putEach(c: Resp, topic: string, payloads: Arg[]): Promise<RespValue[]> {
  return Promise.all(c.pipeline(payloads.map((p) => ["PUT", topic, p])));
}

/** A payload that is not text: its number, then every byte value, so byte-for-byte matters. */
function payload(topic: string, n: number): Uint8Array {
  const head = new TextEncoder().encode(`${topic}#${n}|`);
  const out = new Uint8Array(head.length + 64);
  out.set(head);
  for (let i = 0; i < 64; i++) out[head.length + i] = (n * 7 + i * 37) & 0xff;
  return out;
}

// ---- a writer that pipelines PUTs until its connection dies ----

interface WriterLog {
  topic: string;
  /** Every payload sent, in order. */
  sent: Uint8Array[];
  /** Every `:id` the server replied, in order (the n-th reply answers the n-th PUT). */
  acked: number[];
  /** Replies that were not ids (should stay empty). */
  errors: string[];
  /** Resolves when the connection has closed. */
  done: Promise<void>;
}

/** Keeps two batches of `batch` PUTs in flight on one connection, until it closes; `onAck` sees every id. */
async function startWriter(port: number, topic: string, onAck: () => void, batch = 64): Promise<WriterLog> {
  const c = await Resp.connect(port);
  const log: WriterLog = { topic, sent: [], acked: [], errors: [], done: Promise.resolve() };
  log.done = (async () => {
    let previous: Promise<RespValue> | undefined;
    while (!c.isClosed) {
      const payloads: Uint8Array[] = [];
      for (let i = 0; i < batch; i++) {
        const p = payload(topic, log.sent.length + 1);
        log.sent.push(p);
        payloads.push(p);
      }
      const replies = c.pipeline(payloads.map((p) => ["PUT", topic, p]));
      for (const reply of replies) {
        reply.then(
          (value) => {
            if (typeof value !== "number") return log.errors.push(describeValue(value));
            log.acked.push(value);
            onAck();
          },
          () => {},
        );
      }
      // Two batches in flight: the server always has the next one to read while it commits.
      if (previous) await previous.catch(() => {});
      previous = replies[replies.length - 1];
    }
  })();
  return log;
}

/**
 * What a crash may do to a writer's topic: the messages are exactly the first k sent, k at least
 * the number acknowledged, with the acknowledged ids; nothing lost, nothing invented, in order.
 */
function expectKept(log: WriterLog, recovered: Frame[]): void {
  expect(log.errors).toEqual([]);
  expect(log.acked.length).toBeGreaterThan(0);
  if (recovered.length < log.acked.length) {
    throw new Error(
      `${log.topic}: ${log.acked.length} writes acknowledged, ${recovered.length} came back (ids ${log.acked[recovered.length]}..${log.acked.at(-1)} lost)`,
    );
  }
  expect(recovered.length).toBeLessThanOrEqual(log.sent.length);
  for (let i = 0; i < recovered.length; i++) {
    const m = recovered[i]!;
    if (i < log.acked.length && m.id !== log.acked[i]) {
      throw new Error(`${log.topic}: message ${i + 1} came back with id ${m.id}, acknowledged as ${log.acked[i]}`);
    }
    if (i > 0 && m.id <= recovered[i - 1]!.id) throw new Error(`${log.topic}: id ${m.id} after ${recovered[i - 1]!.id}`);
    if (Buffer.compare(m.payload, log.sent[i]!) !== 0) {
      throw new Error(`${log.topic}: message ${i + 1} (id ${m.id}) has another payload than the ${i + 1}th sent`);
    }
    expect(m.deliveries).toBe(1);
  }
}

/** Writers on their own topics, a kill -9 once `ackedBefore` writes were acknowledged, a restart. */
async function crashWhileWriting(args: string[], writers: number, ackedBefore: number): Promise<void> {
  const dir = dataDir();
  const first = await serve(dir, args);
  // The kill goes out the moment the threshold's ack arrives: an ack sent before its commit
  // would have the best chance to be lost.
  let total = 0;
  const onAck = () => ++total === ackedBefore && first.proc.kill("SIGKILL");
  const logs = await Promise.all(Array.from({ length: writers }, (_, i) => startWriter(first.port, `crash.w${i}`, onAck)));
  const acked = () => logs.reduce((n, l) => n + l.acked.length, 0);
  await waitFor(() => acked() >= ackedBefore, { timeoutMs: 30000, what: `${ackedBefore} acknowledged writes` });
  await crash(first);
  await Promise.all(logs.map((l) => l.done));
  // The kill came while writes were in flight, or this test did not test a crash.
  expect(logs.reduce((n, l) => n + l.sent.length, 0)).toBeGreaterThan(acked());

  const second = await serve(dir, args);
  const c = await Resp.connect(second.port);
  for (const log of logs) {
    const recovered = await takeAll(c, log.topic);
    expectKept(log, recovered);
    // Ids continue: greater than every id acknowledged or recovered.
    const next = await c.send("PUT", log.topic, "after the crash");
    expect(typeof next).toBe("number");
    expect(next as number).toBeGreaterThan(Math.max(log.acked.at(-1)!, recovered.at(-1)!.id));
  }
  expect(second.stderrText()).toMatch(/recovered \d+ queued messages in \d+ topics from .* in \d+ ms/);
  c.close();
  expect(await second.stop()).toBe(0);
}

/** `serve` that is expected to refuse to start: its exit code and output. */
async function refusedServe(args: string[]) {
  const result = await runCli(["serve", "--host", "127.0.0.1", "--port", String(freePort()), "--http-port", "0", ...args], {
    timeoutMs: 15000,
  });
  return { ...result, lines: result.stderr.split("\n").filter((l) => l.trim() !== "") };
}

/** One clear line on stderr, exit 9 (STORAGE), no stack trace. */
function expectStorageRefusal(result: Awaited<ReturnType<typeof refusedServe>>, pattern: RegExp): void {
  expect(result.code).toBe(9);
  expect(result.lines).toHaveLength(1);
  expect(result.lines[0]).toMatch(/^msgbus: /);
  expect(result.lines[0]).toMatch(pattern);
  expect(result.stderr + result.stdoutText).not.toMatch(/^\s+at /m);
}

/** A real msgbus.db (5,000 messages of ~400 bytes, stopped cleanly) with garbage over its middle half. */
async function damagedDatabase(): Promise<string> {
  const dir = dataDir();
  const server = await serve(dir);
  const c = await Resp.connect(server.port);
  const filler = "x".repeat(400);
  for (let round = 0; round < 5; round++) {
    await putEach(
      c,
      `t${round}`,
      Array.from({ length: 1000 }, (_, i) => `${round}/${i} ${filler}`),
    );
  }
  c.close();
  expect(await server.stop()).toBe(0);
  const db = join(dir, "msgbus.db");
  const bytes = readFileSync(db);
  // b-tree pages, not only payload bytes, so that SQLite can tell.
  for (let i = bytes.length >> 2; i < (bytes.length * 3) >> 2; i++) bytes[i] = (i * 2654435761) >>> 24;
  writeFileSync(db, bytes);
  return db;
}

function sha256(path: string): string {
  return new Bun.CryptoHasher("sha256").update(readFileSync(path)).digest("hex");
}

describe.skipIf(!hasBinary())("durable topics: serve --data DIR", () => {
  test("kill -9 while writers pipeline PUTs: every acknowledged message comes back, in order, and ids continue", async () => {
    await crashWhileWriting([], 3, 30000);
  });

  test("--fsync always: the same under kill -9 (a smaller run)", async () => {
    await crashWhileWriting(["--fsync", "always"], 2, 1500);
  });

  test("SIGTERM exits 0 and keeps everything, ids continue in a topic emptied before the restart", async () => {
    const dir = dataDir();
    const first = await serve(dir);
    let c = await Resp.connect(first.port);
    const payloads = Array.from({ length: 200 }, (_, i) => payload("kept", i + 1));
    expect(await putEach(c, "kept", payloads)).toEqual(payloads.map((_, i) => i + 1));
    expect(await putEach(c, "emptied", ["a", "b", "c"])).toEqual([1, 2, 3]);
    expect((await takeAll(c, "emptied")).map((m) => m.id)).toEqual([1, 2, 3]);
    // A burst still in flight when SIGTERM arrives: whatever was acknowledged must be kept.
    const burst = c.pipeline(Array.from({ length: 2000 }, (_, i) => ["PUT", "burst", payload("burst", i + 1)]));
    await burst[0];
    const stopped = first.stop();
    const burstReplies = await Promise.allSettled(burst);
    expect(await stopped).toBe(0);
    expect(first.stderrText()).not.toMatch(/ERROR|error:/);
    const burstAcked = burstReplies.filter((r) => r.status === "fulfilled" && typeof r.value === "number").length;
    expect(burstAcked).toBeGreaterThan(0);

    const second = await serve(dir);
    c = await Resp.connect(second.port);
    expect(await c.send("LLEN", "emptied")).toBe(0);
    const kept = await takeAll(c, "kept");
    expect(kept.map((m) => m.id)).toEqual(payloads.map((_, i) => i + 1));
    expect(kept.map((m) => Buffer.from(m.payload).toString("hex"))).toEqual(payloads.map((p) => Buffer.from(p).toString("hex")));
    const burstKept = await takeAll(c, "burst");
    expect(burstKept.length).toBeGreaterThanOrEqual(burstAcked);
    burstKept.forEach((m, i) => {
      expect(m.id).toBe(i + 1);
      expect(Buffer.compare(m.payload, payload("burst", i + 1))).toBe(0);
    });
    expect(await c.send("PUT", "emptied", "d")).toBe(4);
    expect(await c.send("PUT", "kept", "more")).toBe(201);
    c.close();

    // A second graceful restart in a row: the topic emptied before the first one still continues.
    expect(await second.stop()).toBe(0);
    const third = await serve(dir);
    c = await Resp.connect(third.port);
    expect((await takeAll(c, "emptied")).map((m) => [m.id, text(m.payload)])).toEqual([[4, "d"]]);
    expect(await c.send("PUT", "emptied", "e")).toBe(5);
    c.close();
    expect(await third.stop()).toBe(0);
  });

  test("a message leased by GET or by an ON consumer at kill -9 comes back with its delivery count; an acked one does not", async () => {
    const dir = dataDir();
    const first = await serve(dir);
    const c = await Resp.connect(first.port);
    expect(await putEach(c, "leased", ["one", "two", "three"])).toEqual([1, 2, 3]);
    expect(await putEach(c, "streamed", ["s1", "s2"])).toEqual([1, 2]);
    const acked = frame(await c.send("GET", "leased", "LEASE", "60s"));
    expect([acked.id, acked.deliveries]).toEqual([1, 1]);
    expect(await c.send("ACK", "leased", 1)).toBe("OK");
    const leased = frame(await c.send("GET", "leased", "LEASE", "60s"));
    expect([leased.id, text(leased.payload), leased.deliveries]).toEqual([2, "two", 1]);

    const consumer = await Resp.connect(first.port);
    consumer.consuming = true;
    expect(await consumer.send("ON", "streamed", "LEASE", "60s")).toBe("OK");
    await waitFor(() => consumer.pushes.length >= 1, { what: "the ON consumer's first message" });
    const pushed = frame(consumer.pushes[0]!);
    expect([pushed.id, text(pushed.payload), pushed.deliveries]).toEqual([1, "s1", 1]);
    expect(await c.send("LLEN", "leased")).toBe(1);
    await crash(first);

    const second = await serve(dir);
    const d = await Resp.connect(second.port);
    const back = await takeAll(d, "leased");
    expect(back.map((m) => [m.id, text(m.payload), m.deliveries])).toEqual([
      [2, "two", 2],
      [3, "three", 1],
    ]);
    expect((await takeAll(d, "streamed")).map((m) => [m.id, text(m.payload), m.deliveries])).toEqual([
      [1, "s1", 2],
      [2, "s2", 1],
    ]);
    d.close();
    expect(await second.stop()).toBe(0);
  });

  test("a dead-letter topic survives kill -9, with its origin, and its ids continue", async () => {
    const dir = dataDir();
    const first = await serve(dir, ["--max-deliveries", "1"]);
    const c = await Resp.connect(first.port);
    expect(await putEach(c, "fragile", ["bad job", "good job"])).toEqual([1, 2]);
    const taken = frame(await c.send("GET", "fragile", "LEASE", "60s"));
    expect(taken.id).toBe(1);
    expect(await c.send("NACK", "fragile", 1)).toBe("OK");
    expect(await c.send("LLEN", "fragile.dead")).toBe(1);
    await crash(first);

    const second = await serve(dir, ["--max-deliveries", "1"]);
    const d = await Resp.connect(second.port);
    const dead = await takeAll(d, "fragile.dead");
    expect(dead).toHaveLength(1);
    expect(text(dead[0]!.payload)).toBe("bad job");
    expect(dead[0]!.origin).toEqual({ topic: "fragile", id: 1, deliveries: 1 });
    expect(dead[0]!.deliveries).toBe(1);
    expect((await takeAll(d, "fragile")).map((m) => text(m.payload))).toEqual(["good job"]);
    expect(await d.send("PUT", "fragile.dead", "later")).toBeGreaterThan(dead[0]!.id);
    d.close();
    expect(await second.stop()).toBe(0);
  });

  test("--max-queue 10 --overflow reject: the 11th write is refused, and exactly 10 are there after kill -9", async () => {
    const dir = dataDir();
    const args = ["--max-queue", "10", "--overflow", "reject"];
    const first = await serve(dir, args);
    const c = await Resp.connect(first.port);
    const replies = await putEach(
      c,
      "bounded",
      Array.from({ length: 11 }, (_, i) => `job ${i + 1}`),
    );
    expect(replies.slice(0, 10)).toEqual(Array.from({ length: 10 }, (_, i) => i + 1));
    expect(replies[10]).toBeInstanceOf(RespErrorValue);
    expect((replies[10] as RespErrorValue).message).toMatch(/^TOPICFULL /);
    await crash(first);

    const second = await serve(dir, args);
    const d = await Resp.connect(second.port);
    expect(await d.send("LLEN", "bounded")).toBe(10);
    // The recovered queue still counts against the limit.
    const refused = await d.send("PUT", "bounded", "job 12");
    expect(refused).toBeInstanceOf(RespErrorValue);
    expect((refused as RespErrorValue).message).toMatch(/^TOPICFULL /);
    expect((await takeAll(d, "bounded")).map((m) => text(m.payload))).toEqual(Array.from({ length: 10 }, (_, i) => `job ${i + 1}`));
    d.close();
    expect(await second.stop()).toBe(0);
  });

  test("--max-queue 10 with drop-oldest: the newest 10 survive kill -9", async () => {
    const dir = dataDir();
    const first = await serve(dir, ["--max-queue", "10"]);
    const c = await Resp.connect(first.port);
    expect(
      await putEach(
        c,
        "rolling",
        Array.from({ length: 25 }, (_, i) => `reading ${i + 1}`),
      ),
    ).toEqual(Array.from({ length: 25 }, (_, i) => i + 1));
    await crash(first);

    const second = await serve(dir, ["--max-queue", "10"]);
    const d = await Resp.connect(second.port);
    expect((await takeAll(d, "rolling")).map((m) => [m.id, text(m.payload)])).toEqual(Array.from({ length: 10 }, (_, i) => [i + 16, `reading ${i + 16}`]));
    d.close();
    expect(await second.stop()).toBe(0);
  });

  test("a data directory under a regular file, or that is a file, is refused with one line and exit code 9", async () => {
    const file = join(dataDir(), "not-a-directory");
    writeFileSync(file, "just a file\n");
    expectStorageRefusal(await refusedServe(["--data", join(file, "data")]), /cannot use data directory .*not-a-directory\/data.*--data/);
    expectStorageRefusal(await refusedServe(["--data", file]), /not-a-directory.*--data/);
    expect(readFileSync(file, "utf8")).toBe("just a file\n");
  });

  test("a data directory in use by another server is refused (lock), and that server carries on", async () => {
    const dir = dataDir();
    const owner = await serve(dir);
    const c = await Resp.connect(owner.port);
    expect(await c.send("PUT", "mine", "safe")).toBe(1);
    expectStorageRefusal(await refusedServe(["--data", dir]), /in use by another msgbus server/);
    expect(await c.send("PUT", "mine", "still safe")).toBe(2);
    expect((await takeAll(c, "mine")).map((m) => text(m.payload))).toEqual(["safe", "still safe"]);
    c.close();
    expect(await owner.stop()).toBe(0);
  });

  test("a msgbus.db full of garbage is refused with one line, and left as it was", async () => {
    const dir = dataDir();
    const db = join(dir, "msgbus.db");
    const garbage = new Uint8Array(65536);
    for (let i = 0; i < garbage.length; i++) garbage[i] = (i * 2654435761) >>> 24;
    writeFileSync(db, garbage);
    const before = sha256(db);
    expectStorageRefusal(await refusedServe(["--data", dir]), /msgbus\.db.*(move it away|backup)/);
    expect(sha256(db)).toBe(before);
    expect(existsSync(db + "-wal") && statSync(db + "-wal").size > 0).toBe(false);
  });

  test("another program's SQLite database, or one from a newer msgbus, is refused with one line, and left as it was", async () => {
    const foreign = join(dataDir(), "msgbus.db");
    const other = new Database(foreign, { create: true });
    other.exec("CREATE TABLE notes (body TEXT); INSERT INTO notes VALUES ('mine')");
    other.close();
    const foreignBefore = sha256(foreign);
    expectStorageRefusal(await refusedServe(["--data", dirname(foreign)]), /another program.*--data/);
    expect(sha256(foreign)).toBe(foreignBefore);

    const newer = join(dataDir(), "msgbus.db");
    const future = new Database(newer, { create: true });
    future.exec("PRAGMA application_id = 1836279650; PRAGMA user_version = 99; CREATE TABLE later (x)");
    future.close();
    const newerBefore = sha256(newer);
    expectStorageRefusal(await refusedServe(["--data", dirname(newer)]), /newer msgbus.*upgrade/);
    expect(sha256(newer)).toBe(newerBefore);
  });

  test("a msgbus.db damaged in the middle is refused with one line, and none of its pages is written", async () => {
    const db = await damagedDatabase();
    const before = readFileSync(db);
    expectStorageRefusal(await refusedServe(["--data", dirname(db)]), /msgbus\.db.*(move it away|backup)/);
    const after = readFileSync(db);
    expect(after.length).toBe(before.length);
    // Past the 100-byte file header (see the next test): not one byte changed.
    expect(Buffer.compare(after.subarray(100), before.subarray(100))).toBe(0);
  });

  // The header counts too: the store once committed its header (bytes 24-27 and 92-95 changed)
  // before load() found the damage.
  test("a msgbus.db damaged in the middle is left exactly as it was, header included", async () => {
    const db = await damagedDatabase();
    const before = sha256(db);
    expectStorageRefusal(await refusedServe(["--data", dirname(db)]), /msgbus\.db.*(move it away|backup)/);
    expect(sha256(db)).toBe(before);
  });
});

describe("durable e2e prerequisites", () => {
  test("the compiled binary exists (run `bun run build:local`)", () => {
    expect(hasBinary()).toBe(true);
  });
});
