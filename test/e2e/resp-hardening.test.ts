// The TCP server against hostile and careless input (issue 8): patterns that would backtrack,
// blocking reads the bus refuses, waits past the 32-bit timer range, RESET and auth. Every test
// drives the compiled binary over raw sockets.

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import net from "node:net";
import { encodeCommand } from "../../src/protocol/resp-writer.ts";
import { RespErrorValue, RespReader, type RespValue } from "../../src/protocol/resp-reader.ts";
import { cleanupAll, startServer, waitFor, type TestServer } from "../helpers/index.ts";
import { Resp } from "./transports.ts";

afterAll(() => cleanupAll());

const text = (v: RespValue) => (v instanceof Uint8Array ? new TextDecoder().decode(v) : v);
const errorText = (v: RespValue | undefined) => (v instanceof RespErrorValue ? v.message : `not an error: ${String(v)}`);
let counter = 0;
const fresh = (name: string) => `${name}-${++counter}`;

/** A raw connection that records every reply as it comes, and whether the server closed it. */
class Raw {
  readonly replies: RespValue[] = [];
  closed = false;
  private readonly reader = new RespReader();
  private constructor(readonly socket: net.Socket) {}

  static async open(port: number): Promise<Raw> {
    const raw = new Raw(net.connect(port, "127.0.0.1"));
    raw.socket.on("data", (chunk: Buffer) => {
      raw.reader.feed(new Uint8Array(chunk));
      for (let item = raw.reader.next(); item; item = raw.reader.next()) raw.replies.push(item.value);
    });
    raw.socket.on("close", () => (raw.closed = true));
    raw.socket.on("error", () => (raw.closed = true));
    await new Promise<void>((resolve) => raw.socket.once("connect", () => resolve()));
    return raw;
  }

  send(...commands: (string | Uint8Array | number)[][]): void {
    this.socket.write(Buffer.concat(commands.map((c) => Buffer.from(encodeCommand(c)))));
  }

  async replyCount(n: number, timeoutMs = 5000): Promise<RespValue[]> {
    await waitFor(() => this.replies.length >= n, { timeoutMs, what: `${n} replies (got ${this.replies.length})` });
    return this.replies.slice(0, n);
  }

  close(): void {
    this.socket.destroy();
  }
}

describe("bad input costs linear time and leaves nothing behind", () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startServer({ httpPort: 0 });
  });

  test("CONFIG GET with 30 '*' then '#' answers within a second, and another connection is served meanwhile", async () => {
    const attacker = await Raw.open(server.port);
    const other = await Resp.connect(server.port);
    const started = Date.now();
    attacker.send(["CONFIG", "GET", "*".repeat(30) + "#"]);
    const pong = other.send(["PING"]);
    expect(await pong).toBe("PONG");
    const [reply] = await attacker.replyCount(1, 1000);
    expect(reply).toEqual([]);
    expect(Date.now() - started).toBeLessThan(1000);
    attacker.send(["CONFIG", "GET", "MAX*"]);
    expect(((await attacker.replyCount(2))[1] as RespValue[]).map(text)).toEqual(["maxclients", "10000"]);
    attacker.close();
    other.close();
  });

  test("a wait over 365 days is a clear error; a tiny one is not forever", async () => {
    const resp = await Resp.connect(server.port);
    expect(errorText(await resp.send(["GET", fresh("t"), "WAIT", "99999999999"]))).toStartWith("ERR WAIT is longer than the maximum");
    expect(errorText(await resp.send(["BLPOP", fresh("t"), "99999999999"]))).toStartWith("ERR timeout is longer than the maximum");
    expect(errorText(await resp.send(["GET", fresh("t"), "LEASE", "13h"]))).toStartWith("ERR LEASE is longer than the maximum");
    expect(errorText(await resp.send(["NACK", fresh("t"), "1", "DELAY", "Infinity"]))).toStartWith("ERR DELAY is not a duration");
    const started = Date.now();
    expect(await resp.send(["GET", fresh("t"), "WAIT", "0.0004"])).toBeNull();
    expect(await resp.send(["BLPOP", fresh("t"), "0.0004"])).toBeNull();
    expect(Date.now() - started).toBeLessThan(1000);
    expect(await resp.send(["PING"])).toBe("PONG");
    resp.close();
  });

  test("BLPOP for 30 days is still blocked after 1.5 s, without a TimeoutOverflowWarning, and takes a later write", async () => {
    const topic = fresh("month");
    const blocked = await Raw.open(server.port);
    blocked.send(["BLPOP", topic, "2592000"]);
    await Bun.sleep(1500);
    expect(blocked.replies).toEqual([]);
    expect(server.stderrText()).not.toContain("TimeoutOverflowWarning");
    const writer = await Resp.connect(server.port);
    await writer.send(["PUT", topic, "late"]);
    expect((await blocked.replyCount(1))[0]).toEqual([new TextEncoder().encode(topic), new TextEncoder().encode("late")]);
    blocked.close();
    writer.close();
  });
});

