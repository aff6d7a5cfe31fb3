// Subscriber and consumer counts of the compiled binary: /_/metrics, /_/topics, STATS and what
// PUBLISH answers all report the same numbers, whatever transport the readers came by.

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { hasBinary } from "../helpers/binary.ts";
import { spawnCli } from "../helpers/cli.ts";
import { cleanupAll } from "../helpers/processes.ts";
import { startServer, type TestServer } from "../helpers/server.ts";
import { topicStats } from "../helpers/stats.ts";
import { waitFor } from "../helpers/wait.ts";
import { Resp, SseReader, WsCollector } from "./transports.ts";

let topicCount = 0;
const fresh = (name: string) => `${name}-${++topicCount}`;

afterAll(() => cleanupAll());

/** One sample of a per-topic gauge in the Prometheus text, or undefined when the topic has none. */
function sample(metrics: string, name: string, topic: string): number | undefined {
  const line = metrics.split("\n").find((l) => l.startsWith(`msgbus_${name}{topic="${topic}"} `));
  return line === undefined ? undefined : Number(line.split(" ")[1]);
}

describe.skipIf(!hasBinary())("counts", () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startServer();
  });

  const topicJson = async (topic: string) => (await (await fetch(`${server.httpUrl}/_/topics/${topic}`)).json()) as { consumers: number; subscribers: number };
  const metrics = async () => await (await fetch(`${server.httpUrl}/_/metrics`)).text();

  test("/_/metrics counts an ON consumer and a blocked GET once each, as /_/topics and STATS do", async () => {
    const topic = fresh("jobs");
    const on = spawnCli(["on", topic], { env: { MSGBUS_URL: server.url } });
    const poll = fetch(`${server.httpUrl}/${topic}?wait=30s`);
    await waitFor(async () => (await topicJson(topic)).consumers === 2, { what: "the ON consumer and the long poll to wait" });
    expect(sample(await metrics(), "consumers", topic)).toBe(2);
    expect((await topicStats(server.port, topic)).consumers).toBe(2);
    // Both leave: every report says 0.
    await on.stop();
    await fetch(`${server.httpUrl}/${topic}`, { method: "POST", body: "for the poll" });
    expect(await (await poll).text()).toBe("for the poll");
    await waitFor(async () => (await topicJson(topic)).consumers === 0, { what: "both consumers to leave" });
    expect(sample(await metrics(), "consumers", topic)).toBe(0);
  });

  test("PUBLISH over TCP answers every subscriber: two WebSockets (one native group), an SSE stream and a TCP SUBSCRIBE", async () => {
    const topic = fresh("news");
    const sockets = [
      await WsCollector.open(`ws://127.0.0.1:${server.httpPort}/${topic}`),
      await WsCollector.open(`ws://127.0.0.1:${server.httpPort}/${topic}`),
    ];
    const sse = await SseReader.open(`${server.httpUrl}/${topic}`);
    const watcher = await Resp.connect(server.port);
    await watcher.send(["SUBSCRIBE", topic]);
    const publisher = await Resp.connect(server.port);
    try {
      expect(await publisher.send(["PUBLISH", topic, "hello"])).toBe(4);
      expect((await topicJson(topic)).subscribers).toBe(4);
      expect(sample(await metrics(), "subscribers", topic)).toBe(4);
      expect((await topicStats(server.port, topic)).subscribers).toBe(4);
      await sockets[0]!.waitForFrames(1);
      sockets[0]!.close();
      await waitFor(async () => (await topicJson(topic)).subscribers === 3, { what: "the socket to leave" });
      expect(await publisher.send(["PUBLISH", topic, "again"])).toBe(3);
    } finally {
      for (const socket of sockets) socket.close();
      sse.close();
      watcher.close();
      publisher.close();
    }
  });
});

describe.skipIf(!hasBinary())("counts without HTTP", () => {
  test("PUBLISH over TCP answers the TCP subscribers when HTTP is off", async () => {
    const server = await startServer({ httpPort: 0 });
    const watchers = [await Resp.connect(server.port), await Resp.connect(server.port)];
    const publisher = await Resp.connect(server.port);
    try {
      for (const watcher of watchers) await watcher.send(["SUBSCRIBE", "news"]);
      expect(await publisher.send(["PUBLISH", "news", "hello"])).toBe(2);
      expect((await topicStats(server.port, "news")).subscribers).toBe(2);
    } finally {
      for (const watcher of watchers) watcher.close();
      publisher.close();
      await server.stop();
    }
  });
});
