// The one count of a topic's subscribers and consumers (Topic.subscriberCount, Topic.consumerCount)
// that /_/topics, /_/metrics, STATS and PUBLISH all report.

import { expect, test } from "bun:test";
import { Bus } from "../../src/core/bus.ts";
import type { Consumer, Subscriber } from "../../src/core/topic.ts";

const noop = () => {};

test("a subscriber that fans out itself counts as its readers: a group of three and a plain one are four", () => {
  const bus = new Bus();
  let sockets = 3;
  const group: Subscriber = {
    send: noop,
    get weight() {
      return sockets;
    },
  };
  bus.subscribe("news", group);
  const unsubscribe = bus.subscribe("news", { send: noop });
  expect(bus.subscriberCount("news")).toBe(4);
  expect(bus.topic("news")!.subscriberCount).toBe(4);
  sockets = 1; // two sockets of the group left
  unsubscribe();
  expect(bus.subscriberCount("news")).toBe(1);
  expect(bus.subscriberCount("nobody")).toBe(0);
});

test("a streaming consumer (ON) and a one-shot waiting consumer (blocked GET) are two consumers, not three", () => {
  const bus = new Bus();
  const on: Consumer = { credit: 10, streaming: true, lease: 30000, deliver: noop };
  const get: Consumer = { credit: 1, deliver: noop };
  bus.consume("jobs", on);
  bus.consume("jobs", get);
  const topic = bus.topic("jobs")!;
  expect(topic.waiting.length).toBe(2); // the streaming one waits too: the formula that counted it twice
  expect(topic.consumerCount).toBe(2);
  bus.cancel("jobs", get);
  expect(topic.consumerCount).toBe(1);
});

test("PUBLISH's write (publishReaching) answers the subscribers it reaches, as subscriberCount counts them, and writes as publishBorrowed", () => {
  const bus = new Bus();
  const payload = new TextEncoder().encode("xhellox");
  expect(bus.publishReaching("news", payload, false, 1, 6)).toBe(0); // nobody yet: queued all the same
  const got: string[] = [];
  const group: Subscriber = {
    send: (m) => got.push(new TextDecoder().decode(m.payload)),
    weight: 3,
  };
  bus.subscribe("news", group);
  bus.subscribe("news", { send: noop });
  expect(bus.publishReaching("news", payload, false, 1, 6)).toBe(4);
  expect(got).toEqual(["hello"]);
  expect(bus.depth("news")).toBe(2);
  expect(bus.topic("news")!.lastId).toBe(2);
  expect(() => bus.publishReaching("bad name", payload)).toThrow();
});
