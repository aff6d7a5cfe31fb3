// The TCP server as a raw client sees it: pipelining, blocking, RESP3 pushes, and bad input
// (malformed, truncated, oversized, unauthorized, a reader that stops reading) against the
// compiled binary. After every bad input the server must still serve.

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import net from "node:net";
import { encodeCommand } from "../../src/protocol/resp-writer.ts";
import { RespErrorValue, RespPush, RespReader, type RespValue } from "../../src/protocol/resp-reader.ts";
import { cleanupAll, startServer, waitFor, type TestServer } from "../helpers/index.ts";
import { Resp, rawExchange } from "./transports.ts";

afterAll(() => cleanupAll());

const text = (v: RespValue) => (v instanceof Uint8Array ? new TextDecoder().decode(v) : v);
let counter = 0;
const fresh = (name: string) => `${name}-${++counter}-${Date.now()}`;

/** The server still answers a fresh connection. */
async function stillServes(port: number): Promise<void> {
  const resp = await Resp.connect(port);
  expect(await resp.send(["PING"])).toBe("PONG");
  resp.close();
}

/** Reads every reply a raw socket gets until it closes or the deadline passes. */
async function repliesOf(port: number, bytes: Uint8Array | string, timeoutMs = 3000): Promise<{ replies: RespValue[]; closed: boolean }> {
  const reader = new RespReader();
  const replies: RespValue[] = [];
  let closed = false;
  const socket = net.connect(port, "127.0.0.1");
  socket.on("data", (chunk: Buffer) => {
    reader.feed(new Uint8Array(chunk));
    for (let item = reader.next(); item; item = reader.next()) replies.push(item.value);
  });
  socket.on("close", () => (closed = true));
  socket.on("error", () => (closed = true));
  await new Promise<void>((resolve) => socket.once("connect", () => resolve()));
  socket.write(bytes);
  await waitFor(() => closed, { timeoutMs, what: "the server to close the connection" }).catch(() => {});
  socket.destroy();
  return { replies, closed };
}

/** Writes all commands in one write and collects `count` replies. */
async function countedReplies(port: number, commands: Uint8Array[], count: number): Promise<RespValue[]> {
  const reader = new RespReader();
  const got: RespValue[] = [];
  const socket = net.connect(port, "127.0.0.1");
  socket.on("data", (chunk: Buffer) => {
    reader.feed(new Uint8Array(chunk));
    for (let item = reader.next(); item; item = reader.next()) got.push(item.value);
  });
  await new Promise<void>((resolve) => socket.once("connect", () => resolve()));
  socket.write(Buffer.concat(commands.map((c) => Buffer.from(c))));
  await waitFor(() => got.length >= count, { timeoutMs: 20000, what: `${count} replies` });
  socket.destroy();
  return got;
}

