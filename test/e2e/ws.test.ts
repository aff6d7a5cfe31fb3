// WebSockets on GET /{topic} of the compiled binary: push across transports with frame types
// kept, writes from the socket, ?json envelopes and acknowledgements, fan-out, since, refusals,
// the ws client and CLI, and a stalled reader cut off while 100 MB goes by.

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { hasBinary } from "../helpers/binary.ts";
import { runCli, spawnCli } from "../helpers/cli.ts";
import { cleanupAll } from "../helpers/processes.ts";
import { startServer, type TestServer } from "../helpers/server.ts";
import { waitFor } from "../helpers/wait.ts";
import { connect } from "../../src/client/client.ts";
import { encodeCommand } from "../../src/protocol/resp-writer.ts";
import { Resp, floodPastStalledReader, WsCollector, randomBytes, rawExchange, statusOf, wsHandshake } from "./transports.ts";

const MAX = 65536;
let topicCount = 0;
const fresh = (name: string) => `${name}-${++topicCount}`;
const text = (s: string) => new TextEncoder().encode(s);
const same = (a: Uint8Array | string, b: Uint8Array) => typeof a !== "string" && Buffer.from(a).equals(Buffer.from(b));

afterAll(() => cleanupAll());

describe.skipIf(!hasBinary())("WebSocket", () => {
  let server: TestServer;
  let ws: string;
  let resp: Resp;

  const subscribers = async (topic: string) => ((await (await fetch(`${server.httpUrl}/_/topics/${topic}`)).json()) as { subscribers: number }).subscribers;

  beforeAll(async () => {
    server = await startServer({ args: ["--max-message-size", String(MAX)] });
    ws = `ws://127.0.0.1:${server.httpPort}`;
    resp = await Resp.connect(server.port);
  });
  afterAll(() => resp?.close());

  test("a subscriber gets messages written over TCP: UTF-8 as text frames, other bytes as binary frames", async () => {
    const topic = fresh("sensors");
    const socket = await WsCollector.open(`${ws}/${topic}`);
    const binary = new Uint8Array([0xff, 0xd8, 0x00]);
    // ASCII (to 0x7f) and other UTF-8: text frames, whichever way the frame's text is made.
    // Short ranges are checked four bytes a step and then the rest, long ones (> 256 bytes) natively.
    const long = "a".repeat(300);
    const tailHigh = new Uint8Array([0x41, 0x42, 0x43, 0x44, 0x80]); // the high byte past the last whole step
    await resp.putAll(topic, [
      text('{"t":21.5}'),
      binary,
      text("A\u007f"),
      text("héllo ✓"),
      new Uint8Array([0x41, 0x80]),
      text(`${long}\u007f`),
      text(`${long}é`),
      tailHigh,
      text("abcdé"),
    ]);
    const frames = await socket.waitForFrames(9);
    expect(frames[0]).toBe('{"t":21.5}');
    expect(same(frames[1]!, binary)).toBe(true);
    expect(frames[2]).toBe("A\u007f");
    expect(frames[3]).toBe("héllo ✓");
    expect(same(frames[4]!, new Uint8Array([0x41, 0x80]))).toBe(true);
    expect(frames[5]).toBe(`${long}\u007f`);
    expect(frames[6]).toBe(`${long}é`);
    expect(same(frames[7]!, tailHigh)).toBe(true);
    expect(frames[8]).toBe("abcdé");
    socket.close();
  });

  test("binary frames written and taken in one read each carry their own bytes (the queue's memory is reused under them)", async () => {
    // PUBLISH then LPOP, pairs in one write: the topic's one small chunk is written over from its
    // start by every next PUBLISH, all before this turn's frames go out.
    const topic = fresh("reused");
    const socket = await WsCollector.open(`${ws}/${topic}`);
    const payload = (i: number) => Uint8Array.from({ length: 100 }, (_, k) => (k === 0 ? 0xff : (i + k) & 255)); // not UTF-8: binary frames
    const count = 500;
    const pairs = Array.from({ length: count }, (_, i) => [encodeCommand(["PUBLISH", topic, payload(i)]), encodeCommand(["LPOP", topic])]).flat();
    const raw = await Bun.connect({ hostname: "127.0.0.1", port: server.port, socket: { data() {} } });
    raw.write(Buffer.concat(pairs.map((c) => Buffer.from(c))));
    const frames = await socket.waitForFrames(count);
    for (let i = 0; i < count; i++) expect(same(frames[i]!, payload(i))).toBe(true);
    raw.end();
    socket.close();
  });

  test("?binary: text written and taken in one read comes as binary frames, each with its own bytes", async () => {
    const topic = fresh("reused-binary");
    const socket = await WsCollector.open(`${ws}/${topic}?binary`);
    const payload = (i: number) => new TextEncoder().encode(`${i}:${"x".repeat(90)}`); // ASCII, yet binary frames
    const count = 500;
    const pairs = Array.from({ length: count }, (_, i) => [encodeCommand(["PUBLISH", topic, payload(i)]), encodeCommand(["LPOP", topic])]).flat();
    const raw = await Bun.connect({ hostname: "127.0.0.1", port: server.port, socket: { data() {} } });
    raw.write(Buffer.concat(pairs.map((c) => Buffer.from(c))));
    const frames = await socket.waitForFrames(count);
    for (let i = 0; i < count; i++) {
      expect(frames[i]).toBeInstanceOf(Uint8Array);
      expect(same(frames[i] as Uint8Array, payload(i))).toBe(true);
    }
    raw.end();
    socket.close();
  });

  test("frames a socket sends are published: text stays text, a binary frame stays binary even when its bytes are UTF-8", async () => {
    const topic = fresh("chat");
    const reader = await WsCollector.open(`${ws}/${topic}`);
    const writer = await WsCollector.open(`${ws}/${topic}?publish-only`);
    writer.ws.send("hello");
    writer.ws.send(text("ascii but binary"));
    const frames = await reader.waitForFrames(2);
    expect(frames[0]).toBe("hello");
    expect(same(frames[1]!, text("ascii but binary"))).toBe(true);
    expect(new TextDecoder().decode((await resp.take(topic))!.payload)).toBe("hello");
    expect(await (await fetch(`${server.httpUrl}/${topic}`)).text()).toBe("ascii but binary");
    expect(writer.frames).toEqual([]); // ?publish-only: nothing comes back
    reader.close();
    writer.close();
  });

  for (const size of [0, 1, MAX]) {
    test(`a ${size}-byte binary payload crosses TCP -> WebSocket and WebSocket -> TCP byte-exact`, async () => {
      const topic = fresh("bytes");
      const payload = randomBytes(size);
      const socket = await WsCollector.open(`${ws}/${topic}?binary`);
      await resp.putAll(topic, [payload]);
      expect(same((await socket.waitForFrames(1))[0]!, payload)).toBe(true);
      socket.ws.send(payload);
      await socket.waitForFrames(2); // its own write comes back too: it is subscribed
      await resp.take(topic); // the first copy
      expect(same((await resp.take(topic))!.payload, payload)).toBe(true);
      socket.close();
    });
  }

  test("?json frames are envelopes, and writes are answered in order with their ids", async () => {
    const topic = fresh("json");
    const socket = await WsCollector.open(`${ws}/${topic}?json`);
    const binary = randomBytes(100);
    await resp.putAll(topic, [text("plain")]);
    await socket.waitForFrames(1);
    socket.ws.send(binary);
    socket.ws.send("second");
    const frames = (await socket.waitForFrames(5)).map((f) => JSON.parse(f as string));
    expect(frames[0]).toMatchObject({ type: "message", id: 1, topic, payload: "plain", deliveries: 0 });
    expect(frames[0].created).toBeGreaterThan(0);
    const published = frames.filter((f) => f.type === "published");
    expect(published.map((f) => f.id)).toEqual([2, 3]);
    const messages = frames.filter((f) => f.type === "message");
    expect(messages.map((f) => f.id)).toEqual([1, 2, 3]);
    expect(messages[1]).toMatchObject({ encoding: "base64", payload: Buffer.from(binary).toString("base64") });
    socket.close();
  });

  test("fan-out: 100 sockets each get every message, in order", async () => {
    const topic = fresh("fanout");
    const sockets = await Promise.all(Array.from({ length: 100 }, () => WsCollector.open(`${ws}/${topic}?json`)));
    expect(await subscribers(topic)).toBe(100);
    await resp.putAll(
      topic,
      Array.from({ length: 200 }, (_, i) => text(`m${i + 1}`)),
    );
    for (const socket of sockets) {
      const frames = await socket.waitForFrames(200);
      expect(frames.map((f) => JSON.parse(f as string).id)).toEqual(Array.from({ length: 200 }, (_, i) => i + 1));
    }
    for (const socket of sockets) socket.close();
    await waitFor(async () => (await subscribers(topic)) === 0, { what: "the sockets to leave" });
  });

  test("groups of one topic in raw, ?binary and ?json, let go and made anew, each get every message and count their sockets", async () => {
    const topic = fresh("regroup");
    for (let round = 0; round < 3; round++) {
      const raw = await Promise.all([WsCollector.open(`${ws}/${topic}`), WsCollector.open(`${ws}/${topic}`)]);
      const binary = await WsCollector.open(`${ws}/${topic}?binary`);
      const json = await WsCollector.open(`${ws}/${topic}?json`);
      expect(await subscribers(topic)).toBe(4);
      const payloads = Array.from({ length: 50 }, (_, i) => `r${round}m${i}${i % 7 === 0 ? "é" : ""}`);
      await resp.putAll(topic, payloads.map(text));
      for (const socket of raw) expect(await socket.waitForFrames(50)).toEqual(payloads);
      const binaryFrames = await binary.waitForFrames(50);
      for (let i = 0; i < 50; i++) expect(same(binaryFrames[i]!, text(payloads[i]!))).toBe(true);
      const envelopes = (await json.waitForFrames(50)).map((f) => JSON.parse(f as string) as { type: string; topic: string });
      expect(envelopes.every((e) => e.type === "message" && e.topic === topic)).toBe(true);
      for (const socket of [...raw, binary, json]) socket.close();
      await waitFor(async () => (await subscribers(topic)) === 0, { what: "the sockets to leave" });
    }
  });

  test("?since joining while writes pour in sees every id exactly once, in order, then live", async () => {
    const topic = fresh("since");
    const writes = resp.putAll(
      topic,
      Array.from({ length: 3000 }, (_, i) => text(`n${i + 1}`)),
      16,
    );
    await waitFor(async () => ((await (await fetch(`${server.httpUrl}/_/topics/${topic}`)).json()) as { lastId: number }).lastId > 500, {
      what: "writes to start",
    });
    const socket = await WsCollector.open(`${ws}/${topic}?json&since=0`);
    await writes;
    await resp.putAll(topic, [text("live")]);
    const frames = await socket.waitForFrames(3001, 15000);
    expect(frames.map((f) => JSON.parse(f as string).id)).toEqual(Array.from({ length: 3001 }, (_, i) => i + 1));
    socket.close();
  });

  test("a frame over --max-message-size closes the socket with 1009", async () => {
    const socket = await WsCollector.open(`${ws}/${fresh("big")}`);
    socket.ws.send(randomBytes(MAX + 1));
    expect(await socket.waitForClose()).toBe(1009);
  });

  test("a refused write: ?json answers an error frame and stays open; raw mode closes with 4000 + status", async () => {
    const limited = await startServer({ args: ["--overflow", "reject", "--max-queue", "1"] });
    try {
      const url = `ws://127.0.0.1:${limited.httpPort}`;
      const json = await WsCollector.open(`${url}/full?json&publish-only`);
      json.ws.send("one");
      json.ws.send("two");
      const replies = (await json.waitForFrames(2)).map((f) => JSON.parse(f as string));
      expect(replies[0]).toMatchObject({ type: "published", id: 1 });
      expect(replies[1]).toMatchObject({ type: "error", code: "TOPIC_FULL" });
      expect(json.ws.readyState).toBe(WebSocket.OPEN);
      const raw = await WsCollector.open(`${url}/full?publish-only`);
      raw.ws.send("three");
      expect(await raw.waitForClose()).toBe(4429);
      expect(raw.closeReason).toContain("topic full");
      json.close();
    } finally {
      await limited.stop();
    }
  });

  test("an upgrade is refused with the HTTP error: 400 for a bad topic or parameter, 401 without the token", async () => {
    expect(statusOf(await rawExchange(server.httpPort, [wsHandshake("/a%2Fb")], { done: (t) => t.includes("\r\n\r\n{") }))).toBe(400);
    expect(statusOf(await rawExchange(server.httpPort, [wsHandshake("/ok?json&binary")], { done: (t) => t.includes("\r\n\r\n{") }))).toBe(400);
    expect(statusOf(await rawExchange(server.httpPort, [wsHandshake("/ok?nope")], { done: (t) => t.includes("\r\n\r\n{") }))).toBe(400);
    const guarded = await startServer({ args: ["--token", "s3cret"] });
    try {
      expect(statusOf(await rawExchange(guarded.httpPort, [wsHandshake("/t")], { done: (t) => t.includes("\r\n\r\n{") }))).toBe(401);
      expect(statusOf(await rawExchange(guarded.httpPort, [wsHandshake("/t?token=s3cret")], { done: (t) => t.includes("\r\n\r\n") }))).toBe(101);
      const withHeader = await WsCollector.open(`ws://127.0.0.1:${guarded.httpPort}/t`, { headers: { authorization: "Bearer s3cret" } });
      withHeader.close();
      const wrong = await connect(`ws://127.0.0.1:${guarded.httpPort}`, { token: "nope" });
      await expect(wrong.subscribe("t", {}, () => {})).rejects.toMatchObject({ code: "UNAUTHORIZED" });
      await expect(wrong.put("t", text("x"))).rejects.toMatchObject({ code: "UNAUTHORIZED" });
      await wrong.close();
      const right = await connect(`ws://127.0.0.1:${guarded.httpPort}`, { token: "s3cret" });
      expect(await right.put("t", text("x"))).toEqual({ id: 1, topic: "t" });
      await right.close();
    } finally {
      await guarded.stop();
    }
  });

  test("connect('ws://…') subscribes and puts over WebSockets; get, ack and consume go over HTTP", async () => {
    const topic = fresh("client");
    const client = await connect(ws);
    try {
      const seen: { id: number; payload: Uint8Array }[] = [];
      const stream = await client.subscribe(topic, {}, (m) => seen.push(m));
      const payload = randomBytes(MAX);
      expect(await client.put(topic, payload)).toEqual({ id: 1, topic });
      expect((await client.putMany(topic, [text("b"), new Uint8Array(0)])).map((r) => r.id)).toEqual([2, 3]);
      await waitFor(() => seen.length === 3, { what: "three messages" });
      expect(same(seen[0]!.payload, payload)).toBe(true);
      expect(seen[2]!.payload.length).toBe(0);
      const got = await client.get(topic, { lease: 30000 });
      expect(same(got!.payload, payload)).toBe(true);
      await client.ack(topic, got!.id);
      stream.close();
      await stream.done;
      await expect(client.subscribe("_bad", {}, () => {})).rejects.toMatchObject({ code: "BAD_TOPIC" });
    } finally {
      await client.close();
    }
  });

  test("msgbus sub --url ws://… prints live messages; msgbus put --url ws://… writes", async () => {
    const topic = fresh("cli");
    const sub = spawnCli(["sub", "--url", ws, topic]);
    await waitFor(async () => (await subscribers(topic)) === 1, { what: "the CLI to subscribe" });
    const put = await runCli(["put", "--url", ws, topic, "over ws"]);
    expect(put.code).toBe(0);
    await resp.putAll(topic, [text("over tcp")]);
    expect(await sub.waitForLines(2)).toEqual(["over ws", "over tcp"]);
    await sub.stop();
  });

  describe("big messages and replays to a reader that keeps up (--send-buffer 256KiB)", () => {
    let big: TestServer;
    let bigResp: Resp;
    beforeAll(async () => {
      big = await startServer({ args: ["--send-buffer", "256KiB", "--max-message-size", "4MiB", "--max-memory", "256MiB", "--max-queue-bytes", "64MiB"] });
      bigResp = await Resp.connect(big.port);
    });
    afterAll(async () => {
      bigResp?.close();
      await big?.stop();
    });

    test("a ?since replay of 20 MiB reaches the socket whole and in order; the socket stays open", async () => {
      const payloads = Array.from({ length: 20 }, () => randomBytes(1048576));
      await bigResp.putAll("replay", payloads, 4);
      const socket = await WsCollector.open(`ws://127.0.0.1:${big.httpPort}/replay?since=0&binary`);
      const frames = await socket.waitForFrames(20, 20000);
      expect(frames.every((f, i) => same(f, payloads[i]!))).toBe(true);
      await bigResp.putAll("replay", [text("live after")]);
      expect(new TextDecoder().decode((await socket.waitForFrames(21))[20] as Uint8Array)).toBe("live after");
      expect(socket.closeCode).toBeUndefined();
      socket.close();
    }, 30000);

    test("one message bigger than --send-buffer is not backlog: raw and ?json sockets get each 4 MiB message and stay", async () => {
      const raw = await WsCollector.open(`ws://127.0.0.1:${big.httpPort}/huge?binary`);
      const json = await WsCollector.open(`ws://127.0.0.1:${big.httpPort}/huge?json`);
      const payloads = Array.from({ length: 3 }, () => randomBytes(4 * 1048576));
      for (const [i, payload] of payloads.entries()) {
        await bigResp.putAll("huge", [payload]);
        expect(same((await raw.waitForFrames(i + 1, 10000))[i]!, payload)).toBe(true);
        await json.waitForFrames(i + 1, 10000);
        expect(Buffer.from(json.json()[i]!.payload, "base64").equals(Buffer.from(payload))).toBe(true);
      }
      expect(raw.closeCode).toBeUndefined();
      expect(json.closeCode).toBeUndefined();
      expect(await (await fetch(`http://127.0.0.1:${big.httpPort}/_/metrics`)).text()).toMatch(/^msgbus_slow_consumers_total 0$/m);
      raw.close();
      json.close();
    }, 60000);
  });

  test("a stalled reader (handshake, then never reads) is cut off while 100 MB is published; memory stays bounded, others are served", async () => {
    const small = await startServer({ args: ["--send-buffer", "2MiB", "--max-queue-bytes", "4MiB"] });
    const topic = "flood";
    const flood = await floodPastStalledReader(small, topic, wsHandshake(`/${topic}`), async () => {
      const socket = await WsCollector.open(`ws://127.0.0.1:${small.httpPort}/${topic}`);
      return { waitFor: (n) => socket.waitForFrames(n, 10000), close: () => socket.close() };
    });
    expect((await fetch(`${small.httpUrl}/_/health`)).status).toBe(200);
    const metrics = await (await fetch(`${small.httpUrl}/_/metrics`)).text();
    expect(metrics).toMatch(/^msgbus_slow_consumers_total 1$/m);
    expect(metrics).toMatch(/^msgbus_connections\{transport="ws"\} 1$/m);
    expect(small.stderrText()).toContain("slow consumer on flood");
    // The server's own counters: the stalled reader was cut off after a few MiB of the 100 MB
    // (--send-buffer 2 MiB plus what the kernel's socket buffers take), and the bus never held
    // more than the topic's --max-queue-bytes while the healthy reader kept up.
    expect(flood.publishedAtCutOff).toBeLessThanOrEqual(24 * 1048576);
    expect(flood.mostBytesHeld).toBeLessThanOrEqual(4 * 1048576);
    // A sanity bound only: the flood's own garbage lifts RSS by ~50 MB with or without a stalled reader.
    expect(flood.rssGrowth).toBeLessThan(200 * 1048576);
    flood.close();
    expect(await small.stop()).toBe(0);
  }, 60000);

  test("stopping the server closes sockets with 1001 and exits 0", async () => {
    const stopping = await startServer();
    const socket = await WsCollector.open(`ws://127.0.0.1:${stopping.httpPort}/t`);
    expect(await stopping.stop()).toBe(0);
    expect(await socket.waitForClose()).toBe(1001);
  });
});
