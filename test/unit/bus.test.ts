// The engine's behaviour: ids, fan-out, competing consumers, leases, limits, retention, memory
// accounting and the store hooks. Time is an injected clock moved with bus.tick(), never a sleep.

import { describe, expect, test } from "bun:test";
import { Bus, type BusEvents, type BusLimits, type DropReason } from "../../src/core/bus.ts";
import { BusError, type ErrorCode } from "../../src/core/errors.ts";
import { type Message, messageCost, OBJECT_OVERHEAD } from "../../src/core/message.ts";
import type { Consumer, Subscriber } from "../../src/core/topic.ts";
import type { Store, StoredTopic } from "../../src/core/store.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();
const bytes = (text: string) => encoder.encode(text);
const text = (message: Message | undefined) => (message ? decoder.decode(message.payload) : undefined);
const ids = (messages: Iterable<Message>) => [...messages].map((m) => m.id);

const T0 = 1_700_000_000_000;

/** A bus on a clock the test moves: `advance(ms)` moves it and lets the bus see the time pass. */
function setup(limits: Partial<BusLimits> = {}, options: { store?: Store; events?: BusEvents } = {}) {
  const clock = { now: T0 };
  const bus = new Bus({ limits, now: () => clock.now, ...options });
  return {
    bus,
    clock,
    advance(ms: number) {
      clock.now += ms;
      bus.tick(clock.now);
    },
  };
}

function expectBusError(fn: () => unknown, code: ErrorCode): BusError {
  let thrown: unknown;
  try {
    fn();
  } catch (e) {
    thrown = e;
  }
  if (thrown === undefined) throw new Error(`expected a BusError ${code}, nothing was thrown`);
  expect(thrown).toBeInstanceOf(BusError);
  expect((thrown as BusError).code).toBe(code);
  return thrown as BusError;
}

function subscriber(): Subscriber & { got: Message[] } {
  const got: Message[] = [];
  return { got, send: (m) => void got.push(m) };
}

type TestConsumer = Consumer & { got: Message[]; deliveries: number[] };

function consumer(options: { credit?: number; lease?: number; maxDeliveries?: number; streaming?: boolean } = {}): TestConsumer {
  const got: Message[] = [];
  const deliveries: number[] = [];
  return {
    credit: options.credit ?? 1,
    lease: options.lease,
    maxDeliveries: options.maxDeliveries,
    streaming: options.streaming,
    got,
    deliveries,
    deliver(m) {
      got.push(m);
      deliveries.push(m.deliveries);
    },
  };
}

function dropRecorder() {
  const drops: [string, DropReason, number][] = [];
  const dead: [number, string][] = [];
  const events: BusEvents = {
    dropped: (topic, reason, count) => void drops.push([topic, reason, count]),
    deadLettered: (message, deadTopic) => void dead.push([message.id, deadTopic]),
  };
  return { drops, dead, events };
}

/** Every id queued in a topic, head first. */
function queued(bus: Bus, topic: string): number[] {
  const t = bus.topic(topic);
  return t ? ids(t.queue) : [];
}

describe("writing", () => {
  test("ids start at 1 in every topic and strictly increase", () => {
    const { bus } = setup();
    const a = [bus.publish("a", bytes("1")), bus.publish("b", bytes("1")), bus.publish("a", bytes("2"))];
    a.push(bus.publish("a", bytes("3")), bus.publish("b", bytes("2")));
    expect(a.map((m) => `${m.topic}:${m.id}`)).toEqual(["a:1", "b:1", "a:2", "a:3", "b:2"]);
  });

  test("a topic is FIFO: takes return messages in the order they were written", () => {
    const { bus } = setup();
    for (let i = 0; i < 50; i++) bus.publish("q", bytes(`m${i}`));
    const taken: string[] = [];
    for (let m = bus.take("q"); m; m = bus.take("q")) taken.push(text(m)!);
    expect(taken).toEqual(Array.from({ length: 50 }, (_, i) => `m${i}`));
  });

  test("a payload comes back byte-for-byte: every byte value, CR LF, NUL and invalid UTF-8", () => {
    const { bus } = setup();
    const payload = new Uint8Array(512);
    for (let i = 0; i < payload.length; i++) payload[i] = (i * 7) % 256;
    const expected = payload.slice();
    const written = bus.publish("bin", payload);
    expect(written.payload).toEqual(expected);
    expect(bus.take("bin")!.payload).toEqual(expected);
  });

  test("a message records its topic and the server time it was written", () => {
    const { bus, clock } = setup();
    clock.now = T0 + 1234;
    const m = bus.publish("t", bytes("x"));
    expect(m.topic).toBe("t");
    expect(m.created).toBe(T0 + 1234);
    expect(m.deliveries).toBe(0);
    expect(m.origin).toBeUndefined();
  });

  test("ids are never reused once a topic is emptied by takes or by purge", () => {
    const { bus } = setup();
    bus.publish("q", bytes("a"));
    bus.publish("q", bytes("b"));
    bus.take("q");
    bus.take("q");
    expect(bus.publish("q", bytes("c")).id).toBe(3);
    bus.purge("q");
    expect(bus.publish("q", bytes("d")).id).toBe(4);
  });
});

describe("topic names", () => {
  const bad: [string, string][] = [
    ["empty", ""],
    ["129 characters", "a".repeat(129)],
    ["leading underscore", "_internal"],
    ["a space", "two words"],
    ["a leading space", " jobs"],
    ["a slash", "a/b"],
    ["a backslash", "a\\b"],
    ["unicode", "café"],
    ["emoji", "jobs🚀"],
    ["a newline", "jobs\n"],
    ["a NUL", "jobs\0"],
    ["a star", "jobs*"],
    ["only a dot (a URL path step)", "."],
    ["only two dots (a URL path step)", ".."],
  ];

  test.each(bad)("a name with %s is refused with BAD_TOPIC by every entry point", (_, name) => {
    const { bus } = setup();
    const c = consumer();
    expectBusError(() => bus.publish(name, bytes("x")), "BAD_TOPIC");
    expectBusError(() => bus.take(name), "BAD_TOPIC");
    expectBusError(() => bus.subscribe(name, subscriber()), "BAD_TOPIC");
    expectBusError(() => bus.consume(name, c), "BAD_TOPIC");
    expectBusError(() => bus.purge(name), "BAD_TOPIC");
    expectBusError(() => bus.ack(name, 1), "BAD_TOPIC");
    expectBusError(() => bus.nack(name, 1), "BAD_TOPIC");
    expect(bus.topicList()).toEqual([]);
    expect(c.got).toEqual([]);
  });

  test("the BAD_TOPIC message says what is wrong with the name", () => {
    const { bus } = setup();
    expect(expectBusError(() => bus.publish("", bytes("x")), "BAD_TOPIC").message).toContain("empty");
    expect(expectBusError(() => bus.publish("a".repeat(129), bytes("x")), "BAD_TOPIC").message).toContain("128");
    expect(expectBusError(() => bus.publish("_x", bytes("x")), "BAD_TOPIC").message).toContain('"_"');
    expect(expectBusError(() => bus.publish("a b", bytes("x")), "BAD_TOPIC").message).toContain("character");
    expect(expectBusError(() => bus.publish("..", bytes("x")), "BAD_TOPIC").message).toContain("path step");
  });

  test.each([
    ["a", "a"],
    ["A.b_c-d:e", "A.b_c-d:e"],
    ["128 characters", "x".repeat(128)],
    ["0", "0"],
    ["jobs.high", "jobs.high"],
    ["-", "-"],
    [":", ":"],
    ["...", "..."],
    [".hidden", ".hidden"],
    ["a_", "a_"],
  ])("the name %s is accepted", (_, name) => {
    const { bus } = setup();
    expect(bus.publish(name, bytes("x")).topic).toBe(name);
    expect(text(bus.take(name))).toBe("x");
  });

  test("the dead-letter topic of a 128-character topic may be longer than 128 characters", () => {
    const { bus } = setup({ maxDeliveries: 1 });
    const long = "x".repeat(128);
    expect(bus.publish(`${long}.dead`, bytes("direct")).topic).toBe(`${long}.dead`);
    bus.publish(long, bytes("job"));
    const m = bus.take(long, { lease: 1000 })!;
    bus.nack(long, m.id);
    expect(queued(bus, `${long}.dead`)).toEqual([1, 2]);
    expectBusError(() => bus.publish(`${"x".repeat(129)}.dead`, bytes("x")), "BAD_TOPIC");
    expectBusError(() => bus.publish("_x.dead", bytes("x")), "BAD_TOPIC");
  });
});

describe("message size", () => {
  test("a payload of exactly the maximum size and one of 0 bytes are accepted", () => {
    const { bus } = setup({ maxMessageSize: 100 });
    expect(bus.publish("q", new Uint8Array(100)).payload.length).toBe(100);
    expect(bus.publish("q", new Uint8Array(0)).payload.length).toBe(0);
    expect(bus.take("q")!.payload.length).toBe(100);
    expect(bus.take("q")!.payload.length).toBe(0);
  });

  test("a payload one byte over the maximum is TOO_LARGE and uses no id", () => {
    const { bus } = setup({ maxMessageSize: 100 });
    const s = subscriber();
    bus.subscribe("q", s);
    const error = expectBusError(() => bus.publish("q", new Uint8Array(101)), "TOO_LARGE");
    expect(error.message).toContain("101");
    expect(s.got).toEqual([]);
    expect(queued(bus, "q")).toEqual([]);
    expect(bus.publish("q", new Uint8Array(1)).id).toBe(1);
  });
});

describe("subscribers (fan-out)", () => {
  test("every subscriber gets every message, in order", () => {
    const { bus } = setup();
    const subs = [subscriber(), subscriber(), subscriber()];
    for (const s of subs) bus.subscribe("news", s);
    for (let i = 0; i < 20; i++) bus.publish("news", bytes(String(i)));
    for (const s of subs) expect(ids(s.got)).toEqual(Array.from({ length: 20 }, (_, i) => i + 1));
    expect(bus.subscriberCount("news")).toBe(3);
  });

  test("subscribers do not take messages: they stay queued for consumers", () => {
    const { bus } = setup();
    const s = subscriber();
    bus.subscribe("news", s);
    bus.publish("news", bytes("a"));
    expect(ids(s.got)).toEqual([1]);
    expect(text(bus.take("news"))).toBe("a");
  });

  test("a subscriber gets nothing written before it subscribed unless it asks with since", () => {
    const { bus } = setup();
    bus.publish("news", bytes("old"));
    const s = subscriber();
    bus.subscribe("news", s);
    bus.publish("news", bytes("new"));
    expect(s.got.map(text)).toEqual(["new"]);
  });

  test("unsubscribe stops delivery to that subscriber only", () => {
    const { bus } = setup();
    const a = subscriber();
    const b = subscriber();
    const stopA = bus.subscribe("news", a);
    bus.subscribe("news", b);
    bus.publish("news", bytes("1"));
    stopA();
    bus.publish("news", bytes("2"));
    expect(ids(a.got)).toEqual([1]);
    expect(ids(b.got)).toEqual([1, 2]);
    expect(bus.subscriberCount("news")).toBe(1);
  });

  test("subscribe since replays queued messages with a greater id, then continues live: no gap, no duplicate", () => {
    const { bus } = setup();
    for (let i = 1; i <= 5; i++) bus.publish("log", bytes(String(i)));
    bus.take("log"); // id 1 consumed: no longer queued
    const s = subscriber();
    bus.subscribe("log", s, 2);
    expect(ids(s.got)).toEqual([3, 4, 5]);
    bus.publish("log", bytes("6"));
    bus.publish("log", bytes("7"));
    expect(ids(s.got)).toEqual([3, 4, 5, 6, 7]);
  });

  test("subscribe since 0 replays every queued message", () => {
    const { bus } = setup();
    for (let i = 1; i <= 3; i++) bus.publish("log", bytes(String(i)));
    const s = subscriber();
    bus.subscribe("log", s, 0);
    expect(ids(s.got)).toEqual([1, 2, 3]);
  });

  test("subscribe since the last id or beyond replays nothing and then gets live messages", () => {
    const { bus } = setup();
    for (let i = 1; i <= 3; i++) bus.publish("log", bytes(String(i)));
    const s = subscriber();
    bus.subscribe("log", s, 3);
    const later = subscriber();
    bus.subscribe("log", later, 99);
    bus.publish("log", bytes("4"));
    expect(ids(s.got)).toEqual([4]);
    expect(ids(later.got)).toEqual([4]);
  });

  test("subscribe since replays in id order even after a nack reordered the queue", () => {
    const { bus } = setup();
    for (let i = 1; i <= 4; i++) bus.publish("q", bytes(String(i)));
    const one = bus.take("q", { lease: 1000 })!;
    const two = bus.take("q", { lease: 1000 })!;
    bus.nack("q", one.id);
    bus.nack("q", two.id);
    expect(queued(bus, "q")).toEqual([2, 1, 3, 4]);
    const s = subscriber();
    bus.subscribe("q", s, 0);
    expect(ids(s.got)).toEqual([1, 2, 3, 4]);
    bus.publish("q", bytes("5"));
    expect(ids(s.got)).toEqual([1, 2, 3, 4, 5]);
  });
});

