// PEEK on the compiled server: RESP `PEEK topic [COUNT n] [SINCE id]` and HTTP `GET /{topic}?peek`
// show the queued messages in id order and take none of them; `GET /` with Accept: application/json
// lists the topics (prologic's msgbus habit).

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { connect } from "../../src/client/client.ts";
import { RespErrorValue } from "../../src/protocol/resp-reader.ts";
import { cleanupAll, hasBinary, startServer, type TestServer } from "../helpers/index.ts";
import { Resp } from "./transports.ts";

afterAll(() => cleanupAll());

let counter = 0;
const fresh = (name: string) => `${name}-${++counter}-${Date.now()}`;
const text = (s: string) => new TextEncoder().encode(s);
const decode = (b: Uint8Array) => new TextDecoder().decode(b);

describe.skipIf(!hasBinary())("peek", () => {
  let server: TestServer;
  let resp: Resp;

  beforeAll(async () => {
    server = await startServer();
    resp = await Resp.connect(server.port);
  });
  afterAll(() => resp?.close());

  test("RESP PEEK answers message frames in id order and leaves every message queued", async () => {
    const topic = fresh("peek-resp");
    await resp.putAll(topic, [text("a"), text("b"), text("c")]);
    const frames = (await resp.send(["PEEK", topic])) as unknown[][];
    expect(frames.map((f) => decode(f[2] as Uint8Array))).toEqual(["a", "b", "c"]);
    expect(frames.map((f) => f[3])).toEqual([1, 2, 3]);
    expect(frames[0]![0]).toEqual(text("message"));
    expect(await resp.send(["LLEN", topic])).toBe(3);
    expect(decode((await resp.take(topic))!.payload)).toBe("a");
  });

  test("RESP PEEK COUNT and SINCE narrow the view; an unknown topic peeks as an empty array", async () => {
    const topic = fresh("peek-count");
    await resp.putAll(topic, [text("1"), text("2"), text("3"), text("4")]);
    const two = (await resp.send(["PEEK", topic, "COUNT", "2"])) as unknown[][];
    expect(two.map((f) => f[3])).toEqual([1, 2]);
    const after = (await resp.send(["PEEK", topic, "SINCE", "2", "COUNT", "10"])) as unknown[][];
    expect(after.map((f) => f[3])).toEqual([3, 4]);
    expect(await resp.send(["PEEK", fresh("never-written")])).toEqual([]);
    expect(await resp.send(["LLEN", topic])).toBe(4);
  });

  test("RESP PEEK refuses a count of 0 or over 1000, and a bad topic name", async () => {
    for (const count of ["0", "1001", "x"]) {
      const reply = await resp.send(["PEEK", "jobs", "COUNT", count]);
      expect(reply).toBeInstanceOf(RespErrorValue);
      expect((reply as RespErrorValue).message).toStartWith("ERR");
    }
    expect(((await resp.send(["PEEK", "_bad"])) as RespErrorValue).message).toStartWith("BADTOPIC");
  });

  test("messages nacked back to the head are peeked in id order, not in the order GET takes them", async () => {
    const topic = fresh("peek-order");
    await resp.putAll(topic, [text("first"), text("second"), text("third")]);
    expect(((await resp.send(["GET", topic, "LEASE", "30s"])) as unknown[])[3]).toBe(1);
    expect(((await resp.send(["GET", topic, "LEASE", "30s"])) as unknown[])[3]).toBe(2);
    expect(await resp.send(["NACK", topic, 1])).toBe("OK");
    expect(await resp.send(["NACK", topic, 2])).toBe("OK"); // the queue is now 2, 1, 3
    const frames = (await resp.send(["PEEK", topic])) as unknown[][];
    expect(frames.map((f) => f[3])).toEqual([1, 2, 3]);
    expect(frames.map((f) => f[5])).toEqual([1, 1, 0]); // peeking counts no delivery
    expect(((await resp.send(["GET", topic])) as unknown[])[3]).toBe(2);
  });

  test("HTTP GET /{topic}?peek answers a JSON array of envelopes (base64 for binary) and takes nothing", async () => {
    const topic = fresh("peek-http");
    await resp.putAll(topic, [text("hello"), new Uint8Array([0xff, 0x00, 0x01])]);
    const response = await fetch(`${server.httpUrl}/${topic}?peek`);
    expect(response.status).toBe(200);
    expect(response.headers.get("content-type")).toContain("application/json");
    const envelopes = (await response.json()) as Record<string, unknown>[];
    expect(envelopes).toHaveLength(2);
    expect(envelopes[0]).toMatchObject({ id: 1, topic, payload: "hello", deliveries: 0 });
    expect(envelopes[1]).toMatchObject({ id: 2, payload: Buffer.from([0xff, 0, 1]).toString("base64"), encoding: "base64" });
    expect(await resp.send(["LLEN", topic])).toBe(2);
    const limited = (await (await fetch(`${server.httpUrl}/${topic}?peek&n=1&since=1`)).json()) as { id: number }[];
    expect(limited.map((e) => e.id)).toEqual([2]);
    expect((await fetch(`${server.httpUrl}/${topic}?peek&n=0`)).status).toBe(400);
    expect((await fetch(`${server.httpUrl}/${topic}?peek&n=1001`)).status).toBe(400);
    expect((await fetch(`${server.httpUrl}/${topic}?peek&wait=1s`)).status).toBe(400);
    expect(await resp.send(["LLEN", topic])).toBe(2);
  });

  test("the client's peek works over tcp, http and ws and leaves the messages queued", async () => {
    const topic = fresh("peek-client");
    await resp.putAll(topic, [text("x"), text("y")]);
    for (const url of [server.url, server.httpUrl, server.httpUrl.replace("http:", "ws:")]) {
      const client = await connect(url);
      try {
        const messages = await client.peek(topic, { count: 5 });
        expect(messages.map((m) => decode(m.payload))).toEqual(["x", "y"]);
        expect((await client.peek(topic, { since: 1 })).map((m) => m.id)).toEqual([2]);
      } finally {
        await client.close();
      }
    }
    expect(await resp.send(["LLEN", topic])).toBe(2);
  });

  test("GET / with Accept: application/json lists the topics as /_/topics does", async () => {
    const topic = fresh("listed");
    await resp.putAll(topic, [text("x")]);
    const response = await fetch(`${server.httpUrl}/`, { headers: { accept: "application/json" } });
    expect(response.status).toBe(200);
    const body = (await response.json()) as { topics: { name: string; depth: number }[] };
    expect(body.topics.find((t) => t.name === topic)).toMatchObject({ depth: 1 });
  });
});
