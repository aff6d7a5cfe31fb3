// The TCP server against hostile and careless input (issue 8): patterns that would backtrack,
// blocking reads the bus refuses, waits past the 32-bit timer range, RESET and auth. Every test
// drives the compiled binary over raw sockets.

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import net from "node:net";
import { RespErrorValue, RespReader, encodeCommand, type RespValue } from "../../src/protocol/resp.ts";
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
