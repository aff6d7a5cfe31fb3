// The bus's memory charge is honest: after any sequence of operations, every topic's bytes are the
// sum of what it holds (payload + MESSAGE_OVERHEAD each, + OBJECT_OVERHEAD for each held as an
// object: leased, delayed, put back at the head, or an external entry), the bus's are the sum over
// its topics, and both return to 0 once everything is gone. Random sequences, seeded.

import { describe, expect, test } from "bun:test";
import { Bus, type BusLimits } from "../../src/core/bus.ts";
import { BusError } from "../../src/core/errors.ts";
import { messageCost, OBJECT_OVERHEAD } from "../../src/core/message.ts";
import { DISCARD } from "../../src/core/message-queue.ts";
import type { Consumer } from "../../src/core/topic.ts";
import { HandStore } from "../helpers/hand-store.ts";
import { prng } from "../helpers/prng.ts";

/** What the topic's bytes must be, counted from what it holds. */
function expectedBytes(bus: Bus, name: string): number {
  const topic = bus.topic(name)!;
  let bytes = 0;
  for (const message of topic.queue) bytes += messageCost(message.payload.length);
  for (const lease of topic.leased.values()) bytes += messageCost(lease.message.payload.length);
  for (const delayed of topic.delayedMessages) bytes += messageCost(delayed.message.payload.length);
  return bytes + OBJECT_OVERHEAD * (topic.queue.objects + topic.leased.size + topic.delayedMessages.size);
}

/** What memory holds, as the store would: topic -> [id, delivery count] (queued, leased, delayed) in id order. */
function held(bus: Bus): Map<string, [number, number][]> {
  const result = new Map<string, [number, number][]>();
  for (const topic of bus.topicList()) {
    const messages: [number, number][] = [];
    for (const m of topic.queue) messages.push([m.id, m.deliveries]);
    for (const lease of topic.leased.values()) messages.push([lease.message.id, lease.message.deliveries]);
    for (const delayed of topic.delayedMessages) messages.push([delayed.message.id, delayed.message.deliveries]);
    if (messages.length > 0)
      result.set(
        topic.name,
        messages.sort((a, b) => a[0] - b[0]),
      );
  }
  return result;
}

function checkInvariant(bus: Bus, step: string): void {
  let sum = 0;
  for (const topic of bus.topicList()) {
    expect([step, topic.name, topic.bytes]).toEqual([step, topic.name, expectedBytes(bus, topic.name)]);
    sum += topic.bytes;
  }
  expect([step, bus.bytes]).toEqual([step, sum]);
}

const TOPICS = ["a", "b", "c"];