describe("consumers", () => {
  test("take on an unknown or empty topic returns undefined", () => {
    const { bus } = setup();
    expect(bus.take("nothing")).toBeUndefined();
    bus.publish("q", bytes("a"));
    bus.take("q");
    expect(bus.take("q")).toBeUndefined();
  });

  test("an at-most-once take removes the message for good", () => {
    const { bus } = setup();
    bus.publish("q", bytes("a"));
    const m = bus.take("q")!;
    expect(m.deliveries).toBe(1);
    expect(bus.topic("q")!.held).toBe(0);
    expect(bus.topic("q")!.leased.size).toBe(0);
    expectBusError(() => bus.ack("q", m.id), "NO_LEASE");
  });

  test("two streaming consumers share messages round-robin, none twice", () => {
    const { bus } = setup();
    const a = consumer({ credit: 1000, streaming: true });
    const b = consumer({ credit: 1000, streaming: true });
    bus.consume("jobs", a);
    bus.consume("jobs", b);
    for (let i = 0; i < 10; i++) bus.publish("jobs", bytes(String(i)));
    expect(ids(a.got)).toEqual([1, 3, 5, 7, 9]);
    expect(ids(b.got)).toEqual([2, 4, 6, 8, 10]);
    expect(queued(bus, "jobs")).toEqual([]);
  });

  test("three consumers with one credit each: each gets one, the rest stays queued", () => {
    const { bus } = setup();
    const cs = [1, 2, 3].map(() => consumer({ credit: 1, streaming: true }));
    for (const c of cs) bus.consume("jobs", c);
    for (let i = 0; i < 5; i++) bus.publish("jobs", bytes(String(i)));
    expect(cs.map((c) => ids(c.got))).toEqual([[1], [2], [3]]);
    expect(queued(bus, "jobs")).toEqual([4, 5]);
    bus.grant("jobs", cs[2]!, 1);
    bus.grant("jobs", cs[0]!, 1);
    expect(cs.map((c) => ids(c.got))).toEqual([[1, 5], [2], [3, 4]]);
  });

  test("competing consumers under load: every message goes to exactly one consumer, fairly", () => {
    const { bus } = setup();
    const cs = [1, 2, 3, 4].map(() => consumer({ credit: 2, streaming: true }));
    for (const c of cs) bus.consume("jobs", c);
    for (let i = 0; i < 400; i++) {
      bus.publish("jobs", bytes(String(i)));
      // Each consumer works at its own pace, giving credit back now and then.
      cs.forEach((c, n) => {
        if (i % (n + 1) === 0) bus.grant("jobs", c, 1);
      });
    }
    for (const c of cs) bus.grant("jobs", c, 1000);
    const all = cs.flatMap((c) => ids(c.got)).sort((x, y) => x - y);
    expect(all).toEqual(Array.from({ length: 400 }, (_, i) => i + 1));
    for (const c of cs) expect(ids(c.got)).toEqual([...ids(c.got)].sort((x, y) => x - y));
  });

  test("a streaming consumer stops at zero credit and continues where it left off after grant", () => {
    const { bus } = setup();
    const c = consumer({ credit: 2, streaming: true });
    bus.consume("jobs", c);
    for (let i = 0; i < 5; i++) bus.publish("jobs", bytes(String(i)));
    expect(ids(c.got)).toEqual([1, 2]);
    expect(c.credit).toBe(0);
    bus.grant("jobs", c, 2);
    expect(ids(c.got)).toEqual([1, 2, 3, 4]);
    expect(queued(bus, "jobs")).toEqual([5]);
  });

  test("a consumer gets already queued messages at once when it registers", () => {
    const { bus } = setup();
    bus.publish("jobs", bytes("a"));
    bus.publish("jobs", bytes("b"));
    const c = consumer({ credit: 10, streaming: true });
    bus.consume("jobs", c);
    expect(c.got.map(text)).toEqual(["a", "b"]);
  });

  test("a one-shot consumer gets exactly one message, then leaves", () => {
    const { bus } = setup();
    const c = consumer({ credit: 1 });
    bus.consume("jobs", c);
    expect(c.got).toEqual([]);
    bus.publish("jobs", bytes("first"));
    bus.publish("jobs", bytes("second"));
    expect(c.got.map(text)).toEqual(["first"]);
    expect(c.credit).toBe(0);
    expect(queued(bus, "jobs")).toEqual([2]);
    expect(bus.topic("jobs")!.waiting.length).toBe(0);
  });

  test("one-shot consumers waiting on an empty topic are served in the order they came", () => {
    const { bus } = setup();
    const first = consumer();
    const second = consumer();
    bus.consume("jobs", first);
    bus.consume("jobs", second);
    bus.publish("jobs", bytes("a"));
    expect(first.got.map(text)).toEqual(["a"]);
    expect(second.got).toEqual([]);
    bus.publish("jobs", bytes("b"));
    expect(second.got.map(text)).toEqual(["b"]);
  });

  test("cancel of a waiting one-shot consumer: the next message stays queued", () => {
    const { bus } = setup();
    const c = consumer();
    bus.consume("jobs", c);
    bus.cancel("jobs", c);
    bus.publish("jobs", bytes("a"));
    expect(c.got).toEqual([]);
    expect(queued(bus, "jobs")).toEqual([1]);
  });

  test("cancel of one waiting consumer leaves the others waiting", () => {
    const { bus } = setup();
    const a = consumer();
    const b = consumer();
    bus.consume("jobs", a);
    bus.consume("jobs", b);
    bus.cancel("jobs", a);
    bus.publish("jobs", bytes("x"));
    expect(a.got).toEqual([]);
    expect(b.got.map(text)).toEqual(["x"]);
  });

  test("a cancelled streaming consumer gets nothing more, even after a grant", () => {
    const { bus } = setup();
    const c = consumer({ credit: 5, streaming: true });
    bus.consume("jobs", c);
    bus.publish("jobs", bytes("a"));
    bus.cancel("jobs", c);
    bus.grant("jobs", c, 5);
    bus.publish("jobs", bytes("b"));
    expect(c.got.map(text)).toEqual(["a"]);
    expect(queued(bus, "jobs")).toEqual([2]);
  });

  test("cancel on an unknown topic is harmless", () => {
    const { bus } = setup();
    bus.cancel("nothing", consumer());
    expect(bus.topicList()).toEqual([]);
  });
});

