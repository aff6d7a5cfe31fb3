// The HTTP door of the compiled binary: writes, takes, long polls, leases, purge, the /_/
// endpoints and every error status, each crossing to the TCP side and back, byte-exact.

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { hasBinary } from "../helpers/binary.ts";
import { runCli, spawnCli } from "../helpers/cli.ts";
import { cleanupAll } from "../helpers/processes.ts";
import { startServer, type TestServer } from "../helpers/server.ts";
import { selfSignedCertificate } from "../helpers/tls.ts";
import { topicStats } from "../helpers/stats.ts";
import { waitFor } from "../helpers/wait.ts";
import { connect } from "../../src/client/client.ts";
import { Resp, randomBytes, rawExchange, statusOf } from "./transports.ts";

const MAX = 65536;
let topicCount = 0;
const fresh = (name: string) => `${name}-${++topicCount}`;
const text = (s: string) => new TextEncoder().encode(s);

afterAll(() => cleanupAll());

describe.skipIf(!hasBinary())("HTTP", () => {
  let server: TestServer;
  let base: string;
  let resp: Resp;

  beforeAll(async () => {
    server = await startServer({ args: ["--max-message-size", String(MAX), "--lease-time", "2s"] });
    base = server.httpUrl;
    resp = await Resp.connect(server.port);
  });
  afterAll(() => resp?.close());

  describe("writing and taking", () => {
    test("a write answers with the message's id, topic and created time", async () => {
      const topic = fresh("jobs");
      const before = Date.now();
      const first = await fetch(`${base}/${topic}`, { method: "POST", body: "hello" });
      expect(first.status).toBe(200);
      const body = (await first.json()) as { id: number; topic: string; created: number };
      expect(body).toMatchObject({ id: 1, topic });
      expect(body.created).toBeGreaterThanOrEqual(before - 1000);
      const second = await fetch(`${base}/${topic}`, { method: "PUT", body: "again" });
      expect(((await second.json()) as { id: number }).id).toBe(2);
    });

    test("a take returns the raw body with id, topic, created and deliveries in headers; 204 when empty", async () => {
      const topic = fresh("jobs");
      await fetch(`${base}/${topic}`, { method: "POST", body: "hello" });
      const taken = await fetch(`${base}/${topic}`);
      expect(taken.status).toBe(200);
      expect(await taken.text()).toBe("hello");
      expect(taken.headers.get("msgbus-id")).toBe("1");
      expect(taken.headers.get("msgbus-topic")).toBe(topic);
      expect(Number(taken.headers.get("msgbus-created"))).toBeGreaterThan(0);
      expect(taken.headers.get("msgbus-deliveries")).toBe("1");
      const empty = await fetch(`${base}/${topic}`);
      expect(empty.status).toBe(204);
      expect(await empty.text()).toBe("");
    });

    test("?json and Accept: application/json give the envelope, base64 with a marker for non-UTF-8", async () => {
      const topic = fresh("env");
      await fetch(`${base}/${topic}`, { method: "POST", body: "héllo" });
      await fetch(`${base}/${topic}`, { method: "POST", body: new Uint8Array([0xff, 0x00, 0xfe]) });
      const one = (await (await fetch(`${base}/${topic}?json`)).json()) as Record<string, unknown>;
      expect(one).toMatchObject({ id: 1, topic, deliveries: 1, payload: "héllo" });
      expect(one.encoding).toBeUndefined();
      const two = (await (await fetch(`${base}/${topic}`, { headers: { accept: "application/json" } })).json()) as Record<string, unknown>;
      expect(two).toMatchObject({ id: 2, payload: Buffer.from([0xff, 0x00, 0xfe]).toString("base64"), encoding: "base64" });
    });

    for (const size of [0, 1, 1000, MAX]) {
      test(`a ${size}-byte binary payload crosses HTTP -> TCP and TCP -> HTTP byte-exact`, async () => {
        const topic = fresh("bytes");
        const payload = randomBytes(size);
        const written = await fetch(`${base}/${topic}`, { method: "POST", body: payload });
        expect(written.status).toBe(200);
        const overTcp = await resp.take(topic);
        expect(Buffer.from(overTcp!.payload).equals(Buffer.from(payload))).toBe(true);
        await resp.putAll(topic, [payload]);
        const overHttp = await fetch(`${base}/${topic}`);
        expect(overHttp.status).toBe(200);
        expect(Buffer.from(await overHttp.arrayBuffer()).equals(Buffer.from(payload))).toBe(true);
      });
    }

    test.skipIf(!Bun.which("curl"))("curl --data-binary writes a file byte-exact and curl takes it back", async () => {
      const dir = mkdtempSync(join(tmpdir(), "msgbus-http-"));
      try {
        const topic = fresh("pics");
        const file = join(dir, "photo.jpg");
        const photo = randomBytes(MAX);
        await Bun.write(file, photo);
        const put = Bun.spawnSync(["curl", "-sS", "--data-binary", `@${file}`, `${base}/${topic}`]);
        expect(JSON.parse(put.stdout.toString())).toMatchObject({ id: 1, topic });
        const get = Bun.spawnSync(["curl", "-sS", "-o", join(dir, "back.jpg"), "-w", "%{http_code}", `${base}/${topic}`]);
        expect(get.stdout.toString()).toBe("200");
        expect(Buffer.from(await Bun.file(join(dir, "back.jpg")).bytes()).equals(Buffer.from(photo))).toBe(true);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });

    test("a chunked body (no Content-Length) is written whole", async () => {
      const topic = fresh("chunked");
      const payload = randomBytes(50000);
      const body = new ReadableStream({
        start(c) {
          for (let i = 0; i < payload.length; i += 7000) c.enqueue(payload.slice(i, i + 7000));
          c.close();
        },
      });
      const written = await fetch(`${base}/${topic}`, { method: "POST", body });
      expect(written.status).toBe(200);
      const taken = await resp.take(topic);
      expect(Buffer.from(taken!.payload).equals(Buffer.from(payload))).toBe(true);
    });

    test("DELETE ?purge purges the queued messages and says how many; the topic stays", async () => {
      const topic = fresh("purge");
      await resp.putAll(topic, [text("a"), text("b")]);
      const purged = await fetch(`${base}/${topic}?purge`, { method: "DELETE" });
      expect(await purged.json()).toEqual({ topic, purged: 2 });
      expect((await fetch(`${base}/${topic}`)).status).toBe(204);
      expect((await fetch(`${base}/_/topics/${topic}`)).status).toBe(200);
    });
  });

  describe("a request without a Host header (HTTP/1.0, as load-balancer health checks send)", () => {
    /** One HTTP/1.0 request with no Host: the server answers and closes. */
    const hostless = async (method: string, target: string) => {
      const reply = await rawExchange(server.httpPort, [`${method} ${target} HTTP/1.0\r\n\r\n`]);
      const at = reply.indexOf("\r\n\r\n");
      return { status: statusOf(reply), head: reply.slice(0, at).toLowerCase(), body: reply.slice(at + 4) };
    };

    test("GET /_/health answers the health JSON; a message queued in topic health stays", async () => {
      await resp.putAll("health", [text("not for the health check")]);
      const reply = await hostless("GET", "/_/health");
      expect(reply.status).toBe(200);
      expect(JSON.parse(reply.body)).toEqual({ status: "ok" });
      expect(await (await fetch(`${base}/health`)).text()).toBe("not for the health check");
    });

    test("GET /_/topics and /_/topics/{topic} answer the stats; a message queued in topic topics stays", async () => {
      await resp.putAll("topics", [text("kept")]);
      const all = await hostless("GET", "/_/topics");
      expect(all.status).toBe(200);
      expect((JSON.parse(all.body) as { topics: { name: string }[] }).topics.some((t) => t.name === "topics")).toBe(true);
      const one = await hostless("GET", "/_/topics/topics");
      expect(JSON.parse(one.body)).toMatchObject({ name: "topics", depth: 1 });
      expect(await (await fetch(`${base}/topics`)).text()).toBe("kept");
    });

    test("GET /{topic} takes from that topic; POST writes to it; a path with a double slash is no route", async () => {
      const topic = fresh("hostless");
      await resp.putAll(topic, [text("first")]);
      const taken = await hostless("GET", `/${topic}`);
      expect(taken.status).toBe(200);
      expect(taken.head).toContain(`msgbus-topic: ${topic}`);
      expect(taken.body).toBe("first");
      const reply = await rawExchange(server.httpPort, [`POST /${topic}?json HTTP/1.0\r\nContent-Length: 6\r\n\r\nsecond`]);
      expect(statusOf(reply)).toBe(200);
      expect(new TextDecoder().decode((await resp.take(topic))!.payload)).toBe("second");
      // Without a Host, Bun hands over the target as sent: "//x/y" is a path, not a host and a path.
      expect((await hostless("GET", `//${topic}/1/ack`)).status).toBe(404);
    });

    test("an empty or malformed Host header routes on the path alone too", async () => {
      const topic = fresh("badhost");
      await resp.putAll(topic, [text("stays")]);
      for (const host of ["Host: \r\n", "Host: a b\r\n"]) {
        const reply = await rawExchange(server.httpPort, [`GET /x/${topic} HTTP/1.1\r\n${host}Connection: close\r\n\r\n`]);
        expect(statusOf(reply)).not.toBe(200);
        const health = await rawExchange(server.httpPort, [`GET /_/health HTTP/1.1\r\n${host}Connection: close\r\n\r\n`]);
        expect(statusOf(health)).toBe(200);
      }
      expect(await (await fetch(`${base}/${topic}`)).text()).toBe("stays");
    });
  });

  describe("long polls", () => {
    test("?wait is woken by a write over TCP", async () => {
      const topic = fresh("wait");
      const started = Date.now();
      const polling = fetch(`${base}/${topic}?wait=30s`);
      await waitFor(async () => ((await (await fetch(`${base}/_/topics/${topic}`)).json()) as { consumers: number }).consumers === 1, {
        what: "the poll to wait",
      });
      await resp.putAll(topic, [text("woken")]);
      const taken = await polling;
      expect(taken.status).toBe(200);
      expect(await taken.text()).toBe("woken");
      expect(Date.now() - started).toBeLessThan(10000);
    });

    test("?wait ends with 204 when the time is up", async () => {
      const started = Date.now();
      const taken = await fetch(`${base}/${fresh("wait")}?wait=300ms`);
      expect(taken.status).toBe(204);
      expect(Date.now() - started).toBeGreaterThanOrEqual(290);
    });

    // The server's HTTP idle timeout (Bun.serve idleTimeout) is 30 s, and Bun checks it every 4 s or
    // so: without `server.timeout(req, 0)` on the poll, Bun resets the connection 30-34 s in
    // (measured: 32 s). Only a wait past that shows the guard; the idle timeout is not a setting yet.
    test("a long poll outlives Bun's idle timeout", async () => {
      const topic = fresh("slow");
      const started = Date.now();
      const late = setTimeout(() => resp.putAll(topic, [text("late")]), 35000);
      try {
        const taken = await fetch(`${base}/${topic}?wait=60s`);
        expect(await taken.text()).toBe("late");
        expect(Date.now() - started).toBeGreaterThanOrEqual(35000);
      } finally {
        clearTimeout(late);
      }
    }, 50000);

    test("a long poll whose client left takes no message", async () => {
      const topic = fresh("left");
      const controller = new AbortController();
      const polling = fetch(`${base}/${topic}?wait=30s`, { signal: controller.signal }).catch(() => "aborted");
      await waitFor(async () => ((await (await fetch(`${base}/_/topics/${topic}`)).json()) as { consumers: number }).consumers === 1, {
        what: "the poll to wait",
      });
      controller.abort();
      expect(await polling).toBe("aborted");
      // A topic nobody wrote is let go when its last reader leaves: 404, or 0 consumers.
      await waitFor(async () => (((await (await fetch(`${base}/_/topics/${topic}`)).json()) as { consumers?: number }).consumers ?? 0) === 0, {
        what: "the poll to leave",
      });
      await resp.putAll(topic, [text("kept")]);
      expect(await (await fetch(`${base}/${topic}`)).text()).toBe("kept");
    });
  });

  describe("limits on waits, leases and delays", () => {
    test("a ?wait=25d long poll (past 2^31-1 ms) is still waiting after 1.5 s, and no TimeoutOverflowWarning is logged", async () => {
      const topic = fresh("longwait");
      const controller = new AbortController();
      let answered = false;
      const polling = fetch(`${base}/${topic}?wait=25d`, { signal: controller.signal }).then(
        () => (answered = true),
        () => "aborted",
      );
      await waitFor(async () => ((await (await fetch(`${base}/_/topics/${topic}`)).json()) as { consumers: number }).consumers === 1, {
        what: "the poll to wait",
      });
      await Bun.sleep(1500);
      expect(answered).toBe(false);
      expect(((await (await fetch(`${base}/_/topics/${topic}`)).json()) as { consumers: number }).consumers).toBe(1);
      controller.abort();
      expect(await polling).toBe("aborted");
      expect(server.stderrText()).not.toContain("TimeoutOverflowWarning");
    });

    test("a tiny positive ?wait=0.0004 is a short wait, not forever", async () => {
      const started = Date.now();
      const taken = await fetch(`${base}/${fresh("tiny")}?wait=0.0004`);
      expect(taken.status).toBe(204);
      expect(Date.now() - started).toBeLessThan(2000);
    });

    test("a wait over 365d, a lease or a nack delay over 12h, or an infinite one is 400 and changes nothing", async () => {
      const expect400 = async (r: Promise<Response>, what: string) => {
        const answer = await r;
        expect(answer.status).toBe(400);
        const body = (await answer.json()) as { error: string; code: string };
        expect(body.code).toBe("BAD_REQUEST");
        expect(body.error).toContain(what);
      };
      const never = fresh("never");
      await expect400(fetch(`${base}/${never}?wait=999999d`), "365d");
      expect((await fetch(`${base}/_/topics/${never}`)).status).toBe(404);
      const topic = fresh("limits");
      await resp.putAll(topic, [text("stays")]);
      await expect400(fetch(`${base}/${topic}?wait=366d`), "?wait");
      await expect400(fetch(`${base}/${topic}?lease=13h`), "12h");
      await expect400(fetch(`${base}/${topic}?lease=99999999999999d`), "lease");
      await expect400(fetch(`${base}/${topic}?lease=inf`), "lease");
      await expect400(fetch(`${base}/${topic}?lease=Infinity`), "lease");
      expect(await topicStats(server.port, topic)).toMatchObject({ depth: 1, inflight: 0 });
      expect((await fetch(`${base}/${topic}?lease=12h`)).status).toBe(200);
      await expect400(fetch(`${base}/${topic}/1/nack?delay=13h`, { method: "POST" }), "12h");
      expect(await topicStats(server.port, topic)).toMatchObject({ depth: 0, inflight: 1, delayed: 0 });
      expect((await fetch(`${base}/${topic}/1/nack?delay=12h`, { method: "POST" })).status).toBe(200);
      expect(await topicStats(server.port, topic)).toMatchObject({ depth: 0, inflight: 0, delayed: 1 });
    });
  });

  describe("leases", () => {
    test("?lease hides the message until acked; the ack route removes it", async () => {
      const topic = fresh("lease");
      await resp.putAll(topic, [text("work")]);
      const taken = await fetch(`${base}/${topic}?lease=30s`);
      expect(await taken.text()).toBe("work");
      expect(taken.headers.get("msgbus-id")).toBe("1");
      expect(taken.headers.get("msgbus-deliveries")).toBe("1");
      expect(Number(taken.headers.get("msgbus-lease-expires"))).toBeGreaterThan(Date.now());
      expect((await fetch(`${base}/${topic}`)).status).toBe(204);
      const acked = await fetch(`${base}/${topic}/1/ack?delivery=1`, { method: "POST" });
      expect(await acked.json()).toEqual({ topic, id: 1, acked: true });
      const again = await fetch(`${base}/${topic}/1/ack`, { method: "POST" });
      expect(again.status).toBe(404);
      expect(((await again.json()) as { code: string }).code).toBe("NO_LEASE");
      const stats = (await (await fetch(`${base}/_/topics/${topic}`)).json()) as Record<string, number>;
      expect(stats).toMatchObject({ depth: 0, inflight: 0, acked: 1 });
    });

    test("nack puts the message back with its delivery count raised; ?delay holds it back", async () => {
      const topic = fresh("nack");
      await resp.putAll(topic, [text("retry")]);
      await fetch(`${base}/${topic}?lease=30s`);
      expect((await fetch(`${base}/${topic}/1/nack?delay=400ms&delivery=1`, { method: "POST" })).status).toBe(200);
      expect((await fetch(`${base}/${topic}`)).status).toBe(204);
      const back = await fetch(`${base}/${topic}?wait=5s&lease=30s`);
      expect(back.headers.get("msgbus-deliveries")).toBe("2");
      const stale = await fetch(`${base}/${topic}/1/ack?delivery=1`, { method: "POST" });
      expect(stale.status).toBe(404);
      expect((await fetch(`${base}/${topic}/1/ack?delivery=2`, { method: "POST" })).status).toBe(200);
    });

    test("past ?max-deliveries a nacked message moves to {topic}.dead; taking it shows where it came from", async () => {
      const topic = fresh("dead");
      await resp.putAll(topic, [text("poison")]);
      await fetch(`${base}/${topic}?lease=30s&max-deliveries=1`);
      expect((await fetch(`${base}/${topic}/1/nack`, { method: "POST" })).status).toBe(200);
      expect((await fetch(`${base}/${topic}`)).status).toBe(204);
      const dead = await fetch(`${base}/${topic}.dead`);
      expect(await dead.text()).toBe("poison");
      expect(dead.headers.get("msgbus-origin-topic")).toBe(topic);
      expect(dead.headers.get("msgbus-origin-id")).toBe("1");
      expect(dead.headers.get("msgbus-origin-deliveries")).toBe("1");
    });

    test("an expired lease (bare ?lease takes --lease-time) returns the message to a TCP consumer", async () => {
      const topic = fresh("expire");
      await fetch(`${base}/${topic}`, { method: "POST", body: "again" });
      const taken = await fetch(`${base}/${topic}?lease`);
      expect(await taken.text()).toBe("again");
      const back = await waitFor(() => resp.take(topic), { timeoutMs: 8000, what: "the lease to expire" });
      expect(new TextDecoder().decode(back.payload)).toBe("again");
    });
  });

  describe("server endpoints", () => {
    test("/_/health is ok", async () => {
      const health = await fetch(`${base}/_/health`);
      expect(health.status).toBe(200);
      expect(await health.json()).toEqual({ status: "ok" });
    });

    test("/_/topics reports depth, inflight, bytes, last id, subscribers, consumers, rates and counters", async () => {
      const topic = fresh("stats");
      await resp.putAll(topic, [text("a"), text("b"), text("c")]);
      await fetch(`${base}/${topic}?lease=30s`);
      const sub = new AbortController();
      const sse = await fetch(`${base}/${topic}?sse`, { signal: sub.signal });
      await sse.body!.getReader().read();
      const all = (await (await fetch(`${base}/_/topics`)).json()) as {
        topics: Record<string, unknown>[];
        totals: Record<string, number>;
        connections: Record<string, number>;
      };
      const mine = all.topics.find((t) => t.name === topic)!;
      expect(mine).toMatchObject({ depth: 2, inflight: 1, lastId: 3, subscribers: 1, consumers: 0, published: 3, consumed: 1 });
      expect(mine.bytes as number).toBeGreaterThan(3);
      expect(typeof mine.rateIn).toBe("number");
      expect(all.totals.messagesIn).toBeGreaterThanOrEqual(3);
      expect(all.connections.sse).toBeGreaterThanOrEqual(1);
      sub.abort();
      expect((await fetch(`${base}/_/topics/${fresh("never")}`)).status).toBe(404);
    });

    test("/_/metrics speaks the Prometheus text format with msgbus_ names and topic labels", async () => {
      const topic = fresh("metrics");
      await resp.putAll(topic, [text("x")]);
      const metrics = await fetch(`${base}/_/metrics`);
      expect(metrics.headers.get("content-type")).toStartWith("text/plain; version=0.0.4");
      const body = await metrics.text();
      for (const name of [
        "messages_in_total",
        "messages_out_total",
        "dropped_total",
        "expired_total",
        "redelivered_total",
        "dead_lettered_total",
        "acked_total",
        "bytes_held",
        "slow_consumers_total",
      ]) {
        expect(body).toContain(`# TYPE msgbus_${name} `);
      }
      expect(body).toMatch(/^msgbus_connections\{transport="http"\} \d+$/m);
      expect(body).toMatch(/^msgbus_connections\{transport="tcp"\} [1-9]\d*$/m);
      expect(body).toContain(`msgbus_queue_depth{topic="${topic}"} 1`);
      expect(body).toContain(`msgbus_queue_inflight{topic="${topic}"} 0`);
      for (const line of body.split("\n").filter((l) => l && !l.startsWith("#"))) expect(line).toMatch(/^msgbus_[a-z_]+(\{[a-z]+="[^"]*"\})? -?[\d.e+]+$/);
    });
  });

  describe("errors", () => {
    const expectError = async (response: Response | Promise<Response>, status: number, code: string) => {
      const r = await response;
      expect(r.status).toBe(status);
      const body = (await r.json()) as { error: string; code: string };
      expect(body.code).toBe(code);
      expect(body.error.length).toBeGreaterThan(5);
      return r;
    };

    test("a bad topic name is 400: %2F, a reserved _ name, too long, malformed escapes", async () => {
      await expectError(fetch(`${base}/a%2Fb`, { method: "POST", body: "x" }), 400, "BAD_TOPIC");
      await expectError(fetch(`${base}/_private`), 400, "BAD_TOPIC");
      await expectError(fetch(`${base}/${"x".repeat(129)}`), 400, "BAD_TOPIC");
      await expectError(fetch(`${base}/sp%20ace`), 400, "BAD_TOPIC");
      await expectError(fetch(`${base}/bad%E0%A4%A`), 400, "BAD_REQUEST");
    });

    test("topics . and .. (URL path steps) are refused on every transport, encoded or sent without Host", async () => {
      for (const name of [".", ".."]) {
        const reply = (await resp.send(["PUT", name, "x"])) as { message: string };
        expect(reply.message).toStartWith("BADTOPIC");
        expect(((await resp.send(["GET", name])) as { message: string }).message).toStartWith("BADTOPIC");
      }
      // fetch and Bun (with a Host) remove dot steps, encoded or not: "/%2e%2e" is "/", no route.
      await expectError(fetch(`${base}/%2e%2e`, { method: "POST", body: "x" }), 404, "NOT_FOUND");
      // Without a Host, Bun does not normalise the path: "/.." reaches the router as it was sent.
      for (const request of ["GET /.. HTTP/1.0\r\n\r\n", "GET /. HTTP/1.0\r\n\r\n", "POST /%2e%2e?json HTTP/1.0\r\nContent-Length: 1\r\n\r\nx"]) {
        const reply = await rawExchange(server.httpPort, [request]);
        expect(statusOf(reply)).toBe(400);
        expect(reply).toContain('"code":"BAD_TOPIC"');
      }
      expect(((await (await fetch(`${base}/_/topics`)).json()) as { topics: { name: string }[] }).topics.filter((t) => /^\.+$/.test(t.name))).toEqual([]);
    });

    test("an unknown or malformed parameter is 400, not ignored", async () => {
      await expectError(fetch(`${base}/jobs?wiat=5s`), 400, "BAD_REQUEST");
      await expectError(fetch(`${base}/jobs?wait=soon`), 400, "BAD_REQUEST");
      await expectError(fetch(`${base}/jobs/x/ack`, { method: "POST" }), 400, "BAD_REQUEST");
    });

    test("an unknown route or server endpoint is 404", async () => {
      await expectError(fetch(`${base}/_/x`), 404, "NOT_FOUND");
      await expectError(fetch(`${base}/`), 404, "NOT_FOUND");
      await expectError(fetch(`${base}/a/b`), 404, "NOT_FOUND");
    });

    test("a wrong method is 405 with Allow; HEAD never takes a message", async () => {
      const topic = fresh("method");
      await resp.putAll(topic, [text("kept")]);
      const patch = await expectError(fetch(`${base}/${topic}`, { method: "PATCH" }), 405, "BAD_REQUEST");
      expect(patch.headers.get("allow")).toBe("GET, POST, PUT, DELETE");
      expect((await fetch(`${base}/${topic}`, { method: "HEAD" })).status).toBe(405);
      await expectError(fetch(`${base}/${topic}/1/ack`), 405, "BAD_REQUEST");
      await expectError(fetch(`${base}/_/topics`, { method: "POST" }), 405, "BAD_REQUEST");
      expect(await (await fetch(`${base}/${topic}`)).text()).toBe("kept");
    });

    test("OPTIONS answers 204 with Allow and the CORS preflight headers, taking nothing", async () => {
      const topic = fresh("options");
      await resp.putAll(topic, [text("kept")]);
      for (const [path, allow] of [
        [`/${topic}`, "GET, POST, PUT, DELETE, OPTIONS"],
        [`/${topic}/1/ack`, "POST, OPTIONS"],
        ["/_/topics", "GET, HEAD, OPTIONS"],
        ["/", "GET, HEAD, POST, PUT, DELETE, OPTIONS"],
      ]) {
        const answer = await fetch(`${base}${path}`, {
          method: "OPTIONS",
          headers: { origin: "https://app.example", "access-control-request-method": "POST" },
        });
        expect(answer.status).toBe(204);
        expect(answer.headers.get("allow")).toBe(allow!);
        expect(answer.headers.get("access-control-allow-origin")).toBe("*");
        expect(answer.headers.get("access-control-allow-methods")).toContain("POST");
        expect(answer.headers.get("access-control-allow-headers")).toContain("Authorization");
      }
      expect(await (await fetch(`${base}/${topic}`)).text()).toBe("kept");
    });

    test("OPTIONS * gets Bun's own bare 400 (its parser refuses the asterisk form, as docs/HTTP.md says); the server serves on", async () => {
      const reply = await rawExchange(server.httpPort, ["OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n"]);
      // If this fails with 204, Bun now passes OPTIONS * on: msgbus answers it like OPTIONS /; update docs/HTTP.md.
      expect(statusOf(reply)).toBe(400);
      expect((await fetch(`${base}/_/health`)).status).toBe(200);
    });

    test("a body over --max-message-size is 413 by its Content-Length, before the body is sent", async () => {
      const reply = await rawExchange(server.httpPort, [`POST /${fresh("big")} HTTP/1.1\r\nHost: x\r\nContent-Length: 104857600\r\n\r\n`, "only the start"], {
        done: (t) => t.includes("\r\n\r\n{"),
      });
      expect(statusOf(reply)).toBe(413);
      expect(reply).toContain('"code":"TOO_LARGE"');
      await expectError(fetch(`${base}/${fresh("big")}`, { method: "POST", body: randomBytes(MAX + 1) }), 413, "TOO_LARGE");
    });

    test("a chunked body is refused with 413 as soon as it passes the limit", async () => {
      const topic = fresh("bigchunks");
      const chunk = `${(32768).toString(16)}\r\n${"x".repeat(32768)}\r\n`;
      // Three chunks pass the limit; the body never ends, yet the answer comes.
      const reply = await rawExchange(server.httpPort, [`POST /${topic} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n`, chunk, chunk, chunk], {
        done: (t) => t.includes("\r\n\r\n{"),
      });
      expect(statusOf(reply)).toBe(413);
      expect(reply).toContain('"code":"TOO_LARGE"');
      expect((await fetch(`${base}/_/topics/${topic}`)).status).toBe(404);
    });

    test("a topic full under --overflow reject is 429; the bus's memory budget is 507", async () => {
      const limited = await startServer({ args: ["--overflow", "reject", "--max-queue", "2", "--max-memory", "3000"] });
      try {
        const url = limited.httpUrl;
        for (let i = 0; i < 2; i++) expect((await fetch(`${url}/full`, { method: "POST", body: "x" })).status).toBe(200);
        const full = await expectError(fetch(`${url}/full`, { method: "POST", body: "x" }), 429, "TOPIC_FULL");
        expect(full.headers.get("retry-after")).toBe("1");
        expect((await fetch(`${url}/mem`, { method: "POST", body: "y".repeat(2000) })).status).toBe(200);
        await expectError(fetch(`${url}/mem2`, { method: "POST", body: "z".repeat(1000) }), 507, "BUS_FULL");
      } finally {
        await limited.stop();
      }
    });

    test("with --token: no token or a wrong one is 401; Bearer and ?token= both work; health and preflights need none", async () => {
      const guarded = await startServer({ args: ["--token", "s3cret"] });
      try {
        const url = guarded.httpUrl;
        const missing = await expectError(fetch(`${url}/jobs`, { method: "POST", body: "x" }), 401, "UNAUTHORIZED");
        expect(missing.headers.get("www-authenticate")).toContain("Bearer");
        await expectError(fetch(`${url}/jobs`, { headers: { authorization: "Bearer nope" } }), 401, "UNAUTHORIZED");
        await expectError(fetch(`${url}/jobs?token=nope`), 401, "UNAUTHORIZED");
        await expectError(fetch(`${url}/jobs`, { headers: { authorization: "Basic czNjcmV0" } }), 401, "UNAUTHORIZED");
        await expectError(fetch(`${url}/_/metrics`), 401, "UNAUTHORIZED");
        expect((await fetch(`${url}/jobs`, { method: "POST", body: "x", headers: { authorization: "Bearer s3cret" } })).status).toBe(200);
        expect(await (await fetch(`${url}/jobs?token=s3cret`)).text()).toBe("x");
        expect((await fetch(`${url}/_/health`)).status).toBe(200);
        // A browser's preflight never carries credentials.
        expect((await fetch(`${url}/jobs`, { method: "OPTIONS" })).status).toBe(204);
      } finally {
        await guarded.stop();
      }
    });

    test("a refused write leaves nothing behind: after 401, 400, 413 and 405 the topic does not exist and the first good write is id 1", async () => {
      const guarded = await startServer({ args: ["--token", "s3cret", "--max-message-size", "1000"] });
      try {
        const url = guarded.httpUrl;
        const auth = { authorization: "Bearer s3cret" };
        const refusals: [Promise<Response>, number][] = [
          [fetch(`${url}/kept`, { method: "POST", body: "x" }), 401],
          [fetch(`${url}/kept?token=wrong`, { method: "PUT", body: "x" }), 401],
          [fetch(`${url}/kept?bogus=1`, { method: "POST", body: "x", headers: auth }), 400],
          [fetch(`${url}/kept?wait=1s`, { method: "POST", body: "x", headers: auth }), 400],
          [fetch(`${url}/kept`, { method: "POST", body: "y".repeat(1001), headers: auth }), 413],
          [fetch(`${url}/kept`, { method: "PATCH", body: "x", headers: auth }), 405],
          [fetch(`${url}/kept/1/nack?delay=13h`, { method: "POST", headers: auth }), 400],
          [fetch(`${url}/kept?lease=13h`, { headers: auth }), 400],
          [fetch(`${url}/kept?since=x`, { headers: { ...auth, accept: "text/event-stream" } }), 400],
        ];
        for (const [answer, status] of refusals) expect((await answer).status).toBe(status);
        const chunked = await rawExchange(
          guarded.httpPort,
          [`POST /kept HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer s3cret\r\nTransfer-Encoding: chunked\r\n\r\n`, `7d0\r\n${"z".repeat(2000)}\r\n`],
          {
            done: (t) => t.includes("\r\n\r\n{"),
          },
        );
        expect(statusOf(chunked)).toBe(413);
        expect((await fetch(`${url}/_/topics/kept`, { headers: auth })).status).toBe(404);
        const totals = ((await (await fetch(`${url}/_/topics`, { headers: auth })).json()) as { totals: { messagesIn: number; topics: number } }).totals;
        expect(totals).toMatchObject({ messagesIn: 0, topics: 0 });
        expect(await (await fetch(`${url}/kept`, { method: "POST", body: "good", headers: auth })).json()).toMatchObject({ id: 1 });
      } finally {
        await guarded.stop();
      }
    });

    test("a long poll in flight when the server stops gets 503; the server exits 0", async () => {
      const stopping = await startServer();
      const polling = fetch(`${stopping.httpUrl}/jobs?wait=60s`);
      await waitFor(async () => ((await (await fetch(`${stopping.httpUrl}/_/topics/jobs`)).json()) as { consumers: number }).consumers === 1, {
        what: "the poll",
      });
      const exit = stopping.stop();
      const answer = await polling;
      expect(answer.status).toBe(503);
      expect(((await answer.json()) as { code: string }).code).toBe("UNAVAILABLE");
      expect(await exit).toBe(0);
    });
  });

  describe("durability and TLS", () => {
    test("with --data, a write answered over HTTP survives kill -9", async () => {
      const dir = mkdtempSync(join(tmpdir(), "msgbus-http-data-"));
      try {
        const first = await startServer({ args: ["--data", dir] });
        const payload = randomBytes(1000);
        expect((await fetch(`${first.httpUrl}/durable`, { method: "POST", body: payload })).status).toBe(200);
        await first.stop("SIGKILL");
        const second = await startServer({ args: ["--data", dir] });
        const back = await fetch(`${second.httpUrl}/durable`);
        expect(Buffer.from(await back.arrayBuffer()).equals(Buffer.from(payload))).toBe(true);
        await second.stop("SIGKILL");
        const third = await startServer({ args: ["--data", dir] });
        expect((await fetch(`${third.httpUrl}/durable`)).status).toBe(204);
        await third.stop();
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });

    test.skipIf(!Bun.which("openssl"))("with --tls-cert and --tls-key the HTTP port speaks HTTPS and WSS", async () => {
      const dir = mkdtempSync(join(tmpdir(), "msgbus-tls-"));
      try {
        selfSignedCertificate(dir);
        const secure = await startServer({ args: ["--tls-cert", join(dir, "cert.pem"), "--tls-key", join(dir, "key.pem")] });
        try {
          const https = `https://127.0.0.1:${secure.httpPort}`;
          const tls = { rejectUnauthorized: false };
          const ws = new WebSocket(`wss://127.0.0.1:${secure.httpPort}/secure`, { tls } as unknown as string[]);
          const frames: string[] = [];
          ws.onmessage = (e) => frames.push(String(e.data));
          await new Promise((resolve, reject) => {
            ws.onopen = resolve;
            ws.onerror = reject;
          });
          const written = await fetch(`${https}/secure`, { method: "POST", body: "over tls", tls } as RequestInit);
          expect(written.status).toBe(200);
          await waitFor(() => frames.length === 1, { what: "the WSS frame" });
          expect(frames).toEqual(["over tls"]);
          ws.close();
          expect(await (await fetch(`${https}/secure`, { tls } as RequestInit)).text()).toBe("over tls");
          expect((await rawExchange(secure.httpPort, ["GET /_/health HTTP/1.1\r\nHost: x\r\n\r\n"], { timeoutMs: 1000 })).startsWith("HTTP/1.1 200")).toBe(
            false,
          );
        } finally {
          await secure.stop();
        }
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });
  });

  describe("clients and the CLI", () => {
    test("connect('http://…') puts, gets with a lease, acks and consumes across transports", async () => {
      const client = await connect(base);
      try {
        const topic = fresh("client");
        const payload = randomBytes(300);
        expect(await client.put(topic, payload)).toEqual({ id: 1, topic });
        expect((await client.putMany(topic, [text("b"), text("c")])).map((r) => r.id)).toEqual([2, 3]);
        const got = await client.get(topic, { lease: 30000 });
        expect(got!.id).toBe(1);
        expect(Buffer.from(got!.payload).equals(Buffer.from(payload))).toBe(true);
        await client.ack(topic, got!.id, got!.deliveries);
        const seen: string[] = [];
        const stream = await client.consume(topic, { prefetch: 2 }, (m) => {
          seen.push(new TextDecoder().decode(m.payload));
          client.ack(topic, m.id);
        });
        await resp.putAll(topic, [text("d")]);
        await waitFor(() => seen.length === 3, { what: "three consumed" });
        expect(seen).toEqual(["b", "c", "d"]);
        stream.close();
        await stream.done;
        expect(await client.get(topic)).toBeNull();
        await expect(client.put("_nope", text("x"))).rejects.toMatchObject({ code: "BAD_TOPIC" });
      } finally {
        await client.close();
      }
    });

    test("a consumer closed over HTTP gives back the messages it still holds", async () => {
      const client = await connect(base);
      const topic = fresh("giveback");
      await resp.putAll(topic, [text("held")]);
      const got: number[] = [];
      const stream = await client.consume(topic, { lease: 60000 }, (m) => got.push(m.id));
      await waitFor(() => got.length === 1, { what: "the message" });
      stream.close();
      await stream.done;
      const back = await resp.take(topic);
      expect(back?.id).toBe(1);
      await client.close();
    });

    test("msgbus on --url http://… runs a handler per message: exit 0 acks, a failure nacks and it comes again", async () => {
      const topic = fresh("on");
      const dir = mkdtempSync(join(tmpdir(), "msgbus-on-"));
      const file = join(dir, "out");
      // Each message fails on its first delivery and succeeds on its second (one write per line:
      // two handlers run at once).
      const on = spawnCli([
        "on",
        "--url",
        base,
        "--concurrency",
        "2",
        topic,
        "--",
        "sh",
        "-c",
        `[ "$MSGBUS_DELIVERY" = 2 ] && printf '%s\\n' "$(cat)" >> ${file}`,
      ]);
      try {
        await resp.putAll(topic, [text("one"), text("two"), text("three")]);
        await waitFor(async () => ((await (await fetch(`${base}/_/topics/${topic}`)).json()) as { acked: number }).acked === 3, {
          timeoutMs: 15000,
          what: "three acks",
        });
        const stats = (await (await fetch(`${base}/_/topics/${topic}`)).json()) as Record<string, number>;
        expect(stats).toMatchObject({ depth: 0, inflight: 0, redelivered: 3, acked: 3 });
        expect((await Bun.file(file).text()).split("\n").filter(Boolean).sort()).toEqual(["one", "three", "two"]);
        expect(await on.stop()).toBe(0);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });

    test("msgbus put and get --url http://… cross to TCP", async () => {
      const topic = fresh("cli");
      const put = await runCli(["put", "--url", base, topic, "hi"]);
      expect(put.code).toBe(0);
      const overTcp = await resp.take(topic);
      expect(new TextDecoder().decode(overTcp!.payload)).toBe("hi");
      const payload = randomBytes(2000);
      await resp.putAll(topic, [payload]);
      const get = await runCli(["get", "--url", base, topic]);
      expect(get.code).toBe(0);
      expect(Buffer.from(get.stdout).equals(Buffer.from(payload))).toBe(true);
      const empty = await runCli(["get", "--url", base, topic]);
      expect(empty.code).toBe(3);
    });
  });
});
