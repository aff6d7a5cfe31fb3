// The compiled binary's topics and leases as issue 8 found them broken: a refused blocking read
// leaves nothing registered, purge drops delayed nacks, readers do not use up --max-topics, topics
// can be deleted, leases and delays have a ceiling, and TOUCH renews a lease.

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import net from "node:net";
import { encodeCommand } from "../../src/protocol/resp-writer.ts";
import { RespErrorValue, RespReader, type RespValue } from "../../src/protocol/resp-reader.ts";
import { cleanupAll, hasBinary, startServer, waitFor, type TestServer } from "../helpers/index.ts";
import { Resp } from "./transports.ts";

afterAll(() => cleanupAll());

let counter = 0;
const fresh = (name: string) => `${name}-${++counter}-${Date.now()}`;
const text = (s: string) => new TextEncoder().encode(s);

/** The reply, or "no reply" when none comes in time (a connection left blocked). */
function within(reply: Promise<RespValue>, ms = 3000): Promise<RespValue> {
  return Promise.race([reply, new Promise<RespValue>((resolve) => setTimeout(() => resolve("no reply"), ms))]);
}

function errorText(reply: RespValue): string {
  if (!(reply instanceof RespErrorValue)) throw new Error(`expected an error reply, got ${JSON.stringify(reply)}`);
  return reply.message;
}

/** Holds for `ms`: `check` must stay true all along (a message must not come back). */
async function staysTrue(ms: number, check: () => Promise<boolean>): Promise<void> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    expect(await check()).toBe(true);
    await Bun.sleep(100);
  }
}