describe("overflow and memory limits", () => {
  test("maxQueue with drop-oldest drops the oldest, counts the drops and reports them", () => {
    const { drops, events } = dropRecorder();
    const { bus } = setup({ maxQueue: 3 }, { events });
    const s = subscriber();
    bus.subscribe("q", s);
    for (let i = 1; i <= 5; i++) bus.publish("q", bytes(String(i)));
    expect(queued(bus, "q")).toEqual([3, 4, 5]);
    expect(ids(s.got)).toEqual([1, 2, 3, 4, 5]);
    expect(bus.topic("q")!.counters.dropped).toBe(2);
    expect(bus.totals.dropped).toBe(2);
    expect(drops).toEqual([
      ["q", "overflow", 1],
      ["q", "overflow", 1],
    ]);
    expect(bus.bytes).toBe(3 * messageCost(1));
  });

  test("maxQueue with reject throws TOPIC_FULL and leaves the queue, the ids and the subscribers unchanged", () => {
    const { drops, events } = dropRecorder();
    const { bus } = setup({ maxQueue: 3, overflow: "reject" }, { events });
    const s = subscriber();
    bus.subscribe("q", s);
    for (let i = 1; i <= 3; i++) bus.publish("q", bytes(String(i)));
    const before = bus.bytes;
    const error = expectBusError(() => bus.publish("q", bytes("4")), "TOPIC_FULL");
    expect(error.message).toContain("q");
    expect(queued(bus, "q")).toEqual([1, 2, 3]);
    expect(ids(s.got)).toEqual([1, 2, 3]);
    expect(bus.bytes).toBe(before);
    expect(bus.topic("q")!.counters.published).toBe(3);
    expect(drops).toEqual([]);
    bus.take("q");
    expect(bus.publish("q", bytes("4")).id).toBe(4);
  });

  test("leased and delayed messages count against maxQueue", () => {
    const { bus } = setup({ maxQueue: 2, overflow: "reject" });
    bus.publish("q", bytes("1"));
    bus.publish("q", bytes("2"));
    const one = bus.take("q", { lease: 1000 })!;
    const two = bus.take("q", { lease: 1000 })!;
    expectBusError(() => bus.publish("q", bytes("3")), "TOPIC_FULL");
    bus.nack("q", two.id, 5000);
    expectBusError(() => bus.publish("q", bytes("3")), "TOPIC_FULL");
    bus.ack("q", one.id);
    expect(bus.publish("q", bytes("3")).id).toBe(3);
  });

  test("a lent payload may be overwritten after the write: neither the queue nor a subscriber sees the change", () => {
    const { bus } = setup();
    const buffer = bytes("one two");
    const kept: Message[] = [];
    expect(bus.publishBorrowed("q", buffer.subarray(0, 3))).toBe(1);
    bus.subscribe("q", { send: (m) => kept.push(m) });
    expect(bus.publishBorrowed("q", buffer.subarray(4, 7))).toBe(2);
    buffer.fill(120);
    const text = (m: Message | undefined) => new TextDecoder().decode(m!.payload);
    expect(kept.map(text)).toEqual(["two"]);
    expect([text(bus.take("q")), text(bus.take("q"))]).toEqual(["one", "two"]);
    expect(bus.bytes).toBe(0);
  });

  test("a lent range (bytes, start, end) is written as that range only, short or long, packed or not", () => {
    const { bus } = setup();
    const long = "L".repeat(300);
    const buffer = Buffer.from(`[one]${long}|`);
    expect(bus.publishBorrowed("q", buffer, false, 1, 4)).toBe(1); // a byte loop copies it
    expect(bus.publishBorrowed("q", buffer, false, 5, 305)).toBe(2); // a native copy
    const kept: Message[] = [];
    bus.subscribe("q", { send: (m) => kept.push(m) });
    expect(bus.publishBorrowed("q", buffer, false, 1, 4)).toBe(3); // a subscriber: a Message of its own
    buffer.fill(120);
    const text = (m: Message | undefined) => new TextDecoder().decode(m!.payload);
    expect(kept.map(text)).toEqual(["one"]);
    expect([text(bus.take("q")), text(bus.take("q")), text(bus.take("q"))]).toEqual(["one", long, "one"]);
  });

  test("a lent range is checked against --max-message-size by its own length", () => {
    const { bus } = setup({ maxMessageSize: 8 });
    const buffer = new Uint8Array(16);
    expect(bus.publishBorrowed("q", buffer, false, 4, 12)).toBe(1);
    expectBusError(() => bus.publishBorrowed("q", buffer, false, 3, 12), "TOO_LARGE");
  });

  test("a lent payload in a Buffer (what sockets deliver, whose slice() is a view) is copied too", () => {
    const { bus } = setup();
    const buffer = Buffer.from("one two");
    const kept: Message[] = [];
    bus.subscribe("q", { send: (m) => kept.push(m) });
    expect(bus.publishBorrowed("q", buffer.subarray(4, 7))).toBe(1);
    buffer.fill(120);
    expect(new TextDecoder().decode(kept[0]!.payload)).toBe("two");
    expect(kept[0]!.payload.buffer).not.toBe(buffer.buffer);
  });

  test("drop-oldest that cannot make room puts the messages it tried back, bytes intact, though the queue is written again", () => {
    const { bus } = setup({ maxQueueBytes: messageCost(3) * 3 });
    for (const text of ["aaa", "bbb", "ccc"]) bus.publish("q", bytes(text));
    expectBusError(() => bus.publish("q", new Uint8Array(messageCost(3) * 3)), "TOPIC_FULL");
    bus.take("q");
    bus.publish("q", bytes("ddd"));
    const left = [bus.take("q"), bus.take("q"), bus.take("q")].map((m) => new TextDecoder().decode(m!.payload));
    expect(left).toEqual(["bbb", "ccc", "ddd"]);
  });

  test("drop-oldest cannot drop leased messages: a topic full of leases refuses the write", () => {
    const { bus } = setup({ maxQueue: 2 });
    bus.publish("q", bytes("1"));
    bus.publish("q", bytes("2"));
    bus.take("q", { lease: 1000 });
    bus.take("q", { lease: 1000 });
    expectBusError(() => bus.publish("q", bytes("3")), "TOPIC_FULL");
    expect(bus.topic("q")!.leased.size).toBe(2);
  });

  test("maxQueueBytes counts payload plus overhead: exactly full is fine, and drop-oldest drops until the write fits", () => {
    const cost = messageCost(10);
    const { bus } = setup({ maxQueueBytes: 3 * cost });
    for (let i = 1; i <= 3; i++) bus.publish("q", new Uint8Array(10));
    expect(bus.topic("q")!.bytes).toBe(3 * cost);
    expect(bus.topic("q")!.counters.dropped).toBe(0);
    bus.publish("q", new Uint8Array(10));
    expect(queued(bus, "q")).toEqual([2, 3, 4]);
    expect(bus.topic("q")!.counters.dropped).toBe(1);
    bus.publish("q", new Uint8Array(11)); // one byte more than the message it replaces: two must go
    expect(queued(bus, "q")).toEqual([4, 5]);
    expect(bus.topic("q")!.counters.dropped).toBe(3);
    expect(bus.topic("q")!.bytes).toBe(cost + messageCost(11));
  });

  test("maxQueueBytes with reject refuses the write that would go over", () => {
    const cost = messageCost(10);
    const { bus } = setup({ maxQueueBytes: 2 * cost, overflow: "reject" });
    bus.publish("q", new Uint8Array(10));
    expectBusError(() => bus.publish("q", new Uint8Array(11)), "TOPIC_FULL");
    expect(bus.publish("q", new Uint8Array(10)).id).toBe(2);
  });

  test("a message larger than maxQueueBytes is refused without emptying the topic", () => {
    const { drops, events } = dropRecorder();
    const { bus } = setup({ maxQueueBytes: 300, maxMessageSize: 1000 }, { events });
    bus.publish("q", bytes("keep 1"));
    bus.publish("q", bytes("keep 2"));
    expectBusError(() => bus.publish("q", new Uint8Array(500)), "TOPIC_FULL");
    expect(queued(bus, "q")).toEqual([1, 2]);
    expect(bus.topic("q")!.counters.dropped).toBe(0);
    expect(drops).toEqual([]);
    expect(bus.bytes).toBe(messageCost(6) * 2);
  });

  test("maxMemory over every topic: drop-oldest drops from the topic being written", () => {
    const { drops, events } = dropRecorder();
    const cost = messageCost(10);
    const { bus } = setup({ maxMemory: 3 * cost }, { events });
    bus.publish("a", new Uint8Array(10));
    bus.publish("a", new Uint8Array(10));
    bus.publish("b", new Uint8Array(10));
    expect(bus.bytes).toBe(3 * cost);
    bus.publish("b", new Uint8Array(10));
    expect(queued(bus, "a")).toEqual([1, 2]);
    expect(queued(bus, "b")).toEqual([2]);
    expect(drops).toEqual([["b", "memory", 1]]);
    expect(bus.bytes).toBe(3 * cost);
  });

  test("BUS_FULL when the memory budget is used and the written topic has nothing to drop", () => {
    const cost = messageCost(10);
    const { bus } = setup({ maxMemory: 2 * cost });
    bus.publish("a", new Uint8Array(10));
    bus.publish("a", new Uint8Array(10));
    const error = expectBusError(() => bus.publish("b", new Uint8Array(10)), "BUS_FULL");
    expect(error.message).toContain(String(2 * cost));
    expect(queued(bus, "a")).toEqual([1, 2]);
    expect(bus.bytes).toBe(2 * cost);
  });

  test("a write that cannot fit even after dropping keeps the topic's queue as it was", () => {
    const { drops, events } = dropRecorder();
    const cost = messageCost(10);
    const { bus } = setup({ maxMemory: 3 * cost }, { events });
    bus.publish("a", new Uint8Array(10));
    bus.publish("a", new Uint8Array(10));
    bus.publish("b", new Uint8Array(10));
    expectBusError(() => bus.publish("b", new Uint8Array(50)), "BUS_FULL");
    expect(queued(bus, "b")).toEqual([1]);
    expect(bus.topic("b")!.counters.dropped).toBe(0);
    expect(bus.totals.dropped).toBe(0);
    expect(drops).toEqual([]);
    expect(bus.bytes).toBe(3 * cost);
    expect(bus.publish("b", new Uint8Array(10)).id).toBe(2);
  });

  test("maxMemory with reject refuses with BUS_FULL and drops nothing", () => {
    const cost = messageCost(0);
    const { bus } = setup({ maxMemory: 2 * cost, overflow: "reject" });
    bus.publish("a", new Uint8Array(0));
    bus.publish("a", new Uint8Array(0));
    expectBusError(() => bus.publish("a", new Uint8Array(0)), "BUS_FULL");
    expect(queued(bus, "a")).toEqual([1, 2]);
  });

  test("dead-letter topics always drop their oldest, even under reject", () => {
    const { drops, events } = dropRecorder();
    const { bus } = setup({ maxQueue: 2, overflow: "reject", maxDeliveries: 1 }, { events });
    for (let i = 1; i <= 3; i++) {
      bus.publish("jobs", bytes(String(i)));
      const m = bus.take("jobs", { lease: 1000 })!;
      bus.nack("jobs", m.id);
    }
    expect(bus.topic("jobs.dead")!.queue.length).toBe(2);
    expect([...bus.topic("jobs.dead")!.queue].map((m) => m.origin!.id)).toEqual([2, 3]);
    expect(drops).toEqual([["jobs.dead", "overflow", 1]]);
    // The topic itself still rejects.
    bus.publish("jobs", bytes("a"));
    bus.publish("jobs", bytes("b"));
    expectBusError(() => bus.publish("jobs", bytes("c")), "TOPIC_FULL");
  });

  test("maxTopics: a new topic past the limit is BUS_FULL, existing topics keep working", () => {
    const { bus } = setup({ maxTopics: 2 });
    bus.publish("a", bytes("x"));
    bus.subscribe("b", subscriber());
    expectBusError(() => bus.publish("c", bytes("x")), "BUS_FULL");
    expect(bus.publish("a", bytes("y")).id).toBe(2);
    expect(bus.topicList().map((t) => t.name)).toEqual(["a", "b"]);
  });
});