describe("a blocking read the bus refuses", () => {
  test("BLPOP of a known and a new topic past --max-topics: -BUSFULL, PING in step, a later write stays queued", async () => {
    const server = await startServer({ httpPort: 0, args: ["--max-topics", "2"] });
    const setup = await Resp.connect(server.port);
    expect(await setup.send(["PUT", "keep", "x"])).toBe(1);
    const reader = await Raw.open(server.port);
    reader.send(["BLPOP", "t0", "brandnew", "0"], ["PING"]);
    const [refused, pong] = await reader.replyCount(2, 2000);
    expect(errorText(refused)).toStartWith("BUSFULL");
    expect(pong).toBe("PONG");
    expect(await setup.send(["PUT", "t0", "x"])).toBeNumber();
    await Bun.sleep(100);
    expect(await setup.send(["LLEN", "t0"])).toBe(1);
    expect(reader.replies.length).toBe(2); // nothing handed to the refused reader unasked
    expect(text((await setup.send(["LPOP", "t0"]))!)).toBe("x");
    reader.close();
    setup.close();
    expect(await server.stop()).toBe(0);
  });

  test("GET WAIT on a new topic past --max-topics: -BUSFULL at once, and the next reply is the next command's", async () => {
    const server = await startServer({ httpPort: 0, args: ["--max-topics", "2"] });
    const setup = await Resp.connect(server.port);
    await setup.send(["PUT", "keep", "y"]);
    await setup.send(["PUT", "keep2", "y"]);
    const reader = await Raw.open(server.port);
    const started = Date.now();
    reader.send(["GET", "new", "WAIT", "2"], ["PING"]);
    const [refused, pong] = await reader.replyCount(2, 1500);
    expect(errorText(refused)).toStartWith("BUSFULL");
    expect(pong).toBe("PONG");
    expect(Date.now() - started).toBeLessThan(1500);
    await Bun.sleep(2200); // past the refused wait: no stray null reply
    expect(reader.replies.length).toBe(2);
    reader.close();
    setup.close();
    expect(await server.stop()).toBe(0);
  });
});

describe("RESET", () => {
  test("with --token, RESET returns the connection to unauthenticated", async () => {
    const secured = await startServer({ httpPort: 0, args: ["--token", "s3cret"] });
    const raw = await Raw.open(secured.port);
    raw.send(["AUTH", "s3cret"], ["PUT", "jobs", "a"], ["RESET"], ["PUT", "jobs", "b"], ["LLEN", "jobs"], ["AUTH", "s3cret"], ["LLEN", "jobs"]);
    const replies = await raw.replyCount(7);
    expect(replies.slice(0, 3)).toEqual(["OK", 1, "RESET"]);
    expect(errorText(replies[3])).toStartWith("NOAUTH");
    expect(errorText(replies[4])).toStartWith("NOAUTH");
    expect(replies.slice(5)).toEqual(["OK", 1]);
    raw.close();
    expect(await secured.stop()).toBe(0);
  });
});

/** The server's input_bytes_held (INFO): half-sent commands and unrun input over all connections. */
async function inputHeld(port: number): Promise<number> {
  const resp = await Resp.connect(port);
  const info = text((await resp.send(["INFO"]))!) as string;
  resp.close();
  const match = /input_bytes_held:(\d+)/.exec(info);
  if (!match) throw new Error(`no input_bytes_held in INFO:\n${info}`);
  return Number(match[1]);
}