describe("TCP server", () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startServer({ httpPort: 0, args: ["--max-message-size", "1000"] });
  });

  test("10,000 pipelined PUTs in one write come back as ids 1..10,000, and LPOPs in one write take them in order", async () => {
    const topic = fresh("fifo");
    const puts = Array.from({ length: 10000 }, (_, i) => encodeCommand(["PUT", topic, `m${i}`]));
    expect(await countedReplies(server.port, puts, 10000)).toEqual(Array.from({ length: 10000 }, (_, i) => i + 1));
    const pops = Array.from({ length: 10000 }, () => encodeCommand(["LPOP", topic]));
    const payloads = (await countedReplies(server.port, pops, 10000)).map(text);
    expect(payloads).toEqual(Array.from({ length: 10000 }, (_, i) => `m${i}`));
  });

  test("RPOP and LPOP give back every payload byte for byte (empty, short, long, a nacked one first) and count them as GET does", async () => {
    const topic = fresh("pops");
    const resp = await Resp.connect(server.port);
    const sizes = [0, 1, 31, 32, 33, 200, 1000];
    const payloads = sizes.map((size, n) => Array.from({ length: size }, (_, i) => String.fromCharCode(97 + ((i + n) % 26))).join(""));
    for (const payload of payloads) await resp.send(["LPUSH", topic, payload]);
    // The first one, taken under a lease and nacked, goes back to the head: its next take is a redelivery.
    expect(await resp.send(["GET", topic, "LEASE", "10s"])).not.toBeNull();
    expect(await resp.send(["NACK", topic, "1"])).toBe("OK"); // a fresh topic's first id
    const popped: RespValue[] = [];
    for (let i = 0; i < payloads.length; i++) popped.push(text((await resp.send([i % 2 ? "LPOP" : "RPOP", topic]))!));
    expect(popped).toEqual(payloads);
    expect(await resp.send(["RPOP", topic])).toBeNull();
    const stats = (await resp.send(["STATS", topic])) as RespValue[];
    const field = (name: string) => stats[stats.findIndex((v) => text(v) === name) + 1];
    expect([field("depth"), field("consumed"), field("redelivered"), field("bytes"), field("published")]).toEqual([0, 8, 1, 0, 7]);
    resp.close();
  });

  test("a command split byte by byte across writes is one command", async () => {
    const topic = fresh("split");
    const bytes = encodeCommand(["PUT", topic, "a\r\nb\0c"]);
    const socket = await Bun.connect({ hostname: "127.0.0.1", port: server.port, socket: { data() {} } });
    for (const byte of bytes) {
      socket.write(new Uint8Array([byte]));
      await Bun.sleep(1);
    }
    socket.end();
    const resp = await Resp.connect(server.port);
    await waitFor(async () => (await resp.send(["LLEN", topic])) === 1, { what: "the message" });
    expect(text((await resp.send(["LPOP", topic]))!)).toBe("a\r\nb\0c");
    resp.close();
  });

  test("commands pipelined behind a blocking BLPOP wait for it, then run in order", async () => {
    const topic = fresh("blocked");
    const reader = new RespReader();
    const replies: RespValue[] = [];
    const socket = net.connect(server.port, "127.0.0.1");
    socket.on("data", (c: Buffer) => {
      reader.feed(new Uint8Array(c));
      for (let item = reader.next(); item; item = reader.next()) replies.push(item.value);
    });
    await new Promise<void>((r) => socket.once("connect", () => r()));
    socket.write(
      Buffer.concat([encodeCommand(["BLPOP", topic, "0"]), encodeCommand(["ECHO", "after"]), encodeCommand(["LLEN", topic])].map((b) => Buffer.from(b))),
    );
    await Bun.sleep(200);
    expect(replies).toEqual([]); // nothing answered while blocked, not even the ECHO
    const writer = await Resp.connect(server.port);
    await writer.send(["RPUSH", topic, "woke"]);
    await waitFor(() => replies.length === 3, { what: "three replies" });
    expect(replies.map((r) => (Array.isArray(r) ? r.map(text) : text(r)))).toEqual([[topic, "woke"], "after", 0]);
    socket.destroy();
    writer.close();
  });

  test("GET WAIT times out with a null reply; BLPOP with a timeout too", async () => {
    const resp = await Resp.connect(server.port);
    const started = Date.now();
    expect(await resp.send(["GET", fresh("empty"), "WAIT", "300ms"])).toBeNull();
    expect(await resp.send(["BLPOP", fresh("empty"), "0.2"])).toBeNull();
    expect(Date.now() - started).toBeGreaterThanOrEqual(450);
    resp.close();
  });

  test("after HELLO 3, SUB messages arrive as RESP3 pushes while replies stay replies", async () => {
    const topic = fresh("resp3");
    const reader = new RespReader();
    const values: RespValue[] = [];
    const socket = net.connect(server.port, "127.0.0.1");
    socket.on("data", (c: Buffer) => {
      reader.feed(new Uint8Array(c));
      for (let item = reader.next(); item; item = reader.next()) values.push(item.value);
    });
    await new Promise<void>((r) => socket.once("connect", () => r()));
    socket.write(Buffer.concat([Buffer.from(encodeCommand(["HELLO", "3"])), Buffer.from(encodeCommand(["SUB", topic]))]));
    await waitFor(() => values.length === 2, { what: "HELLO and SUB replies" });
    expect(values[1]).toBe("OK");
    const writer = await Resp.connect(server.port);
    await writer.send(["PUT", topic, "pushed"]);
    await waitFor(() => values.length === 3, { what: "the push" });
    const push = values[2];
    expect(push).toBeInstanceOf(RespPush);
    expect((push as RespPush).items.slice(0, 3).map(text)).toEqual(["message", topic, "pushed"]);
    socket.destroy();
    writer.close();
  });

  test("inline commands work (telnet style), with quoted words", async () => {
    const topic = fresh("inline");
    const { replies } = await repliesOf(server.port, `PING\r\nPUT ${topic} "hello world"\r\nLPOP ${topic}\r\nQUIT\r\n`);
    expect(replies.map(text)).toEqual(["PONG", 1, "hello world", "OK"]);
  });

  test("unquoted inline words go through byte for byte (UTF-8 too); command names in any case, one after another", async () => {
    const topic = fresh("inline-bytes");
    const { replies } = await repliesOf(
      server.port,
      `put ${topic} h\u00e9llo\r\nPing\r\nPUT ${topic} w\u00f6rld\r\nlpop ${topic}\r\nLPOP ${topic}\r\npublish ${topic} x\r\nLLEN ${topic}\r\nQUIT\r\n`,
    );
    expect(replies.map(text)).toEqual([1, "PONG", 2, "h\u00e9llo", "w\u00f6rld", 0, 1, "OK"]);
  });

  test("an unknown command and wrong arguments get -ERR and the connection carries on", async () => {
    const { replies } = await repliesOf(
      server.port,
      Buffer.concat(
        [encodeCommand(["FROB"]), encodeCommand(["PUT", "t"]), encodeCommand(["PUT", "_x", "y"]), encodeCommand(["PING"]), encodeCommand(["QUIT"])].map((b) =>
          Buffer.from(b),
        ),
      ),
    );
    expect(replies.slice(0, 3).every((r) => r instanceof RespErrorValue)).toBe(true);
    expect((replies[0] as RespErrorValue).message).toStartWith("ERR unknown command");
    expect((replies[2] as RespErrorValue).message).toStartWith("BADTOPIC");
    expect(replies.slice(3)).toEqual(["PONG", "OK"]);
  });

  test("an oversized argument is refused with -TOOLARGE, skipped, and the next pipelined command runs", async () => {
    const topic = fresh("big");
    const big = new Uint8Array(1001).fill(65);
    const { replies } = await repliesOf(
      server.port,
      Buffer.concat([encodeCommand(["PUT", topic, big]), encodeCommand(["PUT", topic, "small"]), encodeCommand(["QUIT"])].map((b) => Buffer.from(b))),
    );
    expect((replies[0] as RespErrorValue).message).toStartWith("TOOLARGE");
    expect(replies.slice(1)).toEqual([1, "OK"]);
    const resp = await Resp.connect(server.port);
    expect(await resp.send(["LLEN", topic])).toBe(1);
    resp.close();
  });

  for (const [what, bytes] of [
    ["a non-numeric bulk length", "*2\r\n$4\r\nPING\r\n$x\r\n"],
    ["a bulk not followed by CRLF", "*1\r\n$4\r\nPINGxx"],
    ["a '$' expected but another byte found", "*1\r\n+PING\r\n"],
    ["a bulk length over 512 MiB", "*2\r\n$3\r\nPUT\r\n$999999999999\r\n"],
  ] as const) {
    test(`${what}: -ERR Protocol error, the connection closes, the server still serves`, async () => {
      const { replies, closed } = await repliesOf(server.port, bytes);
      expect(closed).toBe(true);
      expect(replies.length).toBe(1);
      expect((replies[0] as RespErrorValue).message).toStartWith("ERR Protocol error");
      await stillServes(server.port);
    });
  }

  test("a client that disconnects mid-command loses nothing else and the server still serves", async () => {
    const topic = fresh("truncated");
    const whole = encodeCommand(["PUT", topic, "never complete"]);
    await rawExchange(server.port, [Buffer.from(encodeCommand(["PUT", topic, "complete"])), whole.subarray(0, whole.length - 4)], { timeoutMs: 300 });
    const resp = await Resp.connect(server.port);
    expect(await resp.send(["LLEN", topic])).toBe(1);
    expect(text((await resp.send(["LPOP", topic]))!)).toBe("complete");
    resp.close();
  });

  test("a client that stops reading its replies is disconnected as a slow consumer; others are served", async () => {
    const slow = await startServer({ httpPort: 0, args: ["--send-buffer", "64KiB"] });
    const topic = fresh("flood");
    // Subscribe, then never read: the server's unsent bytes for it grow until the limit.
    const socket = net.connect(slow.port, "127.0.0.1");
    let closed = false;
    socket.on("close", () => (closed = true));
    socket.on("error", () => (closed = true));
    await new Promise<void>((r) => socket.once("connect", () => r()));
    socket.write(encodeCommand(["SUB", topic]));
    socket.pause();
    const writer = await Resp.connect(slow.port);
    const payload = new Uint8Array(900).fill(120);
    for (let i = 0; i < 40 && !closed; i++)
      await writer.putAll(
        topic,
        Array.from({ length: 200 }, () => payload),
      );
    await waitFor(() => slow.stderrText().includes("slow consumer"), { timeoutMs: 10000, what: "the slow consumer to be cut off" });
    expect(await writer.send(["PING"])).toBe("PONG");
    writer.close();
    socket.destroy();
    expect(await slow.stop()).toBe(0);
  });

  test("with --token, commands before AUTH get -NOAUTH, a wrong token -WRONGPASS, the right one works", async () => {
    const secured = await startServer({ httpPort: 0, args: ["--token", "s3cret"] });
    const { replies } = await repliesOf(
      secured.port,
      Buffer.concat(
        [
          encodeCommand(["PUT", "jobs", "x"]),
          encodeCommand(["AUTH", "wrong"]),
          encodeCommand(["AUTH", "s3cret"]),
          encodeCommand(["PUT", "jobs", "x"]),
          encodeCommand(["QUIT"]),
        ].map((b) => Buffer.from(b)),
      ),
    );
    expect((replies[0] as RespErrorValue).message).toStartWith("NOAUTH");
    expect((replies[1] as RespErrorValue).message).toStartWith("WRONGPASS");
    expect(replies.slice(2)).toEqual(["OK", 1, "OK"]);
    expect(await secured.stop()).toBe(0);
  });

  test("STATS counts one consumer for one ON, and one for a blocked GET", async () => {
    const topic = fresh("consumers");
    const on = await Resp.connect(server.port);
    expect(await on.send(["ON", topic])).toBe("OK");
    const resp = await Resp.connect(server.port);
    const consumers = async () => {
      const fields = (await resp.send(["STATS", topic])) as RespValue[];
      return fields[fields.map(text).indexOf("consumers") + 1];
    };
    await waitFor(async () => (await consumers()) === 1, { what: "one consumer" });
    const blocked = await Resp.connect(server.port);
    void blocked.send(["GET", topic, "WAIT", "0", "LEASE", "10s"]).catch(() => {});
    await waitFor(async () => (await consumers()) === 2, { what: "two consumers" });
    for (const c of [on, resp, blocked]) c.close();
  });

  test.skipIf(!Bun.which("redis-benchmark"))("redis-benchmark runs against msgbus without errors", async () => {
    const proc = Bun.spawn(["redis-benchmark", "-p", String(server.port), "-n", "2000", "-c", "5", "-P", "4", "-t", "ping,lpush,rpop", "-q"], {
      stdout: "pipe",
      stderr: "pipe",
    });
    const out = (await new Response(proc.stdout).text()) + (await new Response(proc.stderr).text());
    expect(await proc.exited).toBe(0);
    expect(out).toContain("LPUSH");
    expect(out).not.toMatch(/error|ERR/i);
  });
});