describe("leases (at-least-once)", () => {
  test("a take with a lease hides the message; ack removes it for good", () => {
    const { bus } = setup();
    bus.publish("q", bytes("job"));
    const m = bus.take("q", { lease: 1000 })!;
    expect(text(m)).toBe("job");
    expect(m.deliveries).toBe(1);
    expect(bus.take("q")).toBeUndefined();
    expect(bus.topic("q")!.held).toBe(1);
    bus.ack("q", m.id);
    expect(bus.topic("q")!.held).toBe(0);
    expect(bus.topic("q")!.counters.acked).toBe(1);
    expect(bus.bytes).toBe(0);
  });

  test("acking twice is NO_LEASE the second time", () => {
    const { bus } = setup();
    bus.publish("q", bytes("job"));
    const m = bus.take("q", { lease: 1000 })!;
    bus.ack("q", m.id);
    expectBusError(() => bus.ack("q", m.id), "NO_LEASE");
    expectBusError(() => bus.nack("q", m.id), "NO_LEASE");
  });

  test("ack of a message never leased, or of an unknown topic, is NO_LEASE", () => {
    const { bus } = setup();
    bus.publish("q", bytes("job"));
    expectBusError(() => bus.ack("q", 1), "NO_LEASE");
    expectBusError(() => bus.ack("q", 99), "NO_LEASE");
    expectBusError(() => bus.ack("other", 1), "NO_LEASE");
    expect(queued(bus, "q")).toEqual([1]);
  });

  test("nack returns the message to the head of the queue, and its next delivery counts 2", () => {
    const { bus } = setup();
    bus.publish("q", bytes("first"));
    bus.publish("q", bytes("second"));
    const m = bus.take("q", { lease: 1000 })!;
    bus.nack("q", m.id);
    expect(queued(bus, "q")).toEqual([1, 2]);
    const again = bus.take("q", { lease: 1000 })!;
    expect(again.id).toBe(1);
    expect(again.deliveries).toBe(2);
    expect(bus.topic("q")!.counters.redelivered).toBe(1);
  });

  test("a nacked message goes straight to a consumer that is waiting", () => {
    const { bus } = setup();
    bus.publish("q", bytes("job"));
    const m = bus.take("q", { lease: 1000 })!;
    const c = consumer();
    bus.consume("q", c);
    expect(c.got).toEqual([]);
    bus.nack("q", m.id);
    expect(ids(c.got)).toEqual([1]);
    expect(c.deliveries).toEqual([2]);
  });

  test("nack with a delay holds the message back until tick passes the delay", () => {
    const { bus, advance } = setup();
    bus.publish("q", bytes("job"));
    const m = bus.take("q", { lease: 60_000 })!;
    bus.nack("q", m.id, 500);
    expect(bus.take("q")).toBeUndefined();
    expect(bus.topic("q")!.held).toBe(1);
    expect(bus.topic("q")!.delayed).toBe(1);
    advance(499);
    expect(bus.take("q")).toBeUndefined();
    advance(1);
    expect(bus.topic("q")!.delayed).toBe(0);
    const again = bus.take("q")!;
    expect(again.id).toBe(1);
    expect(again.deliveries).toBe(2);
  });

  test("a delayed nack goes to a waiting consumer when its delay is over", () => {
    const { bus, advance } = setup();
    bus.publish("q", bytes("job"));
    const m = bus.take("q", { lease: 60_000 })!;
    const c = consumer();
    bus.consume("q", c);
    bus.nack("q", m.id, 100);
    expect(c.got).toEqual([]);
    advance(100);
    expect(ids(c.got)).toEqual([1]);
  });

  test("an expired lease puts the message back at the head when tick reaches the expiry", () => {
    const { bus, advance } = setup();
    bus.publish("q", bytes("first"));
    bus.publish("q", bytes("second"));
    bus.take("q", { lease: 1000 });
    advance(999);
    expect(bus.topic("q")!.leased.size).toBe(1);
    expect(queued(bus, "q")).toEqual([2]);
    advance(1);
    expect(bus.topic("q")!.leased.size).toBe(0);
    expect(queued(bus, "q")).toEqual([1, 2]);
    expect(bus.take("q")!.deliveries).toBe(2);
  });

  test("an acked lease does not come back when its time passes", () => {
    const { bus, advance } = setup();
    bus.publish("q", bytes("job"));
    const m = bus.take("q", { lease: 1000 })!;
    bus.ack("q", m.id);
    advance(5000);
    expect(queued(bus, "q")).toEqual([]);
  });

  test("leases that expire at the same tick go back in id order", () => {
    const { bus, advance } = setup();
    for (let i = 1; i <= 5; i++) bus.publish("q", bytes(String(i)));
    for (let i = 1; i <= 4; i++) bus.take("q", { lease: 1000 });
    advance(1000);
    expect(queued(bus, "q")).toEqual([1, 2, 3, 4, 5]);
  });

  test("delayed nacks due at the same time go back in id order", () => {
    const { bus, advance } = setup();
    for (let i = 1; i <= 4; i++) bus.publish("q", bytes(String(i)));
    const taken = [1, 2, 3].map(() => bus.take("q", { lease: 60_000 })!);
    for (const m of taken) bus.nack("q", m.id, 200);
    advance(200);
    expect(queued(bus, "q")).toEqual([1, 2, 3, 4]);
  });

  test("after maxDeliveries nacks the message moves to <topic>.dead with its origin and delivery count", () => {
    const { dead, events } = dropRecorder();
    const { bus } = setup({ maxDeliveries: 3 }, { events });
    bus.publish("jobs", bytes("poison"));
    for (let i = 1; i <= 2; i++) {
      const m = bus.take("jobs", { lease: 1000 })!;
      expect(m.deliveries).toBe(i);
      bus.nack("jobs", m.id);
      expect(queued(bus, "jobs")).toEqual([1]);
    }
    const last = bus.take("jobs", { lease: 1000 })!;
    bus.nack("jobs", last.id);
    expect(queued(bus, "jobs")).toEqual([]);
    expect(bus.topic("jobs")!.held).toBe(0);
    const moved = bus.take("jobs.dead")!;
    expect(text(moved)).toBe("poison");
    expect(moved.topic).toBe("jobs.dead");
    expect(moved.origin).toEqual({ topic: "jobs", id: 1, deliveries: 3 });
    expect(moved.deliveries).toBe(1); // a new message of the dead topic: this take is its first
    expect(dead).toEqual([[1, "jobs.dead"]]);
    expect(bus.topic("jobs")!.counters.deadLettered).toBe(1);
    expect(bus.totals.deadLettered).toBe(1);
  });

  test("the dead-lettered message carries the delivery count it had in origin, and starts at 0 in the dead topic", () => {
    const { bus } = setup({ maxDeliveries: 2 });
    bus.publish("jobs", bytes("x"));
    for (let i = 0; i < 2; i++) bus.nack("jobs", bus.take("jobs", { lease: 10 })!.id);
    const t = bus.topic("jobs.dead")!;
    expect([...t.queue].map((m) => [m.deliveries, m.origin?.deliveries])).toEqual([[0, 2]]);
  });

  test("a take's own maxDeliveries overrides the bus default", () => {
    const { bus } = setup({ maxDeliveries: 5 });
    bus.publish("jobs", bytes("x"));
    const m = bus.take("jobs", { lease: 1000, maxDeliveries: 1 })!;
    bus.nack("jobs", m.id);
    expect(queued(bus, "jobs")).toEqual([]);
    expect(queued(bus, "jobs.dead")).toEqual([1]);
  });

  test("lease expiries count toward maxDeliveries as well", () => {
    const { bus, advance } = setup({ maxDeliveries: 2 });
    bus.publish("jobs", bytes("x"));
    bus.take("jobs", { lease: 100 });
    advance(100);
    expect(queued(bus, "jobs")).toEqual([1]);
    bus.take("jobs", { lease: 100 });
    advance(100);
    expect(queued(bus, "jobs")).toEqual([]);
    expect(queued(bus, "jobs.dead")).toEqual([1]);
  });

  test("a nack with a delay past maxDeliveries moves the message to the dead topic at once", () => {
    const { bus } = setup({ maxDeliveries: 1 });
    bus.publish("jobs", bytes("x"));
    bus.nack("jobs", bus.take("jobs", { lease: 100 })!.id, 5000);
    expect(bus.topic("jobs")!.delayed).toBe(0);
    expect(queued(bus, "jobs.dead")).toEqual([1]);
  });

  test("a message that cannot move to its dead-letter topic (too many topics) is dropped and counted; tick carries on", () => {
    const { drops, dead, events } = dropRecorder();
    const { bus, advance } = setup({ maxTopics: 1, maxDeliveries: 1 }, { events });
    bus.publish("jobs", bytes("1"));
    bus.publish("jobs", bytes("2"));
    bus.take("jobs", { lease: 100 });
    bus.take("jobs", { lease: 100 });
    expect(() => advance(100)).not.toThrow();
    expect(bus.topic("jobs")!.leased.size).toBe(0);
    expect(bus.topic("jobs")!.held).toBe(0);
    expect(bus.topic("jobs")!.counters.dropped).toBe(2);
    expect(bus.topic("jobs")!.counters.deadLettered).toBe(0);
    expect(drops.reduce((n, [, , count]) => n + count, 0)).toBe(2);
    expect(dead).toEqual([]);
    expect(bus.bytes).toBe(0);
  });

  test("a nack past maxDeliveries whose dead-letter topic cannot take the message still ends the lease", () => {
    const { bus } = setup({ maxTopics: 1, maxDeliveries: 1 });
    bus.publish("jobs", bytes("1"));
    const m = bus.take("jobs", { lease: 1000 })!;
    expect(() => bus.nack("jobs", m.id)).not.toThrow();
    expect(bus.topic("jobs")!.held).toBe(0);
    expect(bus.topic("jobs")!.counters.dropped).toBe(1);
    expectBusError(() => bus.ack("jobs", m.id), "NO_LEASE");
  });

  test("a dead-letter topic full of leased messages drops the newcomer, counted, instead of throwing", () => {
    const { bus } = setup({ maxQueue: 1, maxDeliveries: 1 });
    bus.publish("jobs", bytes("1"));
    bus.nack("jobs", bus.take("jobs", { lease: 1000 })!.id);
    bus.take("jobs.dead", { lease: 1000 }); // the dead topic's one place is now leased
    bus.publish("jobs", bytes("2"));
    expect(() => bus.nack("jobs", bus.take("jobs", { lease: 1000 })!.id)).not.toThrow();
    expect(bus.topic("jobs")!.held).toBe(0);
    expect(bus.topic("jobs")!.counters.dropped).toBe(1);
    expect(bus.topic("jobs.dead")!.held).toBe(1);
  });

  test("an ack naming a stale delivery is refused; the current delivery's ack is accepted", () => {
    const { bus, advance } = setup();
    bus.publish("q", bytes("job"));
    const first = bus.take("q", { lease: 100 })!;
    const firstDelivery = first.deliveries;
    advance(100);
    const second = bus.take("q", { lease: 100 })!;
    expect(second.deliveries).toBe(2);
    expectBusError(() => bus.ack("q", first.id, firstDelivery), "NO_LEASE");
    expectBusError(() => bus.nack("q", first.id, 0, firstDelivery), "NO_LEASE");
    expect(bus.topic("q")!.leased.size).toBe(1);
    bus.ack("q", second.id, 2);
    expect(bus.topic("q")!.held).toBe(0);
  });

  test("a lease of 0 ms still hides the message until the next millisecond", () => {
    const { bus, advance } = setup();
    bus.publish("q", bytes("x"));
    bus.take("q", { lease: 0 });
    advance(0);
    expect(bus.topic("q")!.leased.size).toBe(1);
    advance(1);
    expect(queued(bus, "q")).toEqual([1]);
  });
});

describe("streaming consumers with leases", () => {
  test("with credit 2 it holds at most 2 leases, and gets credit back on ack, nack and expiry", () => {
    const { bus, advance } = setup();
    const leasedAtDelivery: number[] = [];
    const c = consumer({ credit: 2, lease: 1000, streaming: true });
    const deliver = c.deliver.bind(c);
    c.deliver = (m) => {
      leasedAtDelivery.push(bus.topic("q")!.leased.size);
      deliver(m);
    };
    for (let i = 1; i <= 6; i++) bus.publish("q", bytes(String(i)));
    bus.consume("q", c);
    expect(ids(c.got)).toEqual([1, 2]);
    expect(c.credit).toBe(0);
    expect(queued(bus, "q")).toEqual([3, 4, 5, 6]);

    bus.ack("q", 1); // credit back: takes 3
    expect(ids(c.got)).toEqual([1, 2, 3]);
    bus.nack("q", 2); // credit back, and 2 is at the head again: takes 2
    expect(ids(c.got)).toEqual([1, 2, 3, 2]);
    expect(c.deliveries.at(-1)).toBe(2);
    expect(bus.topic("q")!.leased.size).toBe(2);

    advance(1000); // both leases (3 and 2) expire: they come back and are taken again, in id order
    expect(ids(c.got)).toEqual([1, 2, 3, 2, 2, 3]);
    expect(c.deliveries.slice(-2)).toEqual([3, 2]);
    expect(queued(bus, "q")).toEqual([4, 5, 6]);

    expect(Math.max(...leasedAtDelivery)).toBe(2);
    expect(c.credit).toBe(0);
  });

  test("two streaming lease consumers with credit 1 each alternate as they ack", () => {
    const { bus } = setup();
    const a = consumer({ credit: 1, lease: 1000, streaming: true });
    const b = consumer({ credit: 1, lease: 1000, streaming: true });
    bus.consume("q", a);
    bus.consume("q", b);
    for (let i = 1; i <= 4; i++) bus.publish("q", bytes(String(i)));
    expect([ids(a.got), ids(b.got)]).toEqual([[1], [2]]);
    bus.ack("q", 2);
    expect([ids(a.got), ids(b.got)]).toEqual([[1], [2, 3]]);
    bus.ack("q", 1);
    expect([ids(a.got), ids(b.got)]).toEqual([
      [1, 4],
      [2, 3],
    ]);
  });

  test("on cancel its leases go back to the head of the queue in id order, deliveries counted", () => {
    const { bus } = setup();
    for (let i = 1; i <= 4; i++) bus.publish("q", bytes(String(i)));
    const c = consumer({ credit: 3, lease: 60_000, streaming: true });
    bus.consume("q", c);
    expect(ids(c.got)).toEqual([1, 2, 3]);
    bus.cancel("q", c);
    expect(bus.topic("q")!.leased.size).toBe(0);
    expect(queued(bus, "q")).toEqual([1, 2, 3, 4]);
    const again = bus.take("q")!;
    expect(again.id).toBe(1);
    expect(again.deliveries).toBe(2);
    expect(ids(c.got)).toEqual([1, 2, 3]);
  });

  test("on cancel its leases go to another waiting consumer, oldest first", () => {
    const { bus } = setup();
    for (let i = 1; i <= 2; i++) bus.publish("q", bytes(String(i)));
    const a = consumer({ credit: 2, lease: 60_000, streaming: true });
    bus.consume("q", a);
    const b = consumer({ credit: 1 });
    bus.consume("q", b);
    bus.cancel("q", a);
    expect(ids(b.got)).toEqual([1]);
    expect(queued(bus, "q")).toEqual([2]);
  });

  test("a cancelled consumer's acks are refused: its leases went back", () => {
    const { bus } = setup();
    bus.publish("q", bytes("1"));
    const c = consumer({ credit: 1, lease: 60_000, streaming: true });
    bus.consume("q", c);
    bus.cancel("q", c);
    expectBusError(() => bus.ack("q", 1), "NO_LEASE");
  });

  test("on cancel a lease at its last delivery goes to the dead-letter topic", () => {
    const { bus } = setup();
    bus.publish("q", bytes("1"));
    const c = consumer({ credit: 1, lease: 60_000, streaming: true, maxDeliveries: 1 });
    bus.consume("q", c);
    bus.cancel("q", c);
    expect(queued(bus, "q")).toEqual([]);
    expect(queued(bus, "q.dead")).toEqual([1]);
  });

  test("a one-shot consumer with a lease holds it until ack, and gets no more", () => {
    const { bus } = setup();
    bus.publish("q", bytes("1"));
    bus.publish("q", bytes("2"));
    const c = consumer({ credit: 1, lease: 1000 });
    bus.consume("q", c);
    expect(ids(c.got)).toEqual([1]);
    bus.ack("q", 1);
    expect(ids(c.got)).toEqual([1]);
    expect(queued(bus, "q")).toEqual([2]);
  });
});