describe("half-sent commands are bounded in memory and in time", () => {
  test("40 connections announcing 1,048,576 empty arguments: each is refused and closed, held input stays under --max-input", async () => {
    const server = await startServer({ httpPort: 0, args: ["--max-input", "16MiB"] });
    const attackers = await Promise.all(Array.from({ length: 40 }, () => Raw.open(server.port)));
    for (const a of attackers) a.socket.write("*1048576\r\n");
    const lines = Buffer.from("$0\r\n\r\n".repeat(5000)); // 30 KB: 5,000 empty arguments
    let most = 0;
    for (let round = 0; round < 40 && attackers.some((a) => !a.closed); round++) {
      await Promise.all(attackers.filter((a) => !a.closed).map((a) => new Promise<void>((resolve) => a.socket.write(lines, () => resolve()))));
      if (round % 4 === 0) most = Math.max(most, await inputHeld(server.port));
    }
    await waitFor(() => attackers.every((a) => a.closed), { timeoutMs: 10000, what: "every attacking connection to be closed" });
    expect(most).toBeLessThanOrEqual(16 * 1048576);
    // Most see the reason; a connection closed while its client still writes may lose it to a reset.
    const told = attackers.filter((a) => a.replies.some((r) => errorText(r).startsWith("ERR") && /pending input/.test(errorText(r))));
    expect(told.length).toBeGreaterThan(0);
    expect(await inputHeld(server.port)).toBe(0);
    const rss = Number(/VmRSS:\s+(\d+)/.exec(await Bun.file(`/proc/${server.proc.pid}/status`).text())?.[1] ?? 0) * 1024;
    if (rss > 0) expect(rss).toBeLessThan(300 * 1048576);
    const resp = await Resp.connect(server.port);
    expect(await resp.send(["PING"])).toBe("PONG");
    resp.close();
    expect(await server.stop()).toBe(0);
  }, 30000);

  test("a bulk header announcing 1 MiB holds memory as its bytes arrive, not at the header", async () => {
    const server = await startServer({ httpPort: 0 });
    const clients = await Promise.all(Array.from({ length: 10 }, () => Raw.open(server.port)));
    for (const c of clients) c.socket.write("*3\r\n$3\r\nPUT\r\n$1\r\nt\r\n$1048576\r\n");
    await Bun.sleep(100);
    const held = await inputHeld(server.port);
    expect(held).toBeGreaterThan(0);
    expect(held).toBeLessThan(10 * 65536);
    for (const c of clients) c.close();
    await waitFor(async () => (await inputHeld(server.port)) === 0, { what: "held input to be released" });
    expect(await server.stop()).toBe(0);
  });

  test("with --token, a 100 KB bulk before AUTH closes the connection; small commands before AUTH still work", async () => {
    const server = await startServer({ httpPort: 0, args: ["--token", "s3cret"] });
    const small = await Raw.open(server.port);
    small.send(["PING"], ["PUT", "jobs", "x"]);
    const [pong, noauth] = await small.replyCount(2);
    expect(pong).toBe("PONG");
    expect(errorText(noauth)).toStartWith("NOAUTH");
    expect(small.closed).toBe(false);
    const big = await Raw.open(server.port);
    big.socket.write(Buffer.concat([Buffer.from("*3\r\n$3\r\nPUT\r\n$4\r\njobs\r\n$102400\r\n"), Buffer.alloc(102400, 120), Buffer.from("\r\n")]));
    await waitFor(() => big.closed, { timeoutMs: 3000, what: "the unauthenticated connection to be closed" });
    expect(errorText(big.replies[0])).toStartWith("ERR Protocol error");
    small.close();
    expect(await server.stop()).toBe(0);
  });

  test("a half-sent command that makes no progress is closed after --input-timeout; an idle connection between commands is not", async () => {
    const server = await startServer({ httpPort: 0, args: ["--input-timeout", "1s"] });
    const stalled = await Raw.open(server.port);
    const idle = await Raw.open(server.port);
    const started = Date.now();
    stalled.socket.write("*3\r\n$3\r\nPUT\r\n$4\r\njobs\r\n$5\r\nhel");
    idle.send(["PING"]);
    await waitFor(() => stalled.closed, { timeoutMs: 4000, what: "the stalled connection to be closed" });
    expect(Date.now() - started).toBeGreaterThanOrEqual(900);
    expect(errorText(stalled.replies[0])).toMatch(/^ERR incomplete command idle/);
    await Bun.sleep(500);
    expect(idle.closed).toBe(false);
    idle.send(["PING"]);
    expect(await idle.replyCount(2)).toEqual(["PONG", "PONG"]);
    idle.close();
    const resp = await Resp.connect(server.port);
    expect(await resp.send(["LLEN", "jobs"])).toBe(0);
    resp.close();
    expect(await server.stop()).toBe(0);
  });
});