describe.skipIf(!hasBinary())("topic lifecycle and leases", () => {
  let server: TestServer;
  let resp: Resp;

  beforeAll(async () => {
    server = await startServer();
    resp = await Resp.connect(server.port);
  });
  afterAll(() => resp?.close());

  describe("a blocking read the bus refuses leaves nothing registered", () => {
    let small: TestServer;
    beforeAll(async () => {
      small = await startServer({ args: ["--max-topics", "2"] });
    });

    test("BLPOP t0 brandnew 0 past --max-topics answers -BUSFULL; PING answers in step; a later PUT t0 stays queued", async () => {
      const watcher = await Resp.connect(small.port);
      const reader = await Resp.connect(small.port);
      const writer = await Resp.connect(small.port);
      try {
        await watcher.send(["SUBSCRIBE", "t0"]); // t0 in use, empty
        expect(await writer.send(["PUT", "other", "x"])).toBe(1); // the second topic in use
        expect(errorText(await within(reader.send(["BLPOP", "t0", "brandnew", "0"])))).toStartWith("BUSFULL");
        expect(await within(reader.send(["PING"]))).toBe("PONG");
        expect(errorText(await within(reader.send(["GET", "brandnew", "WAIT", "2"])))).toStartWith("BUSFULL");
        expect(await within(reader.send(["PING"]))).toBe("PONG");
        await writer.send(["PUT", "t0", "x"]);
        expect(await within(reader.send(["LLEN", "t0"]))).toBe(1);
      } finally {
        watcher.close();
        reader.close();
        writer.close();
      }
    });
  });

  test("purge drops a message nacked with a delay: it does not come back after the delay", async () => {
    const topic = fresh("purge-delayed");
    await resp.putAll(topic, [text("later")]);
    const frame = (await resp.send(["GET", topic, "LEASE", "30s"])) as [string, string, Uint8Array, number];
    expect(await resp.send(["NACK", topic, frame[3], "DELAY", "1s"])).toBe("OK");
    expect(await resp.send(["PURGE", topic])).toBe(1);
    await staysTrue(1600, async () => (await resp.send(["LLEN", topic])) === 0);
    expect(await resp.send(["GET", topic])).toBeNull();
  });

  test("HTTP DELETE ?purge drops a delayed nack too", async () => {
    const topic = fresh("purge-delayed-http");
    await resp.putAll(topic, [text("later")]);
    const taken = await fetch(`${server.httpUrl}/${topic}?lease=30s`);
    const id = taken.headers.get("msgbus-id")!;
    expect((await fetch(`${server.httpUrl}/${topic}/${id}/nack?delay=1s`, { method: "POST" })).status).toBe(200);
    expect(await (await fetch(`${server.httpUrl}/${topic}?purge`, { method: "DELETE" })).json()).toEqual({ topic, purged: 1 });
    await staysTrue(1600, async () => (await resp.send(["LLEN", topic])) === 0);
  });

  describe("readers do not use up --max-topics", () => {
    test("one BLPOP naming 12,000 never-written keys is refused whole, and writes to new topics keep working", async () => {
      const reader = await Resp.connect(server.port);
      try {
        const keys = Array.from({ length: 12000 }, (_, i) => `never-${counter}-${i}`);
        expect(errorText(await within(reader.send(["BLPOP", ...keys, "0"]), 10000))).toStartWith("BUSFULL");
        expect(await within(reader.send(["PING"]))).toBe("PONG");
        const topics = Array.from({ length: 50 }, () => fresh("after"));
        for (const topic of topics) expect(await resp.send(["PUT", topic, "x"])).toBe(1);
      } finally {
        reader.close();
      }
    });

    test("a BLPOP on 9,000 new keys that times out, and one that disconnects, give every topic back", async () => {
      const first = await Resp.connect(server.port);
      const keys = (tag: string) => Array.from({ length: 9000 }, (_, i) => `${tag}-${counter}-${i}`);
      expect(await within(first.send(["BLPOP", ...keys("timed"), "0.2"]), 10000)).toBeNull();
      const second = await Resp.connect(server.port);
      void second.send(["BLPOP", ...keys("left"), "0"]);
      await waitFor(async () => ((await resp.send(["TOPICS"])) as unknown[]).length >= 9000, { what: "the BLPOP to wait" });
      second.close();
      await waitFor(async () => ((await resp.send(["TOPICS"])) as unknown[]).length < 1000, { what: "the topics to be let go" });
      const topics = Array.from({ length: 5000 }, () => fresh("room"));
      const ids = await Promise.all(topics.map((topic) => first.send(["PUT", topic, "x"])));
      expect(ids.every((id) => id === 1)).toBe(true);
      expect(await first.send(["DEL", ...topics])).toBe(5000);
      first.close();
    });
  });

  describe("deleting a topic", () => {
    test("DEL removes topics with their messages (a leased one too) and counts them; ids do not restart", async () => {
      const topic = fresh("del");
      await resp.putAll(topic, [text("a"), text("b")]);
      const frame = (await resp.send(["GET", topic, "LEASE", "30s"])) as [string, string, Uint8Array, number];
      expect(await resp.send(["DEL", topic, fresh("nothing")])).toBe(1);
      expect(await resp.send(["LLEN", topic])).toBe(0);
      expect(errorText(await resp.send(["ACK", topic, frame[3]]))).toStartWith("NOLEASE");
      expect(errorText(await resp.send(["STATS", topic]))).toStartWith("NOTFOUND");
      expect(await resp.send(["PUT", topic, "c"])).toBe(3);
    });

    test("RM deletes one topic and says how many messages went; NOTFOUND when there is none; refused while subscribed", async () => {
      const topic = fresh("rm");
      await resp.putAll(topic, [text("a"), text("b"), text("c")]);
      expect(await resp.send(["RM", topic])).toBe(3);
      expect(errorText(await resp.send(["RM", topic]))).toStartWith("NOTFOUND");
      const watcher = await Resp.connect(server.port);
      try {
        await watcher.send(["SUBSCRIBE", topic]);
        expect(errorText(await resp.send(["DEL", topic]))).toContain("in use");
      } finally {
        watcher.close();
      }
    });

    test("HTTP DELETE /{topic} deletes the topic: 404 afterwards, and its ids go on", async () => {
      const base = server.httpUrl;
      const topic = fresh("http-del");
      await resp.putAll(topic, [text("a"), text("b")]);
      const deleted = await fetch(`${base}/${topic}`, { method: "DELETE" });
      expect(await deleted.json()).toEqual({ topic, deleted: true, dropped: 2 });
      expect((await fetch(`${base}/_/topics/${topic}`)).status).toBe(404);
      const again = await fetch(`${base}/${topic}`, { method: "DELETE" });
      expect(again.status).toBe(404);
      expect(((await again.json()) as { code: string }).code).toBe("NOT_FOUND");
      expect(((await (await fetch(`${base}/${topic}`, { method: "POST", body: "c" })).json()) as { id: number }).id).toBe(3);
    });
  });

  describe("leases and delays have a ceiling", () => {
    test("RESP: GET … LEASE inf or 99999999999, ON … LEASE 13h and NACK … DELAY 99999999999 are refused, nothing is lost", async () => {
      const topic = fresh("ceiling");
      await resp.putAll(topic, [text("x")]);
      expect(errorText(await resp.send(["GET", topic, "LEASE", "inf"]))).toStartWith("ERR");
      expect(errorText(await resp.send(["GET", topic, "LEASE", "99999999999"]))).toContain("longer than the maximum");
      expect(await resp.send(["LLEN", topic])).toBe(1);
      const consumer = await Resp.connect(server.port);
      try {
        expect(errorText(await consumer.send(["ON", topic, "LEASE", "13h"]))).toContain("longer than the maximum");
      } finally {
        consumer.close();
      }
      const frame = (await resp.send(["GET", topic, "LEASE", "30s"])) as [string, string, Uint8Array, number];
      expect(errorText(await resp.send(["NACK", topic, frame[3], "DELAY", "99999999999"]))).toContain("longer than the maximum");
      expect(await resp.send(["ACK", topic, frame[3]])).toBe("OK");
    });

    test("HTTP: ?lease= and ?delay= past the maximum are 400 with a clear message", async () => {
      const base = server.httpUrl;
      const topic = fresh("ceiling-http");
      await resp.putAll(topic, [text("x")]);
      for (const lease of ["99999999999", "13h"]) {
        const refused = await fetch(`${base}/${topic}?lease=${lease}`);
        expect(refused.status).toBe(400);
        expect(((await refused.json()) as { error: string }).error).toContain("longer than the maximum");
      }
      const taken = await fetch(`${base}/${topic}?lease=30s`);
      const id = taken.headers.get("msgbus-id")!;
      const refused = await fetch(`${base}/${topic}/${id}/nack?delay=99999999999`, { method: "POST" });
      expect(refused.status).toBe(400);
      expect(((await refused.json()) as { error: string }).error).toContain("delay");
      expect((await fetch(`${base}/${topic}/${id}/ack`, { method: "POST" })).status).toBe(200);
    });
  });

  describe("renewing a lease", () => {
    test("TOUCH keeps a message from being redelivered past its original lease", async () => {
      const topic = fresh("touch");
      await resp.putAll(topic, [text("long job")]);
      const frame = (await resp.send(["GET", topic, "LEASE", "1s"])) as RespValue[];
      const id = frame[3] as number;
      const other = await Resp.connect(server.port);
      try {
        const expires = (await resp.send(["TOUCH", topic, id, "LEASE", "4s"])) as number;
        expect(expires).toBeGreaterThan(Date.now() + 2500);
        // Past the original second: nobody else gets it.
        await staysTrue(1800, async () => (await other.send(["GET", topic])) === null);
        expect(await resp.send(["TOUCH", topic, id, "DELIVERY", "1"])).toBeGreaterThan(expires);
        expect(errorText(await resp.send(["TOUCH", topic, id, "DELIVERY", "7"]))).toStartWith("NOLEASE");
        expect(await resp.send(["ACK", topic, id])).toBe("OK");
        expect(errorText(await resp.send(["TOUCH", topic, id]))).toStartWith("NOLEASE");
      } finally {
        other.close();
      }
    });

    test("TOUCH is allowed while consuming with ON", async () => {
      const topic = fresh("touch-on");
      const replies: RespValue[] = [];
      const reader = new RespReader();
      const socket = net.connect(server.port, "127.0.0.1");
      socket.on("data", (chunk: Buffer) => {
        reader.feed(new Uint8Array(chunk));
        for (let item = reader.next(); item; item = reader.next()) replies.push(item.value);
      });
      try {
        await new Promise<void>((resolve) => socket.once("connect", () => resolve()));
        socket.write(encodeCommand(["ON", topic, "LEASE", "1s"]));
        await resp.putAll(topic, [text("job")]);
        await waitFor(() => replies.length >= 2, { what: "OK and the pushed message" });
        socket.write(encodeCommand(["TOUCH", topic, "1", "LEASE", "5s"]));
        await waitFor(() => replies.length >= 3, { what: "the TOUCH reply" });
        expect(replies[0]).toBe("OK");
        expect(typeof replies[2]).toBe("number");
      } finally {
        socket.destroy();
      }
    });

    test("HTTP POST /{topic}/{id}/touch renews the lease and answers the new expiry", async () => {
      const base = server.httpUrl;
      const topic = fresh("touch-http");
      await resp.putAll(topic, [text("job")]);
      const taken = await fetch(`${base}/${topic}?lease=1s`);
      const id = Number(taken.headers.get("msgbus-id"));
      const touched = await fetch(`${base}/${topic}/${id}/touch?lease=4s&delivery=1`, { method: "POST" });
      const body = (await touched.json()) as { id: number; leaseExpires: number };
      expect(body).toMatchObject({ topic, id });
      expect(body.leaseExpires).toBeGreaterThan(Date.now() + 2500);
      await staysTrue(1500, async () => (await fetch(`${base}/${topic}`)).status === 204);
      expect((await fetch(`${base}/${topic}/${id}/touch?lease=99999999999`, { method: "POST" })).status).toBe(400);
      expect((await fetch(`${base}/${topic}/${id}/ack`, { method: "POST" })).status).toBe(200);
      expect((await fetch(`${base}/${topic}/${id}/touch`, { method: "POST" })).status).toBe(404);
    });
  });
});
