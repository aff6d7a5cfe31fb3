// The library's TCP client (src/client/tcp.ts) against the compiled server: pipelining, large
// writes that the kernel takes in parts, streams on their own connections, and the errors a
// caller sees (codes and texts) when the server refuses, is unreachable or goes away.

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { connect, type Client, type ReceivedMessage } from "../../src/client/client.ts";
import { BusError } from "../../src/core/errors.ts";
import { hasBinary } from "../helpers/binary.ts";
import { freePort } from "../helpers/ports.ts";
import { cleanupAll } from "../helpers/processes.ts";
import { startServer, type TestServer } from "../helpers/server.ts";
import { waitFor } from "../helpers/wait.ts";

const encoder = new TextEncoder();
const bytes = (s: string) => encoder.encode(s);
const text = (b: Uint8Array) => new TextDecoder().decode(b);

async function rejection(promise: Promise<unknown>): Promise<BusError> {
  try {
    await promise;
  } catch (error) {
    expect(error).toBeInstanceOf(BusError);
    return error as BusError;
  }
  throw new Error("expected a rejection");
}

let topicCount = 0;
const freshTopic = (name: string) => `${name}-${++topicCount}`;

afterAll(() => cleanupAll());

describe.skipIf(!hasBinary())("the TCP client", () => {
  let server: TestServer;
  let client: Client;

  beforeAll(async () => {
    server = await startServer({ httpPort: 0 });
    client = await connect(server.url);
  });
  afterAll(() => client.close());

  test("putMany pipelines 20,000 writes and returns their ids in order", async () => {
    const topic = freshTopic("many");
    const results = await client.putMany(
      topic,
      Array.from({ length: 20000 }, (_, i) => bytes(`m${i + 1}`)),
    );
    expect(results.map((r) => r.id)).toEqual(Array.from({ length: 20000 }, (_, i) => i + 1));
    expect(text((await client.get(topic))!.payload)).toBe("m1");
  });

  test("putMany of 40 one-MiB payloads (more than the socket takes at once) delivers every byte", async () => {
    const topic = freshTopic("large");
    const payloads = Array.from({ length: 40 }, (_, i) => new Uint8Array(1048576).fill(i + 1));
    const results = await client.putMany(topic, payloads);
    expect(results).toHaveLength(40);
    for (let i = 0; i < 40; i++) {
      const m = await client.get(topic);
      expect(m!.payload.length).toBe(1048576);
      expect(m!.payload.every((b) => b === i + 1)).toBe(true);
    }
  });

  test("commands issued together without waiting get their own replies, in order", async () => {
    const topic = freshTopic("pipelined");
    const [a, b, first, second, none] = await Promise.all([
      client.put(topic, bytes("a")),
      client.put(topic, bytes("b")),
      client.get(topic),
      client.get(topic),
      client.get(topic),
    ]);
    expect([a.id, b.id]).toEqual([1, 2]);
    expect(text((first as ReceivedMessage).payload)).toBe("a");
    expect(text((second as ReceivedMessage).payload)).toBe("b");
    expect(none).toBeNull();
  });

  test("the server's refusals become BusErrors with their code and the server's text", async () => {
    const bad = await rejection(client.put("no spaces", bytes("x")));
    expect(bad.code).toBe("BAD_TOPIC");
    expect(bad.message).toMatch(/^topic name "no spaces"/);
    const large = await rejection(client.put(freshTopic("big"), new Uint8Array(1048577)));
    expect(large.code).toBe("TOO_LARGE");
    const noLease = await rejection(client.ack(freshTopic("acks"), 1));
    expect(noLease.code).toBe("NO_LEASE");
    // The connection carries on after each of them.
    expect((await client.put(freshTopic("after"), bytes("ok"))).id).toBe(1);
  });

  test("consume hands messages over with leases, acks go back on the consumer's connection, close resolves done", async () => {
    const topic = freshTopic("consume");
    await client.putMany(topic, [bytes("one"), bytes("two"), bytes("three")]);
    const got: ReceivedMessage[] = [];
    const stream = await client.consume(topic, { prefetch: 2, lease: 30000 }, (m) => {
      got.push(m);
      client.ack(topic, m.id, m.deliveries);
    });
    await waitFor(() => got.length === 3, { what: "3 messages" });
    expect(got.map((m) => text(m.payload))).toEqual(["one", "two", "three"]);
    expect(got.every((m) => m.deliveries === 1)).toBe(true);
    stream.close();
    await stream.done;
    expect(await client.get(topic)).toBeNull();
  });

  test("subscribe gets every write while the same client keeps writing on its request connection", async () => {
    const topic = freshTopic("sub");
    const got: string[] = [];
    const stream = await client.subscribe(topic, {}, (m) => got.push(text(m.payload)));
    await client.putMany(
      topic,
      Array.from({ length: 1000 }, (_, i) => bytes(String(i))),
    );
    await waitFor(() => got.length === 1000, { what: "1000 broadcasts" });
    expect(got).toEqual(Array.from({ length: 1000 }, (_, i) => String(i)));
    stream.close();
    await stream.done;
  });

  test("an exception in the message callback ends the stream: done rejects with it", async () => {
    const topic = freshTopic("throws");
    const stream = await client.subscribe(topic, {}, () => {
      throw new BusError("SLOW_CONSUMER", "cannot keep up");
    });
    await client.put(topic, bytes("x"));
    const error = await rejection(stream.done);
    expect(error).toMatchObject({ code: "SLOW_CONSUMER", message: "cannot keep up" });
  });

  test("an unreachable server is UNAVAILABLE, naming the address and the reason", async () => {
    const port = freePort();
    const error = await rejection(connect(`tcp://127.0.0.1:${port}`));
    expect(error.code).toBe("UNAVAILABLE");
    expect(error.message).toBe(`cannot reach msgbus at tcp://127.0.0.1:${port}: connection refused (ECONNREFUSED)`);
  });

  test("a port that does not speak RESP is UNAVAILABLE, not a crash", async () => {
    const http = Bun.serve({ hostname: "127.0.0.1", port: 0, fetch: () => new Response("hi") });
    try {
      const other = await connect(`tcp://127.0.0.1:${http.port}`);
      const error = await rejection(other.put("jobs", bytes("x")));
      expect(error.code).toBe("UNAVAILABLE");
      expect(error.message).toMatch(/did not answer in RESP/);
      await other.close();
    } finally {
      http.stop(true);
    }
  });

  test("when the server goes away, streams' done and waiting commands reject with UNAVAILABLE", async () => {
    const doomed = await startServer({ httpPort: 0 });
    const other = await connect(doomed.url);
    const stream = await other.consume("jobs", {}, () => {});
    const waiting = rejection(other.get("jobs", { wait: 0 })); // handled now: it may fail first
    await doomed.stop("SIGKILL");
    const lost = await rejection(stream.done);
    expect(lost.code).toBe("UNAVAILABLE");
    expect(lost.message).toMatch(new RegExp(`^lost the connection to msgbus at tcp://127\\.0\\.0\\.1:${doomed.port}`));
    expect((await waiting).code).toBe("UNAVAILABLE");
    expect((await rejection(other.put("jobs", bytes("x")))).code).toBe("UNAVAILABLE");
    await other.close();
  });

  test("a token: accepted when right, UNAUTHORIZED when wrong or missing", async () => {
    const secured = await startServer({ httpPort: 0, args: ["--token", "s3cret"] });
    const right = await connect(secured.url, { token: "s3cret" });
    expect((await right.put("jobs", bytes("x"))).id).toBe(1);
    await right.close();
    expect((await rejection(connect(secured.url, { token: "wrong" }))).code).toBe("UNAUTHORIZED");
    const anonymous = await connect(secured.url);
    expect((await rejection(anonymous.put("jobs", bytes("x")))).code).toBe("UNAUTHORIZED");
    expect((await rejection(anonymous.subscribe("jobs", {}, () => {}))).code).toBe("UNAUTHORIZED");
    await anonymous.close();
    await secured.stop();
  });
});