describe("maximum age", () => {
  test("messages older than maxAge expire on tick, counted as expired and not as dropped", () => {
    const { drops, events } = dropRecorder();
    const { bus, clock, advance } = setup({ maxAge: 1000 }, { events });
    bus.publish("q", bytes("old"));
    clock.now += 500;
    bus.publish("q", bytes("young"));
    advance(500); // the old one is exactly maxAge old: kept
    expect(queued(bus, "q")).toEqual([1, 2]);
    advance(1);
    expect(queued(bus, "q")).toEqual([2]);
    expect(bus.topic("q")!.counters.expired).toBe(1);
    expect(bus.topic("q")!.counters.dropped).toBe(0);
    expect(bus.totals.expired).toBe(1);
    expect(bus.totals.dropped).toBe(0);
    expect(drops).toEqual([["q", "age", 1]]);
    expect(bus.bytes).toBe(messageCost(5));
  });

  test("take never returns an expired message, even before a tick", () => {
    const { bus, clock } = setup({ maxAge: 1000 });
    bus.publish("q", bytes("old"));
    clock.now += 1001;
    expect(bus.take("q")).toBeUndefined();
    expect(bus.topic("q")!.counters.expired).toBe(1);
  });

  test("a consumer never gets an expired message", () => {
    const { bus, clock } = setup({ maxAge: 1000 });
    bus.publish("q", bytes("old"));
    clock.now += 1001;
    bus.publish("q", bytes("new"));
    const c = consumer();
    bus.consume("q", c);
    expect(c.got.map(text)).toEqual(["new"]);
  });

  test("maxAge 0 keeps messages however old", () => {
    const { bus, advance } = setup({ maxAge: 0 });
    bus.publish("q", bytes("x"));
    advance(365 * 24 * 3600 * 1000);
    expect(queued(bus, "q")).toEqual([1]);
  });
});

describe("purge", () => {
  test("purge drops every queued message and returns how many; leased ones stay until acked", () => {
    const { drops, events } = dropRecorder();
    const { bus } = setup({}, { events });
    for (let i = 1; i <= 3; i++) bus.publish("q", bytes(String(i)));
    const leased = bus.take("q", { lease: 1000 })!;
    expect(bus.purge("q")).toBe(2);
    expect(queued(bus, "q")).toEqual([]);
    expect(bus.topic("q")!.leased.size).toBe(1);
    expect(bus.topic("q")!.counters.dropped).toBe(2);
    expect(drops).toEqual([["q", "purge", 2]]);
    expect(bus.bytes).toBe(messageCost(1) + OBJECT_OVERHEAD);
    bus.ack("q", leased.id);
    expect(bus.bytes).toBe(0);
  });

  test("purge of an unknown or empty topic returns 0 and reports nothing", () => {
    const { drops, events } = dropRecorder();
    const { bus } = setup({}, { events });
    expect(bus.purge("nothing")).toBe(0);
    bus.publish("q", bytes("x"));
    bus.take("q");
    expect(bus.purge("q")).toBe(0);
    expect(drops).toEqual([]);
  });
});

describe("counters, totals and rates", () => {
  test("counters and totals follow writes, takes, redeliveries, acks and dead letters", () => {
    const { bus } = setup({ maxDeliveries: 2 });
    bus.publish("q", bytes("aa"));
    bus.publish("q", bytes("bbb"));
    bus.publish("q", bytes("c"));
    bus.take("q"); // 1, at most once
    const two = bus.take("q", { lease: 1000 })!;
    bus.nack("q", two.id);
    bus.ack("q", bus.take("q", { lease: 1000 })!.id); // 2 again, acked
    const three = bus.take("q", { lease: 1000 })!;
    bus.nack("q", three.id);
    bus.nack("q", bus.take("q", { lease: 1000 })!.id); // 3 dead-lettered on its 2nd delivery

    const c = bus.topic("q")!.counters;
    expect(c).toEqual({
      published: 3,
      consumed: 5,
      acked: 1,
      redelivered: 2,
      dropped: 0,
      expired: 0,
      deadLettered: 1,
      bytesIn: 6,
    });
    expect(bus.topic("q.dead")!.counters.published).toBe(1);
    expect(bus.totals).toEqual({
      messagesIn: 4, // the dead letter is written to q.dead
      messagesOut: 5,
      dropped: 0,
      expired: 0,
      redelivered: 2,
      deadLettered: 1,
      acked: 1,
    });
  });

  test("rates are messages per second over the last window of at least a second", () => {
    const { bus, advance } = setup();
    for (let i = 0; i < 10; i++) bus.publish("q", bytes("x"));
    for (let i = 0; i < 4; i++) bus.take("q");
    advance(500);
    expect(bus.topic("q")!.rateIn).toBe(0);
    advance(1500);
    expect(bus.topic("q")!.rateIn).toBe(5);
    expect(bus.topic("q")!.rateOut).toBe(2);
    advance(1000);
    expect(bus.topic("q")!.rateIn).toBe(0);
  });
});

describe("memory accounting", () => {
  test("bus.bytes counts payload plus overhead of every message held, leased and delayed included", () => {
    const { bus } = setup();
    bus.publish("a", new Uint8Array(100));
    bus.publish("b", new Uint8Array(0));
    bus.publish("b", new Uint8Array(7));
    const all = messageCost(100) + messageCost(0) + messageCost(7);
    expect(bus.bytes).toBe(all);
    // Leased, then delayed, then back at the head of its queue: an object all along, charged as one.
    const leased = bus.take("b", { lease: 1000 })!;
    expect(bus.bytes).toBe(all + OBJECT_OVERHEAD);
    bus.nack("b", leased.id, 1000);
    expect(bus.bytes).toBe(all + OBJECT_OVERHEAD);
    expect(bus.topic("b")!.bytes).toBe(messageCost(0) + messageCost(7) + OBJECT_OVERHEAD);
    bus.tick(Date.now() + 2000);
    expect(bus.topic("b")!.delayed).toBe(0);
    expect(bus.bytes).toBe(all + OBJECT_OVERHEAD);
    // Taken for good (no lease): the object charge goes with it.
    expect(bus.take("b")!.id).toBe(leased.id);
    expect(bus.bytes).toBe(messageCost(100) + messageCost(7));
  });

  test("a payload too large to pack is an object in the queue, charged as one", () => {
    const { bus } = setup();
    bus.publish("q", new Uint8Array(10000));
    expect(bus.bytes).toBe(messageCost(10000) + OBJECT_OVERHEAD);
    bus.take("q");
    expect(bus.bytes).toBe(0);
  });

  test("bus.bytes returns to 0 after everything is consumed, acked, purged, dropped, expired or dead-lettered then consumed", () => {
    const { bus, clock, advance } = setup({ maxAge: 10_000, maxQueue: 2, maxDeliveries: 1 });
    for (const topic of ["taken", "acked", "purged", "dropped", "expired", "dead", "delayed"]) {
      bus.publish(topic, new Uint8Array(33));
      bus.publish(topic, new Uint8Array(0));
    }
    bus.publish("dropped", new Uint8Array(5)); // drops the oldest
    expect(bus.bytes).toBeGreaterThan(0);

    while (bus.take("taken"));
    for (let m = bus.take("acked", { lease: 1000 }); m; m = bus.take("acked", { lease: 1000 })) bus.ack("acked", m.id);
    bus.purge("purged");
    while (bus.take("dropped"));
    for (let m = bus.take("dead", { lease: 1000 }); m; m = bus.take("dead", { lease: 1000 })) bus.nack("dead", m.id);
    while (bus.take("dead.dead"));
    for (let m = bus.take("delayed", { lease: 1000, maxDeliveries: 5 }); m; m = bus.take("delayed", { lease: 1000, maxDeliveries: 5 })) {
      bus.nack("delayed", m.id, 100);
    }
    advance(100);
    while (bus.take("delayed"));
    clock.now += 10_001;
    advance(0); // "expired" is now too old

    for (const topic of bus.topicList()) expect([topic.name, topic.bytes]).toEqual([topic.name, 0]);
    expect(bus.bytes).toBe(0);
  });

  test("bus.bytes does not grow when a leased message moves to its dead-letter topic (an object there too)", () => {
    const { bus } = setup({ maxDeliveries: 1 });
    bus.publish("jobs", new Uint8Array(50));
    expect(bus.bytes).toBe(messageCost(50));
    const leased = bus.take("jobs", { lease: 1000 })!;
    const before = bus.bytes;
    expect(before).toBe(messageCost(50) + OBJECT_OVERHEAD);
    bus.nack("jobs", leased.id);
    expect(bus.bytes).toBe(before);
    expect(bus.topic("jobs")!.bytes).toBe(0);
    expect(bus.topic("jobs.dead")!.bytes).toBe(before); // a dead letter (it has an origin) is an external entry
  });
});

class RecordingStore implements Store {
  readonly calls: string[] = [];
  constructor(private readonly stored: StoredTopic[] = []) {}
  load(): StoredTopic[] {
    this.calls.push("load");
    return this.stored;
  }
  added(message: Message): void {
    this.calls.push(`added ${message.topic} ${message.id}`);
  }
  removed(topic: string, id: number): void {
    this.calls.push(`removed ${topic} ${id}`);
  }
  delivered(message: Message): void {
    this.calls.push(`delivered ${message.topic} ${message.id} ${message.deliveries}`);
  }
  purged(topic: string): void {
    this.calls.push(`purged ${topic}`);
  }
  deleted(topic: string): void {
    this.calls.push(`deleted ${topic}`);
  }
  flush(): null {
    return null;
  }
  close(): void {}
}

function stored(topic: string, id: number, payload: string, deliveries = 0): Message {
  return { id, topic, created: T0 - 1000, payload: bytes(payload), deliveries };
}