describe("a reader that keeps up is never a slow consumer", () => {
  let server: TestServer;
  const MiB = new Uint8Array(1048576).fill(97);
  beforeAll(async () => {
    server = await startServer({ httpPort: 0 }); // default --send-buffer (8 MiB)
  });

  test("LPOP big 20 of twenty 1 MiB messages returns all 20 to a reading client", async () => {
    const topic = fresh("big");
    const writer = await Resp.connect(server.port);
    await writer.putAll(
      topic,
      Array.from({ length: 20 }, () => MiB),
      4,
    );
    const reply = (await writer.send(["LPOP", topic, "20"])) as Uint8Array[];
    expect(reply.length).toBe(20);
    expect(reply.every((p) => p.length === 1048576)).toBe(true);
    expect(await writer.send(["LLEN", topic])).toBe(0);
    expect(await writer.send(["PING"])).toBe("PONG");
    writer.close();
    expect(server.stderrText()).not.toContain("slow consumer");
  }, 20000);

  test("a SUB SINCE 0 replay of 20 MiB reaches a reading client whole, then live messages follow", async () => {
    const topic = fresh("replay");
    const writer = await Resp.connect(server.port);
    await writer.putAll(
      topic,
      Array.from({ length: 20 }, () => MiB),
      4,
    );
    const reader = await Raw.open(server.port);
    reader.send(["SUB", topic, "SINCE", "0"]);
    await reader.replyCount(21, 15000);
    await writer.send(["PUT", topic, "live"]);
    const all = await reader.replyCount(22);
    expect(all[0]).toBe("OK");
    const frames = all.slice(1) as RespValue[][];
    expect(frames.map((f) => f[3])).toEqual(Array.from({ length: 21 }, (_, i) => i + 1));
    expect(text(frames[20]![2]!)).toBe("live");
    expect(reader.closed).toBe(false);
    reader.close();
    writer.close();
    expect(server.stderrText()).not.toContain("slow consumer");
  }, 20000);

  test("ON with PREFETCH 20 of 1 MiB messages gets all 20 leases; none goes to .dead", async () => {
    const topic = fresh("work");
    const writer = await Resp.connect(server.port);
    await writer.putAll(
      topic,
      Array.from({ length: 20 }, () => MiB),
      4,
    );
    const consumer = await Raw.open(server.port);
    consumer.send(["ON", topic, "PREFETCH", "20", "LEASE", "30s"]);
    const frames = (await consumer.replyCount(21, 15000)).slice(1) as RespValue[][];
    expect(frames.map((f) => f[3])).toEqual(Array.from({ length: 20 }, (_, i) => i + 1));
    consumer.send(...frames.map((f) => ["ACK", topic, f[3] as number]));
    expect((await consumer.replyCount(41)).slice(21).every((r) => r === "OK")).toBe(true);
    expect(await writer.send(["LLEN", `${topic}.dead`])).toBe(0);
    consumer.close();
    writer.close();
    expect(server.stderrText()).not.toContain("slow consumer");
  }, 20000);
});