async function randomRun(seed: number, durable: boolean): Promise<void> {
  const random = prng(seed);
  const pick = <T>(items: T[]): T => items[Math.floor(random() * items.length)]!;
  const int = (n: number) => Math.floor(random() * n);
  const store = new HandStore();
  const clock = { now: 1_000_000 };
  const limits: Partial<BusLimits> = {
    maxQueue: 5 + int(30),
    maxQueueBytes: 2000 + int(20000),
    maxMemory: 4000 + int(40000),
    overflow: random() < 0.5 ? "drop-oldest" : "reject",
    maxAge: random() < 0.3 ? 500 + int(2000) : 0,
    maxDeliveries: 1 + int(4),
    maxMessageSize: 20000,
    // Now and then too few places for every topic: emptied ones are let go (and come back in an undo).
    maxTopics: random() < 0.3 ? 2 + int(3) : 10_000,
  };
  const bus = new Bus({ limits, now: () => clock.now, ...(durable ? { store } : {}) });
  const leases: { topic: string; id: number }[] = [];
  const consumers: { topic: string; consumer: Consumer }[] = [];
  const payload = () => new Uint8Array(random() < 0.08 ? 8193 + int(3000) : int(300));
  for (let step = 0; step < 1500; step++) {
    const topic = pick(TOPICS);
    const roll = random();
    const label = `seed ${seed} step ${step}`;
    try {
      if (roll < 0.25) {
        bus.publish(topic, payload());
      } else if (roll < 0.45) {
        if (random() < 0.5) bus.publishBorrowed(topic, payload());
        else bus.pushBorrowed(topic, payload()); // LPUSH's path
      } else if (roll < 0.5) {
        bus.take(topic);
      } else if (roll < 0.55) {
        bus.takeInto(topic, DISCARD); // RPOP's path: straight from the queue, no Message
      } else if (roll < 0.68) {
        const m = bus.take(topic, { lease: 100 + int(3000) });
        if (m) leases.push({ topic, id: m.id });
      } else if (roll < 0.76 && leases.length > 0) {
        const { topic: t, id } = leases.splice(int(leases.length), 1)[0]!;
        bus.ack(t, id);
      } else if (roll < 0.84 && leases.length > 0) {
        const { topic: t, id } = leases.splice(int(leases.length), 1)[0]!;
        bus.nack(t, id, random() < 0.4 ? 1 + int(1000) : 0);
      } else if (roll < 0.88) {
        clock.now += int(1500);
        bus.tick();
      } else if (roll < 0.9) {
        const consumer: Consumer = { credit: 1 + int(5), lease: 200 + int(2000), streaming: true, deliver: () => {} };
        bus.consume(topic, consumer);
        consumers.push({ topic, consumer });
      } else if (roll < 0.92 && consumers.length > 0) {
        const { topic: t, consumer } = consumers.splice(int(consumers.length), 1)[0]!;
        bus.cancel(t, consumer);
      } else if (roll < 0.935) {
        bus.purge(pick([...TOPICS, `${topic}.dead`]));
      } else if (roll < 0.95) {
        if (!consumers.some((c) => c.topic === topic)) bus.deleteTopic(topic);
      } else if (roll < 0.97) {
        bus.take(`${topic}.dead`);
      } else if (durable) {
        if (store.waiting) await store.settle(random() < 0.6);
      }
    } catch (error) {
      if (!(error instanceof BusError)) throw error;
    }
    checkInvariant(bus, label);
    // Memory holds what the store will hold once it writes what it has pending or kept: a failed
    // commit, undone, leaves no message in memory that the store will not have, and none missing.
    if (durable) expect([label, held(bus)]).toEqual([label, store.holds()]);
  }
  // Everything goes: consumers leave (their leases return), the store commits, every message is taken.
  for (const { topic, consumer } of consumers) bus.cancel(topic, consumer);
  if (durable && store.waiting) await store.settle(true);
  clock.now += 10 * 3_600_000;
  bus.tick();
  for (const topic of bus.topicList()) while (random() < 0.5 ? bus.take(topic.name) : bus.takeInto(topic.name, DISCARD));
  checkInvariant(bus, `seed ${seed} drained`);
  for (const topic of bus.topicList()) expect([topic.name, topic.bytes]).toEqual([topic.name, 0]);
  expect(bus.bytes).toBe(0);
}

describe("honest memory charge", () => {
  test("random operation sequences keep topic and bus bytes equal to what they hold, and back to 0 (memory store)", async () => {
    for (let seed = 1; seed <= 40; seed++) await randomRun(seed, false);
  });

  test("random operation sequences with commits that fail and are undone (a store that keeps)", async () => {
    for (let seed = 101; seed <= 140; seed++) await randomRun(seed, true);
  });

  test("--max-memory refuses (reject) or drops (drop-oldest) on the honest charge: a leased message counts as an object", () => {
    const limit = 3 * messageCost(10) + OBJECT_OVERHEAD - 1;
    const reject = new Bus({ limits: { maxMemory: limit, overflow: "reject" } });
    for (let i = 0; i < 3; i++) reject.publish("q", new Uint8Array(10));
    expect(reject.bytes).toBe(3 * messageCost(10));
    reject.take("q", { lease: 1000 });
    expect(reject.bytes).toBe(3 * messageCost(10) + OBJECT_OVERHEAD);
    expect(() => reject.publish("q", new Uint8Array(10))).toThrow("bus full");

    const drop = new Bus({ limits: { maxMemory: limit, overflow: "drop-oldest" } });
    for (let i = 0; i < 3; i++) drop.publish("q", new Uint8Array(10));
    drop.take("q", { lease: 1000 });
    drop.publish("q", new Uint8Array(10));
    // Two queued messages had to go for the new one: the leased one counts OBJECT_OVERHEAD more.
    expect(drop.topic("q")!.counters.dropped).toBe(2);
    expect(drop.bytes).toBe(2 * messageCost(10) + OBJECT_OVERHEAD);
    expect(drop.bytes).toBeLessThanOrEqual(limit);
  });

  test("a refused write that could never fit leaves the packed queue packed (no object charge)", () => {
    const bus = new Bus({ limits: { maxQueueBytes: 5 * messageCost(10) } });
    for (let i = 0; i < 3; i++) bus.publish("q", new Uint8Array(10));
    expect(() => bus.publish("q", new Uint8Array(6 * messageCost(10)))).toThrow("topic full");
    expect(bus.topic("q")!.queue.objects).toBe(0);
    expect(bus.bytes).toBe(3 * messageCost(10));
  });
});