describe("the store", () => {
  test("the store hears about every write, lease, removal and purge, in order", () => {
    const store = new RecordingStore();
    const { bus } = setup({}, { store });
    bus.publish("a", bytes("x"));
    bus.publish("a", bytes("y"));
    bus.take("a");
    const m = bus.take("a", { lease: 1000 })!;
    bus.nack("a", m.id);
    bus.ack("a", bus.take("a", { lease: 1000 })!.id);
    bus.publish("a", bytes("z"));
    bus.purge("a");
    expect(store.calls).toEqual([
      "load",
      "added a 1",
      "added a 2",
      "removed a 1",
      "delivered a 2 1",
      "delivered a 2 2",
      "removed a 2",
      "added a 3",
      "purged a",
    ]);
  });

  test("drops, expiries and dead letters are reported to the store as removals", () => {
    const store = new RecordingStore();
    const { bus, clock } = setup({ maxQueue: 1, maxAge: 1000, maxDeliveries: 1 }, { store });
    bus.publish("old", bytes("1"));
    clock.now += 1001;
    bus.publish("drop", bytes("1"));
    bus.publish("drop", bytes("2"));
    bus.tick(clock.now);
    bus.publish("dead", bytes("1"));
    bus.nack("dead", bus.take("dead", { lease: 1000 })!.id);
    expect(store.calls.slice(1)).toEqual([
      "added old 1",
      "added drop 1",
      "removed drop 1",
      "added drop 2",
      "removed old 1",
      "added dead 1",
      "delivered dead 1 1",
      "removed dead 1",
      "added dead.dead 1",
    ]);
  });

  test("a purge with leased messages reports each purged message instead of the whole topic", () => {
    const store = new RecordingStore();
    const { bus } = setup({}, { store });
    bus.publish("a", bytes("1"));
    bus.publish("a", bytes("2"));
    bus.publish("a", bytes("3"));
    bus.take("a", { lease: 1000 });
    bus.purge("a");
    expect(store.calls.slice(-2)).toEqual(["removed a 2", "removed a 3"]);
    expect(store.calls).not.toContain("purged a");
  });

  test("restore continues ids and queues the stored messages again, the once-leased ones included", () => {
    const store = new RecordingStore([
      { name: "jobs", lastId: 7, messages: [stored("jobs", 5, "was leased", 1), stored("jobs", 6, "queued")] },
      { name: "empty", lastId: 3, messages: [] },
    ]);
    const { bus } = setup({}, { store });
    expect(bus.bytes).toBe(messageCost(10) + messageCost(6));
    expect(queued(bus, "jobs")).toEqual([5, 6]);
    expect(bus.publish("jobs", bytes("new")).id).toBe(8);
    expect(bus.publish("empty", bytes("new")).id).toBe(4);
    const first = bus.take("jobs", { lease: 1000 })!;
    expect([first.id, text(first), first.deliveries]).toEqual([5, "was leased", 2]);
    expect(ids([bus.take("jobs")!, bus.take("jobs")!])).toEqual([6, 8]);
    expect(store.calls[0]).toBe("load");
  });

  test("restored messages go to subscribers that ask with since and to consumers", () => {
    const store = new RecordingStore([{ name: "jobs", lastId: 2, messages: [stored("jobs", 1, "a"), stored("jobs", 2, "b")] }]);
    const { bus } = setup({}, { store });
    const s = subscriber();
    bus.subscribe("jobs", s, 1);
    expect(ids(s.got)).toEqual([2]);
    const c = consumer({ credit: 5, streaming: true });
    bus.consume("jobs", c);
    expect(c.got.map(text)).toEqual(["a", "b"]);
    expect(bus.bytes).toBe(0);
  });
});

describe("dead-letter topics and restore", () => {
  const bytes = (s: string) => new TextEncoder().encode(s);

  test("a dead letter nacked by a consumer of the dead topic stays there with its id", () => {
    const bus = new Bus({ limits: { maxDeliveries: 1 } });
    bus.publish("jobs", bytes("x"));
    const first = bus.take("jobs", { lease: 1000 })!;
    bus.nack("jobs", first.id);
    const dead = bus.take("jobs.dead", { lease: 1000 })!;
    expect(dead.origin).toEqual({ topic: "jobs", id: first.id, deliveries: 1 });
    bus.nack("jobs.dead", dead.id);
    expect(bus.topic("jobs.dead")!.queue.peek()!.id).toBe(dead.id);
    expect(bus.topic("jobs.dead")!.lastId).toBe(1);
    expect(bus.topic("jobs.dead.dead")).toBeUndefined();
  });

  test("restore brings back every stored topic that holds messages even past maxTopics", () => {
    const kept = ["a", "b", "c"].map((name) => ({ name, lastId: 5, messages: [stored(name, 5, "x")] }));
    const store = { load: () => kept, added() {}, removed() {}, delivered() {}, purged() {}, deleted() {}, flush: () => null, close() {} };
    const bus = new Bus({ store, limits: { maxTopics: 2 } });
    expect(bus.topicList().map((t) => t.name)).toEqual(["a", "b", "c"]);
    expect(() => bus.publish("d", bytes("x"))).toThrow("too many topics");
  });

  test("a stored topic with no message left comes back as its last id only: it takes no place, its ids go on", () => {
    const empty = ["a", "b", "c"].map((name) => ({ name, lastId: 5, messages: [] }));
    const store = { load: () => empty, added() {}, removed() {}, delivered() {}, purged() {}, deleted() {}, flush: () => null, close() {} };
    const bus = new Bus({ store, limits: { maxTopics: 2 } });
    expect(bus.topicList()).toEqual([]);
    expect(bus.publish("d", bytes("x")).id).toBe(1);
    expect(bus.publish("a", bytes("x")).id).toBe(6);
  });
});

describe("lease bookkeeping stays bounded", () => {
  test("acking a million leases one by one keeps the expiry heap near the leases held, not the leases ever taken", () => {
    const bus = new Bus({ limits: { maxQueue: 10, defaultLease: 30000 } });
    const payload = new Uint8Array(1);
    for (let i = 0; i < 1_000_000; i++) {
      bus.publish("jobs", payload);
      const m = bus.take("jobs", { lease: 30000 })!;
      bus.ack("jobs", m.id);
    }
    const heapSize = heaps(bus).expiries.size;
    expect(heapSize).toBeLessThanOrEqual(1024 + 2);
    expect(bus.bytes).toBe(0);
  });

  test("nacking (or acking) every lease held lets go of their expiry entries at once, not when the leases would have ended", () => {
    const bus = new Bus({ limits: { maxQueue: 100000 } });
    const payload = new Uint8Array(100);
    for (let i = 0; i < 50000; i++) bus.publish("jobs", payload);
    const ids: number[] = [];
    for (let i = 0; i < 50000; i++) ids.push(bus.take("jobs", { lease: 3600000 })!.id);
    expect(heaps(bus).expiries.size).toBe(50000);
    for (const id of ids.reverse()) bus.nack("jobs", id);
    // The dead Lease objects (about 100 bytes each) are not kept for an hour behind the queue.
    expect(heaps(bus).expiries.size).toBeLessThanOrEqual(1024 + 1);
    expect(bus.depth("jobs")).toBe(50000);
  });

  test("compaction keeps live leases: they still expire and come back", () => {
    let now = 0;
    const bus = new Bus({ now: () => now });
    const payload = new Uint8Array(1);
    bus.publish("keep", payload);
    const held = bus.take("keep", { lease: 1000 })!;
    for (let i = 0; i < 5000; i++) {
      bus.publish("churn", payload);
      bus.ack("churn", bus.take("churn", { lease: 1000 })!.id);
    }
    now = 1001;
    bus.tick(now);
    const back = bus.take("keep")!;
    expect(back.id).toBe(held.id);
    expect(back.deliveries).toBe(2);
  });
});

describe("blocking on several topics is all or nothing", () => {
  test("a consumer on several topics is registered on none when one of them is one topic too many", () => {
    const { bus } = setup({ maxTopics: 2 });
    bus.subscribe("t0", subscriber());
    const c = consumer();
    expectBusError(() => bus.consumeAny(["t0", "brandnew", "other"], c), "BUS_FULL");
    expect(bus.topic("t0")!.consumerCount).toBe(0);
    expect(bus.topicList().map((t) => t.name)).toEqual(["t0"]);
    bus.publish("t0", bytes("x"));
    expect(c.got).toEqual([]);
    expect(queued(bus, "t0")).toEqual([1]);
  });

  test("a bad name or a bad lease anywhere in the list registers nothing", () => {
    const { bus } = setup();
    bus.subscribe("t0", subscriber());
    expectBusError(() => bus.consumeAny(["t0", "bad name"], consumer()), "BAD_TOPIC");
    expectBusError(() => bus.consumeAny(["t0", "t1"], consumer({ lease: Infinity })), "BAD_REQUEST");
    expect(bus.topic("t0")!.consumerCount).toBe(0);
    expect(bus.topic("t1")).toBeUndefined();
  });

  test("a one-shot consumer served while registering waits nowhere afterwards", () => {
    const { bus } = setup();
    bus.subscribe("a", subscriber());
    bus.publish("b", bytes("x"));
    const c = consumer();
    bus.consumeAny(["a", "b", "c"], c);
    expect(c.got.map(text)).toEqual(["x"]);
    expect(bus.topic("a")!.consumerCount).toBe(0);
    expect(bus.topic("c")).toBeUndefined();
    bus.publish("a", bytes("y"));
    expect(queued(bus, "a")).toEqual([1]);
  });

  test("topics named twice count once against maxTopics", () => {
    const { bus } = setup({ maxTopics: 1 });
    const c = consumer();
    bus.consumeAny(["q", "q"], c);
    bus.publish("q", bytes("x"));
    expect(c.got.map(text)).toEqual(["x"]);
  });
});

describe("purge and delayed messages", () => {
  test("purge drops messages nacked with a delay too, counts them, and they never come back", () => {
    const { drops, events } = dropRecorder();
    const { bus, advance } = setup({}, { events });
    bus.publish("q", bytes("delayed"));
    bus.publish("q", bytes("queued"));
    bus.nack("q", bus.take("q", { lease: 1000 })!.id, 5000);
    expect(bus.topic("q")!.delayed).toBe(1);
    expect(bus.purge("q")).toBe(2);
    expect(drops).toEqual([["q", "purge", 2]]);
    expect(bus.topic("q")?.delayed ?? 0).toBe(0);
    expect(bus.bytes).toBe(0);
    advance(10000);
    expect(bus.take("q")).toBeUndefined();
    expect(bus.totals.dropped).toBe(2);
  });

  test("a purge that leaves no lease tells the store the whole topic went", () => {
    const store = new RecordingStore();
    const { bus } = setup({}, { store });
    bus.publish("a", bytes("1"));
    bus.nack("a", bus.take("a", { lease: 1000 })!.id, 5000);
    bus.purge("a");
    expect(store.calls.at(-1)).toBe("purged a");
  });

  test("purging and nacking with delays again and again keeps the delay heap near the messages held", () => {
    const { bus } = setup();
    for (let i = 0; i < 20000; i++) {
      bus.publish("q", bytes("x"));
      bus.nack("q", bus.take("q", { lease: 1000 })!.id, 60000);
      bus.purge("q");
    }
    const heapSize = heaps(bus).releases.size;
    expect(heapSize).toBeLessThanOrEqual(1025);
  });
});

