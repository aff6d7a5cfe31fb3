// SSE subscriptions of the compiled binary: live delivery across transports, the id: field,
// exact payloads in ?json, resuming with Last-Event-ID without gap or duplicate, a reader that
// stops reading cut off with the server's memory bounded, and shutdown.

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { hasBinary } from "../helpers/binary.ts";
import { spawnCli } from "../helpers/cli.ts";
import { cleanupAll } from "../helpers/processes.ts";
import { startServer, type TestServer } from "../helpers/server.ts";
import { waitFor } from "../helpers/wait.ts";
import { connect } from "../../src/client/client.ts";
import { Resp, floodPastStalledReader, SseReader, randomBytes } from "./transports.ts";

const MAX = 65536;
let topicCount = 0;
const fresh = (name: string) => `${name}-${++topicCount}`;
const text = (s: string) => new TextEncoder().encode(s);

afterAll(() => cleanupAll());

describe.skipIf(!hasBinary())("SSE", () => {
  let server: TestServer;
  let base: string;
  let resp: Resp;

  beforeAll(async () => {
    server = await startServer({ args: ["--max-message-size", String(MAX)] });
    base = server.httpUrl;
    resp = await Resp.connect(server.port);
  });
  afterAll(() => resp?.close());

  test("Accept: text/event-stream subscribes; messages written over TCP arrive live with id: = message id", async () => {
    const topic = fresh("sensors");
    await resp.putAll(topic, [text("before")]);
    const reader = await SseReader.open(`${base}/${topic}`);
    expect(reader.status).toBe(200);
    await resp.putAll(topic, [text('{"t":21.5}'), text("two\nlines")]);
    const events = await reader.waitForEvents(2);
    expect(events).toEqual([
      { type: "message", id: "2", data: '{"t":21.5}' },
      { type: "message", id: "3", data: "two\nlines" },
    ]);
    reader.close();
  });

  test("?sse works without the Accept header; messages written over HTTP arrive too", async () => {
    const topic = fresh("query");
    const reader = await SseReader.open(`${base}/${topic}?sse`, { accept: "*/*" });
    await fetch(`${base}/${topic}`, { method: "POST", body: "over http" });
    expect((await reader.waitForEvents(1))[0]).toMatchObject({ id: "1", data: "over http" });
    reader.close();
  });

  test("a payload that is not SSE-safe text comes as an event: base64 in text mode", async () => {
    const topic = fresh("binary");
    const reader = await SseReader.open(`${base}/${topic}`);
    const payloads = [new Uint8Array([0xff, 0x00, 0x80]), text("crlf\r\nline")];
    await resp.putAll(topic, payloads);
    const events = await reader.waitForEvents(2);
    for (const [i, event] of events.entries()) {
      expect(event.type).toBe("base64");
      expect(Buffer.from(event.data, "base64").equals(Buffer.from(payloads[i]!))).toBe(true);
    }
    reader.close();
  });

  test("?json events carry the envelope, byte-exact for 0 B, 1 B, UTF-8 and max-size binary payloads", async () => {
    const topic = fresh("json");
    const reader = await SseReader.open(`${base}/${topic}?json`);
    const payloads = [new Uint8Array(0), new Uint8Array([7]), text("héllo\r\n"), randomBytes(MAX)];
    await resp.putAll(topic, payloads);
    const events = await reader.waitForEvents(4);
    for (const [i, event] of events.entries()) {
      const envelope = JSON.parse(event.data) as { id: number; topic: string; payload: string; encoding?: string; created: number };
      expect(event.id).toBe(String(i + 1));
      expect(envelope).toMatchObject({ id: i + 1, topic });
      const bytes = envelope.encoding === "base64" ? Buffer.from(envelope.payload, "base64") : Buffer.from(envelope.payload, "utf8");
      expect(bytes.equals(Buffer.from(payloads[i]!))).toBe(true);
    }
    reader.close();
  });

  test("Last-Event-ID resumes with the still-queued messages after it, then live: no gap, no duplicate", async () => {
    const topic = fresh("resume");
    await resp.putAll(
      topic,
      [1, 2, 3, 4, 5].map((n) => text(`m${n}`)),
    );
    const reader = await SseReader.open(`${base}/${topic}`, { "last-event-id": "2" });
    await resp.putAll(topic, [text("m6")]);
    const events = await reader.waitForEvents(4);
    expect(events.map((e) => e.id)).toEqual(["3", "4", "5", "6"]);
    expect(events.map((e) => e.data)).toEqual(["m3", "m4", "m5", "m6"]);
    reader.close();
    // Last-Event-ID wins over ?since (a browser reconnects with the URL it started with).
    const again = await SseReader.open(`${base}/${topic}?since=0`, { "last-event-id": "5" });
    expect((await again.waitForEvents(1)).map((e) => e.id)).toEqual(["6"]);
    again.close();
  });

  test("a Last-Event-ID header alone (curl -N -H 'Last-Event-ID: 41', Accept: */*) streams from 42 and takes nothing", async () => {
    const topic = fresh("curlresume");
    await resp.putAll(
      topic,
      Array.from({ length: 43 }, (_, i) => text(`m${i + 1}`)),
    );
    const reader = await SseReader.open(`${base}/${topic}`, { accept: "*/*", "last-event-id": "41" });
    expect(reader.status).toBe(200);
    await resp.putAll(topic, [text("m44")]);
    const events = await reader.waitForEvents(3);
    expect(events.map((e) => e.id)).toEqual(["42", "43", "44"]);
    expect(events.map((e) => e.data)).toEqual(["m42", "m43", "m44"]);
    reader.close();
    expect((await (await fetch(`${base}/_/topics/${topic}`)).json()) as { depth: number; consumed: number }).toMatchObject({ depth: 44, consumed: 0 });
  });

  test("?since joining while writes pour in sees every id exactly once, in order", async () => {
    const topic = fresh("since");
    const writes = resp.putAll(
      topic,
      Array.from({ length: 3000 }, (_, i) => text(`n${i + 1}`)),
      16,
    );
    await waitFor(async () => ((await (await fetch(`${base}/_/topics/${topic}`)).json()) as { lastId: number }).lastId > 500, { what: "writes to start" });
    const reader = await SseReader.open(`${base}/${topic}?since=0`);
    await writes;
    const events = await reader.waitForEvents(3000, 15000);
    expect(events.map((e) => Number(e.id))).toEqual(Array.from({ length: 3000 }, (_, i) => i + 1));
    reader.close();
  });

  test("connect('http://…').subscribe() reads the stream exactly; since replays", async () => {
    const topic = fresh("client");
    const client = await connect(base);
    const seen: { id: number; payload: Uint8Array }[] = [];
    const payload = randomBytes(1000);
    await resp.putAll(topic, [text("old")]);
    const stream = await client.subscribe(topic, { since: 0 }, (m) => seen.push(m));
    await resp.putAll(topic, [payload]);
    await waitFor(() => seen.length === 2, { what: "two messages" });
    expect(seen.map((m) => m.id)).toEqual([1, 2]);
    expect(Buffer.from(seen[1]!.payload).equals(Buffer.from(payload))).toBe(true);
    stream.close();
    await stream.done;
    await client.close();
  });

  test("msgbus sub --url http://… prints messages written over TCP", async () => {
    const topic = fresh("cli");
    const sub = spawnCli(["sub", "--url", base, topic]);
    await waitFor(async () => ((await (await fetch(`${base}/_/topics/${topic}`)).json()) as { subscribers: number }).subscribers === 1, {
      what: "the CLI to subscribe",
    });
    await resp.putAll(topic, [text("hello from tcp")]);
    expect(await sub.waitForLines(1)).toEqual(["hello from tcp"]);
    await sub.stop();
  });

  test("one message bigger than --send-buffer is not backlog: a reader that keeps up gets 4 MiB events and stays", async () => {
    const big = await startServer({ args: ["--send-buffer", "256KiB", "--max-message-size", "4MiB"] });
    const bigResp = await Resp.connect(big.port);
    try {
      const reader = await SseReader.open(`${big.httpUrl}/huge?json`);
      const payloads = Array.from({ length: 5 }, () => randomBytes(4 * 1048576));
      for (let i = 0; i < 3; i++) {
        await bigResp.putAll("huge", [payloads[i]!]);
        await reader.waitForEvents(i + 1, 10000);
      }
      // Two back to back: the second waits while the first is still being written, a 4 MiB
      // backlog of exactly one message.
      await bigResp.putAll("huge", payloads.slice(3), 2);
      const events = await reader.waitForEvents(5, 10000);
      expect(events.every((e, i) => Buffer.from(JSON.parse(e.data).payload, "base64").equals(Buffer.from(payloads[i]!)))).toBe(true);
      expect(reader.ended).toBe(false);
      expect(await (await fetch(`${big.httpUrl}/_/metrics`)).text()).toMatch(/^msgbus_slow_consumers_total 0$/m);
      reader.close();
    } finally {
      bigResp.close();
      await big.stop();
    }
  }, 60000);

  test("a reader that stops reading is cut off past --send-buffer; memory stays bounded and others are served", async () => {
    const small = await startServer({ args: ["--send-buffer", "2MiB", "--max-queue-bytes", "4MiB"] });
    const topic = "flood";
    const flood = await floodPastStalledReader(small, topic, `GET /${topic} HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\n\r\n`, async () => {
      const reader = await SseReader.open(`${small.httpUrl}/${topic}`);
      return { waitFor: (n) => reader.waitForEvents(n, 10000), close: () => reader.close() };
    });
    expect((await fetch(`${small.httpUrl}/_/health`)).status).toBe(200);
    const metrics = await (await fetch(`${small.httpUrl}/_/metrics`)).text();
    expect(metrics).toMatch(/^msgbus_slow_consumers_total 1$/m);
    expect(metrics).toMatch(/^msgbus_connections\{transport="sse"\} 1$/m);
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

  test("stopping the server ends its SSE streams and exits 0", async () => {
    const stopping = await startServer();
    const reader = await SseReader.open(`${stopping.httpUrl}/topic`);
    expect(await stopping.stop()).toBe(0);
    await waitFor(() => reader.ended, { what: "the stream to end" });
  });
});