describe("numbers are whole decimal numbers on RESP, as on HTTP", () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startServer({ httpPort: 0 });
  });

  test("ACK jobs 0x10 is -ERR and the lease on message 16 stays", async () => {
    const resp = await Resp.connect(server.port);
    const topic = fresh("hex");
    for (let i = 1; i <= 16; i++) await resp.send(["PUT", topic, `m${i}`]);
    for (let i = 1; i <= 15; i++) await resp.send(["GET", topic]);
    const frame = (await resp.send(["GET", topic, "LEASE", "30s"])) as RespValue[];
    expect(frame[3]).toBe(16);
    expect(errorText(await resp.send(["ACK", topic, "0x10"]))).toBe('ERR id must be a whole number of at least 1: "0x10"');
    for (const bad of ["1e1", "+16", " 16", "16.0", "-16"])
      expect(errorText(await resp.send(["ACK", topic, bad]))).toStartWith("ERR id must be a whole number");
    // Still leased: a NACK of 16 puts it back, and it is taken again.
    expect(await resp.send(["NACK", topic, "16"])).toBe("OK");
    expect(((await resp.send(["GET", topic])) as RespValue[])[3]).toBe(16);
    resp.close();
  });

  test("GET t MAXDELIVERIES -5 is -ERR and takes nothing", async () => {
    const resp = await Resp.connect(server.port);
    const topic = fresh("negative");
    await resp.send(["PUT", topic, "kept"]);
    expect(errorText(await resp.send(["GET", topic, "MAXDELIVERIES", "-5"]))).toBe('ERR MAXDELIVERIES must be a whole number of at least 1: "-5"');
    expect(errorText(await resp.send(["GET", topic, "LEASE", "30s", "MAXDELIVERIES", "1e3"]))).toStartWith("ERR MAXDELIVERIES must be a whole number");
    expect(await resp.send(["LLEN", topic])).toBe(1);
    expect(text(((await resp.send(["GET", topic])) as RespValue[])[2]!)).toBe("kept");
    resp.close();
  });

  test("PREFETCH, SINCE, DELIVERY and LPOP's count refuse what is not a whole number in range", async () => {
    const resp = await Resp.connect(server.port);
    expect(errorText(await resp.send(["ON", fresh("p"), "PREFETCH", "0"]))).toBe('ERR PREFETCH must be a whole number from 1 to 10000: "0"');
    expect(errorText(await resp.send(["ON", fresh("p"), "PREFETCH", "0x10"]))).toStartWith("ERR PREFETCH must be a whole number");
    expect(errorText(await resp.send(["SUB", fresh("s"), "SINCE", "-1"]))).toStartWith("ERR SINCE must be a whole number");
    expect(errorText(await resp.send(["ACK", fresh("d"), "1", "DELIVERY", "1.5"]))).toStartWith("ERR DELIVERY must be a whole number");
    expect(errorText(await resp.send(["LPOP", fresh("c"), "-1"]))).toStartWith("ERR count must be a whole number");
    expect(await resp.send(["PING"])).toBe("PONG");
    resp.close();
  });
});

describe("the command table", () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startServer({ httpPort: 0 });
  });

  test("arity is checked for every command, by the name as sent", async () => {
    const resp = await Resp.connect(server.port);
    expect(errorText(await resp.send(["put", "t"]))).toBe("ERR wrong number of arguments for 'put' command");
    expect(errorText(await resp.send(["PUBLISH", "t", "a", "b"]))).toBe("ERR wrong number of arguments for 'publish' command");
    expect(errorText(await resp.send(["LLeN"]))).toBe("ERR wrong number of arguments for 'llen' command");
    expect(errorText(await resp.send(["PING", "a", "b"]))).toBe("ERR wrong number of arguments for 'ping' command");
    expect(errorText(await resp.send(["NOSUCH"]))).toBe("ERR unknown command 'NOSUCH'");
    resp.close();
  });

  test("a subscribed RESP2 connection and a consuming one are told what they may send", async () => {
    const subscriber = await Raw.open(server.port);
    subscriber.send(["SUBSCRIBE", fresh("s")], ["GET", "x"], ["PING"]);
    const replies = await subscriber.replyCount(3);
    expect(errorText(replies[1])).toBe("ERR Can't execute 'get': only SUBSCRIBE / UNSUBSCRIBE / SUB / UNSUB / PING / QUIT are allowed in this context");
    subscriber.close();
    const consumer = await Raw.open(server.port);
    consumer.send(["ON", fresh("c")], ["PUT", "x", "y"], ["PING"]);
    const answers = await consumer.replyCount(3);
    expect(errorText(answers[1])).toBe("ERR Can't execute 'put': only ACK / NACK / TOUCH / ON / OFF / PING / QUIT are allowed while consuming");
    expect(answers[2]).toBe("PONG");
    consumer.close();
  });
});