describe("topics live as long as they hold something", () => {
  test("a topic nobody wrote is let go when its last reader or subscriber leaves", () => {
    const { bus } = setup();
    const c = consumer();
    bus.consume("waited", c);
    bus.cancel("waited", c);
    const unsubscribe = bus.subscribe("watched", subscriber());
    expect(bus.topicList().map((t) => t.name)).toEqual(["watched"]);
    unsubscribe();
    expect(bus.topicList()).toEqual([]);
  });

  test("readers of topics nobody writes do not use up maxTopics", () => {
    const { bus } = setup({ maxTopics: 3 });
    for (let i = 0; i < 100; i++) {
      const c = consumer();
      bus.consumeAny([`r${i}a`, `r${i}b`], c);
      bus.cancel(`r${i}a`, c);
      bus.cancel(`r${i}b`, c);
    }
    for (const name of ["w1", "w2", "w3"]) expect(bus.publish(name, bytes("x")).id).toBe(1);
  });

  test("a drained topic stays listed with its counters until a new topic needs its place, and its ids go on", () => {
    const { bus } = setup({ maxTopics: 2 });
    bus.publish("a", bytes("1"));
    bus.take("a");
    bus.publish("b", bytes("1"));
    bus.take("b");
    expect(bus.topic("a")!.counters.consumed).toBe(1);
    bus.publish("c", bytes("1"));
    expect(bus.topicList().map((t) => t.name)).toEqual(["b", "c"]);
    expect(bus.publish("a", bytes("2")).id).toBe(2);
    expect(
      bus
        .topicList()
        .map((t) => t.name)
        .sort(),
    ).toEqual(["a", "c"]);
  });

  test("a topic holding a lease, a delayed message, a subscriber or a consumer counts against maxTopics", () => {
    const { bus } = setup({ maxTopics: 1 });
    bus.publish("a", bytes("1"));
    const leased = bus.take("a", { lease: 1000 })!;
    expectBusError(() => bus.publish("b", bytes("x")), "BUS_FULL");
    bus.nack("a", leased.id, 1000);
    expectBusError(() => bus.publish("b", bytes("x")), "BUS_FULL");
    bus.purge("a");
    const unsubscribe = bus.subscribe("a", subscriber());
    expectBusError(() => bus.publish("b", bytes("x")), "BUS_FULL");
    unsubscribe();
    const c = consumer({ streaming: true });
    bus.consume("a", c);
    expectBusError(() => bus.subscribe("b", subscriber()), "BUS_FULL");
    bus.cancel("a", c);
    expect(bus.publish("b", bytes("x")).id).toBe(1);
    expect(bus.topic("b")).toBeDefined();
  });

  test("a write refused for lack of memory leaves no new topic behind", () => {
    const { bus } = setup({ maxMemory: 200, overflow: "reject" });
    expectBusError(() => bus.publish("big", new Uint8Array(150)), "BUS_FULL");
    expect(bus.topicList()).toEqual([]);
  });

  test("past maxTombstones the oldest last ids are forgotten, yet a forgotten topic never reuses an id", () => {
    const { bus } = setup({ maxTopics: 1, maxTombstones: 2 });
    for (let i = 1; i <= 5; i++) {
      for (let n = 0; n < i * 10; n++) bus.publish(`t${i}`, bytes("x"));
      while (bus.take(`t${i}`));
    }
    // t1 (last id 10) and t2 (20) were forgotten; t3 and t4 are tombstones; t5 is listed.
    expect(bus.publish("t4", bytes("x")).id).toBe(41);
    bus.take("t4");
    expect(bus.publish("t2", bytes("x")).id).toBeGreaterThan(20);
    bus.take("t2");
    expect(bus.publish("t1", bytes("x")).id).toBeGreaterThan(10);
    bus.take("t1");
    expect(bus.publish("brand-new", bytes("x")).id).toBe(1);
  });
});

describe("deleting a topic", () => {
  test("delete drops queued, delayed and leased messages, counts them, and a later ack is NO_LEASE", () => {
    const { drops, events } = dropRecorder();
    const { bus, advance } = setup({}, { events });
    for (let i = 1; i <= 4; i++) bus.publish("q", bytes(String(i)));
    const leased = bus.take("q", { lease: 1000 })!;
    bus.nack("q", bus.take("q", { lease: 1000 })!.id, 1000);
    expect(bus.deleteTopic("q")).toBe(4);
    expect(drops).toEqual([["q", "delete", 4]]);
    expect(bus.totals.dropped).toBe(4);
    expect(bus.topic("q")).toBeUndefined();
    expect(bus.bytes).toBe(0);
    expectBusError(() => bus.ack("q", leased.id), "NO_LEASE");
    advance(5000);
    expect(bus.topic("q")).toBeUndefined();
  });

  test("a deleted topic's ids do not restart", () => {
    const { bus } = setup();
    bus.publish("q", bytes("1"));
    bus.publish("q", bytes("2"));
    bus.deleteTopic("q");
    expect(bus.publish("q", bytes("3")).id).toBe(3);
  });

  test("delete of a topic with subscribers or consumers is refused, and changes nothing", () => {
    const { bus } = setup();
    bus.publish("q", bytes("1"));
    const unsubscribe = bus.subscribe("q", subscriber());
    expect(expectBusError(() => bus.deleteTopic("q"), "BAD_REQUEST").message).toContain("1 subscriber");
    unsubscribe();
    const c = consumer({ streaming: true, lease: 1000 });
    bus.consume("q", c);
    expect(expectBusError(() => bus.deleteTopic("q"), "BAD_REQUEST").message).toContain("1 consumer");
    bus.cancel("q", c);
    expect(queued(bus, "q")).toEqual([1]);
    expect(bus.deleteTopic("q")).toBe(1);
  });

  test("delete of an unknown topic returns undefined; deleteTopics counts the topics that existed", () => {
    const { bus } = setup();
    expect(bus.deleteTopic("nothing")).toBeUndefined();
    bus.publish("a", bytes("1"));
    bus.publish("b", bytes("1"));
    expect(bus.deleteTopics(["a", "b", "c", "a"])).toBe(2);
    expect(bus.topicList()).toEqual([]);
  });

  test("deleteTopics deletes none while any named topic is in use", () => {
    const { bus } = setup();
    bus.publish("a", bytes("1"));
    bus.subscribe("b", subscriber());
    expectBusError(() => bus.deleteTopics(["a", "b"]), "BAD_REQUEST");
    expect(queued(bus, "a")).toEqual([1]);
  });

  test("the store forgets a deleted topic's messages", () => {
    const store = new RecordingStore();
    const { bus } = setup({}, { store });
    bus.publish("a", bytes("1"));
    bus.take("a", { lease: 1000 });
    bus.deleteTopic("a");
    expect(store.calls.at(-1)).toBe("deleted a"); // kept by the store even if its commit fails, unlike a purge;
  });
});

describe("lease and delay limits, and lease renewal", () => {
  const tooLong = [Infinity, NaN, -1, 12 * 3600000 + 1];

  test.each(tooLong)("a take with a lease of %p is BAD_REQUEST and the message stays queued", (lease) => {
    const { bus } = setup();
    bus.publish("q", bytes("x"));
    expect(expectBusError(() => bus.take("q", { lease }), "BAD_REQUEST").message).toContain("lease");
    expect(queued(bus, "q")).toEqual([1]);
  });

  test.each(tooLong)("a consumer with a lease of %p is refused and registered nowhere", (lease) => {
    const { bus } = setup();
    bus.publish("q", bytes("x"));
    const c = consumer({ lease, streaming: true });
    expectBusError(() => bus.consume("q", c), "BAD_REQUEST");
    expect(c.got).toEqual([]);
    expect(bus.topic("q")!.consumerCount).toBe(0);
  });

  test.each(tooLong)("a nack with a delay of %p is BAD_REQUEST and the lease is still held", (delay) => {
    const { bus } = setup();
    bus.publish("q", bytes("x"));
    const m = bus.take("q", { lease: 1000 })!;
    expect(expectBusError(() => bus.nack("q", m.id, delay), "BAD_REQUEST").message).toContain("delay");
    expect(bus.topic("q")!.leased.size).toBe(1);
  });

  test("the longest lease and delay (12h) are accepted", () => {
    const { bus } = setup();
    bus.publish("q", bytes("x"));
    const m = bus.take("q", { lease: 12 * 3600000 })!;
    bus.nack("q", m.id, 12 * 3600000);
    expect(bus.topic("q")!.delayed).toBe(1);
  });

  test("touch renews a lease for its own length and returns the new expiry: no redelivery while renewed", () => {
    const { bus, clock, advance } = setup();
    bus.publish("q", bytes("x"));
    const m = bus.take("q", { lease: 1000 })!;
    for (let i = 0; i < 5; i++) {
      advance(800);
      expect(bus.touch("q", m.id)).toBe(clock.now + 1000);
    }
    expect(bus.topic("q")!.queue.length).toBe(0);
    advance(999);
    expect(bus.topic("q")!.queue.length).toBe(0);
    advance(1);
    expect(queued(bus, "q")).toEqual([m.id]);
  });

  test("touch with a length sets it, also for later renewals", () => {
    const { bus, clock, advance } = setup();
    bus.publish("q", bytes("x"));
    const m = bus.take("q", { lease: 1000 })!;
    expect(bus.touch("q", m.id, 5000)).toBe(clock.now + 5000);
    advance(4000);
    expect(bus.touch("q", m.id)).toBe(clock.now + 5000);
    expect(queued(bus, "q")).toEqual([]);
  });

  test("touch of a message not leased, or naming an older delivery, is NO_LEASE; a too long lease is BAD_REQUEST", () => {
    const { bus, advance } = setup();
    bus.publish("q", bytes("x"));
    expectBusError(() => bus.touch("q", 1), "NO_LEASE");
    bus.take("q", { lease: 1000 });
    advance(1000);
    const again = bus.take("q", { lease: 1000 })!;
    expect(again.deliveries).toBe(2);
    expectBusError(() => bus.touch("q", 1, undefined, 1), "NO_LEASE");
    expectBusError(() => bus.touch("q", 1, Infinity), "BAD_REQUEST");
    expectBusError(() => bus.touch("q", 1, 13 * 3600000), "BAD_REQUEST");
    bus.touch("q", 1, 2000, 2);
  });

  test("renewing one lease a hundred thousand times, longer and shorter, keeps the expiry heap bounded", () => {
    const { bus, clock } = setup();
    bus.publish("q", bytes("x"));
    const m = bus.take("q", { lease: 30000 })!;
    for (let i = 0; i < 100000; i++) {
      clock.now += 1;
      bus.touch("q", m.id, i % 2 === 0 ? 30000 : 20000);
    }
    const heapSize = heaps(bus).expiries.size;
    expect(heapSize).toBeLessThanOrEqual(1027);
  });
});

/** The bus's timer heaps (private), for the tests that bound their size. */
function heaps(bus: Bus): { expiries: { size: number }; releases: { size: number } } {
  return (bus as unknown as { s: { leases: { expiries: { size: number }; releases: { size: number } } } }).s.leases;
}

describe("peek", () => {
  test("peek shows up to count queued messages in id order and changes nothing", () => {
    const { bus } = setup();
    for (const p of ["a", "b", "c", "d"]) bus.publish("jobs", bytes(p));
    expect(bus.peek("jobs", 3).map(text)).toEqual(["a", "b", "c"]);
    expect(ids(bus.peek("jobs", 10, 2))).toEqual([3, 4]);
    expect(queued(bus, "jobs")).toEqual([1, 2, 3, 4]);
    expect(bus.peek("jobs", 1)[0]!.deliveries).toBe(0);
    expect(bus.topic("jobs")!.counters.consumed).toBe(0);
  });

  test("peek sorts messages returned to the head by id, and keeps only the smallest ids past twice the count", () => {
    const { bus } = setup();
    for (let i = 1; i <= 50; i++) bus.publish("jobs", bytes(String(i)));
    const taken = [1, 2, 3].map(() => bus.take("jobs", { lease: 30000 })!);
    for (const m of taken) bus.nack("jobs", m.id); // the queue is 3, 2, 1, 4, ...
    expect(queued(bus, "jobs").slice(0, 4)).toEqual([3, 2, 1, 4]);
    expect(ids(bus.peek("jobs", 4))).toEqual([1, 2, 3, 4]);
    expect(ids(bus.peek("jobs", 2, 1))).toEqual([2, 3]);
  });

  test("peek of an unknown topic is empty and creates no topic; a bad count or name is refused", () => {
    const { bus } = setup();
    expect(bus.peek("nothing", 10)).toEqual([]);
    expect(bus.topic("nothing")).toBeUndefined();
    expectBusError(() => bus.peek("jobs", 0), "BAD_REQUEST");
    expectBusError(() => bus.peek("jobs", 1001), "BAD_REQUEST");
    expectBusError(() => bus.peek("jobs", 1.5), "BAD_REQUEST");
    expectBusError(() => bus.peek("_server", 1), "BAD_TOPIC");
  });
});

describe("takeInto (RPOP's reply straight from the queue)", () => {
  /** Payloads written to the sink, as text. */
  const sinkOf = () => {
    const got: string[] = [];
    return { got, sink: { bulkRange: (b: Uint8Array, start: number, end: number) => void got.push(decoder.decode(b.subarray(start, end))) } };
  };

  /** The same writes, nacks and time on two buses: one takes with take(), the other with takeInto(). */
  function both(store?: () => Store) {
    const a = setup({ maxAge: 1000 }, store ? { store: store() } : {});
    const b = setup({ maxAge: 1000 }, store ? { store: store() } : {});
    return { a, b, each: (fn: (s: ReturnType<typeof setup>) => void) => [a, b].forEach(fn) };
  }

  const state = (bus: Bus) => ({ topic: { ...bus.topic("jobs"), queue: undefined, lastCounted: undefined }, totals: { ...bus.totals }, bytes: bus.bytes });

  for (const kind of ["memory store", "a store that keeps"] as const) {
    test(`counts, memory, redeliveries, expiry and the topic's settling as take() does (${kind})`, () => {
      const store = kind === "memory store" ? undefined : () => new RecordingStore();
      const { a, b, each } = both(store);
      const { got, sink } = sinkOf();
      const taken: string[] = [];
      const takeBoth = () => {
        const m = a.bus.take("jobs");
        if (m) taken.push(decoder.decode(m.payload));
        expect(b.bus.takeInto("jobs", sink)).toBe(m !== undefined);
      };
      each(({ bus }) => {
        bus.publish("jobs", bytes("one"));
        bus.publishBorrowed("jobs", bytes("xtwox"), false, 1, 4);
        bus.publish("jobs", new Uint8Array(9000)); // not packed
      });
      takeBoth();
      // A nacked message is put back at the head: its second take counts a redelivery.
      each(({ bus }) => {
        const leased = bus.take("jobs", { lease: 5000 })!;
        bus.nack("jobs", leased.id);
      });
      takeBoth();
      takeBoth();
      expect(state(b.bus)).toEqual(state(a.bus));
      expect(b.bus.topic("jobs")!.counters.redelivered).toBe(1);
      // Expired before the take: counted as expired, nothing written.
      each(({ bus }) => bus.publish("jobs", bytes("old")));
      each(({ clock }) => (clock.now += 1500));
      takeBoth();
      takeBoth(); // empty
      expect(state(b.bus)).toEqual(state(a.bus));
      expect(b.bus.topic("jobs")!.counters.expired).toBe(1);
      expect(got).toEqual(taken);
      expect(got.slice(0, 2)).toEqual(["one", "two"]);
      if (store) expect((b.bus.store as RecordingStore).calls).toEqual((a.bus.store as RecordingStore).calls);
      // Emptied, the topic goes as it does after take(): only its last id is kept.
      expect(b.bus.topicList().length).toBe(a.bus.topicList().length);
    });
  }

  test("a missing topic is nothing taken; a bad name is BAD_TOPIC", () => {
    const { bus } = setup();
    const { got, sink } = sinkOf();
    expect(bus.takeInto("none", sink)).toBe(false);
    expect(got).toEqual([]);
    expectBusError(() => bus.takeInto("_server", sink), "BAD_TOPIC");
  });
});

describe("pushBorrowed (LPUSH: the write and the depth after)", () => {
  test("returns the depth depth() says: packed, with a subscriber, and after a waiting consumer took the message", () => {
    const { bus } = setup();
    const source = bytes("xhellox");
    expect(bus.pushBorrowed("jobs", source, false, 1, 6)).toBe(1);
    expect(bus.pushBorrowed("jobs", source, false, 1, 6)).toBe(2);
    const seen: string[] = [];
    const unsubscribe = bus.subscribe("jobs", { send: (m) => void seen.push(text(m)!) });
    expect(bus.pushBorrowed("jobs", source, false, 0, 7)).toBe(3); // not packed as lent: a subscriber
    unsubscribe();
    expect(seen).toEqual(["xhellox"]);
    expect(bus.depth("jobs")).toBe(3);
    expect(bus.take("jobs")!.id).toBe(1);
    // A waiting consumer gets the next write at once: the depth stays.
    const fresh = setup().bus;
    const delivered: string[] = [];
    fresh.consume("work", { credit: 1, deliver: (m) => void delivered.push(text(m)!) });
    expect(fresh.pushBorrowed("work", source, false, 1, 6)).toBe(0);
    expect(delivered).toEqual(["hello"]);
    expect(fresh.depth("work")).toBe(0);
    expectBusError(() => fresh.pushBorrowed("_server", source), "BAD_TOPIC");
  });
});

describe("lent messages (a write copied only into the queue)", () => {
  /** A subscriber that says what it was sent: the payload as text at the time, and whether it was lent. */
  function recorder(takesLent: boolean) {
    const got: [string, boolean][] = [];
    const kept: Message[] = [];
    const s: Subscriber = {
      takesLent,
      send(m, lent) {
        got.push([decoder.decode(m.payload), lent === true]);
        kept.push(m);
      },
    };
    return { s, got, kept };
  }

  test("subscribers that all take lent messages are lent a borrowed write; one that keeps them stops it while it stays", () => {
    const { bus } = setup();
    const source = bytes("[one][two][three][four]");
    const a = recorder(true);
    const b = recorder(true);
    bus.subscribe("t", a.s);
    bus.subscribe("t", b.s);
    bus.publishBorrowed("t", source, false, 1, 4);
    expect(a.got).toEqual([["one", true]]);
    expect(b.got).toEqual([["one", true]]);
    const keeper = recorder(false);
    const leave = bus.subscribe("t", keeper.s);
    bus.publishBorrowed("t", source, false, 6, 9);
    expect(a.got[1]).toEqual(["two", false]);
    expect(keeper.got).toEqual([["two", false]]);
    leave();
    leave(); // twice: counted once
    bus.publishBorrowed("t", source, false, 11, 16);
    expect(a.got[2]).toEqual(["three", true]);
    // What was kept and not lent stays as it was, whatever the queue does after.
    bus.take("t");
    bus.take("t");
    bus.take("t");
    bus.publishBorrowed("t", source, false, 18, 22);
    expect(decoder.decode(keeper.kept[0]!.payload)).toBe("two");
    expect(decoder.decode(a.kept[1]!.payload)).toBe("two");
    // The queue holds its own copy: the source may change after the call.
    source.fill(0);
    expect(text(bus.take("t"))).toBe("four");
    expect(bus.topic("t")!.counters.published).toBe(4);
  });

  test("a subscriber with sendLent is sent the range of the queue's copy, one without it a lent Message; both see the same message", () => {
    const { bus } = setup({ maxQueue: 2 });
    const source = bytes("[one][two][three]");
    const ranges: [number, number, string, number][] = [];
    const ranged: Subscriber = {
      takesLent: true,
      send: () => {
        throw new Error("send() while sendLent is there");
      },
      sendLent(id, created, chunk, start, end) {
        ranges.push([id, created, decoder.decode(chunk.subarray(start, end)), chunk.length > end - start ? 1 : 0]);
      },
    };
    const plain = recorder(true);
    bus.subscribe("t", ranged);
    bus.subscribe("t", plain.s);
    for (const [start, end] of [
      [1, 4],
      [6, 9],
      [11, 16],
    ] as const)
      bus.publishBorrowed("t", source, false, start, end);
    expect(ranges.map(([id, , payload]) => [id, payload])).toEqual([
      [1, "one"],
      [2, "two"],
      [3, "three"], // the topic was full: the oldest dropped first
    ]);
    // The time it was written with: the one the queue keeps.
    expect(ranges[2]![1]).toBe(bus.peek("t", 1, 2)[0]!.created);
    expect(plain.got).toEqual([
      ["one", true],
      ["two", true],
      ["three", true],
    ]);
    expect(plain.kept.map((m) => [m.id, m.created, m.deliveries, m.topic])).toEqual(ranges.map(([id, created]) => [id, created, 0, "t"]));
    expect(queued(bus, "t")).toEqual([2, 3]);
  });

  test("never lent: a payload too large to pack, or a store that keeps messages", () => {
    const big = setup({ maxMessageSize: 20000 }).bus;
    const a = recorder(true);
    big.subscribe("t", a.s);
    big.publishBorrowed("t", new Uint8Array(9000));
    expect(a.got[0]![1]).toBe(false);
    const kept = setup({}, { store: new RecordingStore() }).bus;
    const b = recorder(true);
    kept.subscribe("t", b.s);
    kept.publishBorrowed("t", bytes("x"));
    expect(b.got).toEqual([["x", false]]);
  });

  test("drop-oldest drops a put-back or unpacked oldest message by its size as it does a packed one", () => {
    const { drops, events } = dropRecorder();
    const { bus } = setup({ maxQueue: 3, maxMessageSize: 20000 }, { events });
    bus.publish("q", new Uint8Array(9000)); // 1: not packed
    bus.publish("q", bytes("two"));
    const leased = bus.take("q", { lease: 1000 })!; // 1, leased: held, not droppable
    bus.nack("q", leased.id); // 1 again, at the head, an object
    bus.publish("q", bytes("three"));
    // The put-back message is an object: charged OBJECT_OVERHEAD more until it is dropped.
    expect(bus.bytes).toBe(messageCost(9000) + OBJECT_OVERHEAD + messageCost(3) + messageCost(5));
    bus.publish("q", bytes("four"));
    expect(queued(bus, "q")).toEqual([2, 3, 4]);
    expect(bus.bytes).toBe(messageCost(3) + messageCost(5) + messageCost(4));
    bus.publish("q", bytes("five"));
    expect(queued(bus, "q")).toEqual([3, 4, 5]);
    expect(bus.topic("q")!.bytes).toBe(bus.bytes);
    expect(drops).toEqual([
      ["q", "overflow", 1],
      ["q", "overflow", 1],
    ]);
    expect(text(bus.take("q"))).toBe("three");
    // An unpacked message at the head of the packed ones.
    const other = setup({ maxQueue: 2, maxMessageSize: 20000 }).bus;
    other.publish("r", new Uint8Array(9000));
    other.publish("r", bytes("b"));
    other.publish("r", bytes("c"));
    expect(queued(other, "r")).toEqual([2, 3]);
    expect(other.bytes).toBe(2 * messageCost(1));
    expect(other.topic("r")!.counters.dropped).toBe(1);
  });
});
