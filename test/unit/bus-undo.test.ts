// A commit the store could not write (disk full) is undone in the bus: taken, acked, leased and
// dropped messages are queued again as they were, written ones leave, ids are never reused.

import { describe, expect, test } from "bun:test";
import { Bus, type BusLimits } from "../../src/core/bus.ts";
import { messageCost, OBJECT_OVERHEAD, type Message } from "../../src/core/message.ts";
import type { Consumer } from "../../src/core/topic.ts";
import { HandStore } from "../helpers/hand-store.ts";

const bytes = (text: string) => new TextEncoder().encode(text);
const text = (m: Message | undefined) => (m ? new TextDecoder().decode(m.payload) : undefined);
const queued = (bus: Bus, topic: string) => [...(bus.topic(topic)?.queue ?? [])].map((m) => [m.id, m.deliveries]);

/** The store holds exactly these [id, deliveries] of one topic, and no other topic. */
function storeHolds(store: HandStore, topic: string, entries: [number, number][]): void {
  expect(store.holds()).toEqual(new Map([[topic, entries]]));
}

/** The topic's queue and the store both hold exactly these [id, deliveries] (the store no other topic). */
function heldInMemoryAndStore(bus: Bus, store: HandStore, topic: string, entries: [number, number][]): void {
  expect(queued(bus, topic)).toEqual(entries);
  storeHolds(store, topic, entries);
}

function setup(limits: Partial<BusLimits> = {}) {
  const store = new HandStore();
  const clock = { now: 1_700_000_000_000 };
  const bus = new Bus({ store, limits, now: () => clock.now });
  return { bus, store, clock };
}

async function written(bus: Bus, store: HandStore, topic: string, ...payloads: string[]) {
  for (const p of payloads) bus.publish(topic, bytes(p));
  await store.settle(true);
}

describe("a commit that failed is undone in memory", () => {
  test("a take whose commit failed leaves the message queued, at the head, with its delivery count", async () => {
    const { bus, store } = setup();
    await written(bus, store, "q", "a", "b", "c");
    const before = bus.bytes;
    expect(text(bus.take("q"))).toBe("a");
    expect(text(bus.take("q"))).toBe("b");
    expect(bus.bytes).toBeLessThan(before);
    await store.settle(false);
    expect(queued(bus, "q")).toEqual([
      [1, 0],
      [2, 0],
      [3, 0],
    ]);
    // Put back at the head, the two are objects now (no longer packed): charged as such.
    expect(bus.bytes).toBe(before + 2 * OBJECT_OVERHEAD);
    expect(bus.topic("q")!.bytes).toBe(before + 2 * OBJECT_OVERHEAD);
    // And the next take, once written, is the same message.
    expect(text(bus.take("q"))).toBe("a");
    await store.settle(true);
    expect(queued(bus, "q").map(([id]) => id)).toEqual([2, 3]);
  });

  test("a write whose commit failed leaves the topic, and its id is not given again", async () => {
    const { bus, store } = setup();
    await written(bus, store, "q", "kept");
    const m = bus.publish("q", bytes("lost"));
    expect(m.id).toBe(2);
    await store.settle(false);
    expect(queued(bus, "q")).toEqual([[1, 0]]);
    expect(bus.bytes).toBe(messageCost(4));
    expect(bus.publish("q", bytes("next")).id).toBe(3);
  });

  test("a take and then a delete of its topic in one failed commit: the delete stands (the store tries it again), nothing comes back", async () => {
    const { bus, store } = setup();
    await written(bus, store, "q", "a", "b");
    expect(text(bus.take("q"))).toBe("a");
    expect(text(bus.take("q", { lease: 60_000 }))).toBe("b");
    expect(bus.deleteTopic("q")).toBe(1); // b, leased
    expect(bus.publish("q", bytes("new")).id).toBe(3); // a newer topic of the name; ids go on
    await store.settle(false);
    // The write leaves; a and b stay gone with the deleted topic, and no bytes are left behind.
    expect(queued(bus, "q")).toEqual([]);
    expect(bus.bytes).toBe(0);
    expect(bus.publish("q", bytes("next")).id).toBe(4);
    expect(bus.bytes).toBe(bus.topic("q")!.bytes);
  });

  test("a take and then a purge of its topic in one failed commit: the purge is undone too, every message is back and the store holds them", async () => {
    const { bus, store } = setup();
    await written(bus, store, "q", "a", "b", "c");
    const before = bus.bytes;
    expect(text(bus.take("q"))).toBe("a");
    expect(bus.purge("q")).toBe(2);
    expect(bus.bytes).toBe(0);
    await store.settle(false);
    // The PURGE was answered STORAGE: it purged nothing, and the take took nothing.
    heldInMemoryAndStore(bus, store, "q", [
      [1, 0],
      [2, 0],
      [3, 0],
    ]);
    // Taken again, a is an object at the head (put back); b and c are packed again.
    expect(bus.bytes).toBe(before + OBJECT_OVERHEAD);
    expect(bus.topic("q")!.bytes).toBe(bus.bytes);
    // Purged again, and written this time: gone from memory and store alike.
    expect(bus.purge("q")).toBe(3);
    await store.settle(true);
    expect(queued(bus, "q")).toEqual([]);
    expect(store.holds()).toEqual(new Map());
    expect(bus.bytes).toBe(0);
  });

  test("a lease and then a purge in one failed commit: the lease ends and the purged messages come back, in id order", async () => {
    const { bus, store } = setup();
    await written(bus, store, "q", "a", "b", "c");
    expect(text(bus.take("q", { lease: 60_000 }))).toBe("a");
    expect(bus.purge("q")).toBe(2); // b and c; a stays leased
    bus.publish("q", bytes("d"));
    await store.settle(false);
    expect(bus.topic("q")!.leased.size).toBe(0);
    heldInMemoryAndStore(bus, store, "q", [
      [1, 0],
      [2, 0],
      [3, 0],
    ]);
    expect(bus.topic("q")!.bytes).toBe(bus.bytes);
  });

  test("an ack and a purge in one failed commit: the acked message and the purged ones are queued again", async () => {
    const { bus, store } = setup();
    await written(bus, store, "q", "a", "b");
    bus.take("q", { lease: 60_000 });
    await store.settle(true);
    bus.ack("q", 1);
    expect(bus.purge("q")).toBe(1);
    await store.settle(false);
    heldInMemoryAndStore(bus, store, "q", [
      [1, 1],
      [2, 0],
    ]);
  });

  test("a purge of delayed messages in a failed commit: they are held back again until their time", async () => {
    const { bus, store, clock } = setup();
    await written(bus, store, "q", "a", "b");
    bus.take("q", { lease: 60_000 });
    await store.settle(true);
    bus.nack("q", 1, 5000);
    expect(bus.purge("q")).toBe(2);
    await store.settle(false);
    expect(bus.topic("q")!.delayed).toBe(1);
    expect(queued(bus, "q")).toEqual([[2, 0]]);
    storeHolds(store, "q", [
      [1, 1],
      [2, 0],
    ]);
    clock.now += 4999;
    bus.tick();
    expect(queued(bus, "q")).toEqual([[2, 0]]);
    clock.now += 1;
    bus.tick();
    expect(queued(bus, "q")).toEqual([
      [1, 1],
      [2, 0],
    ]);
    expect(bus.topic("q")!.bytes).toBe(bus.bytes);
  });

  test("a dead letter and then a purge of the dead-letter topic in one failed commit: the message is back in its topic only", async () => {
    const { bus, store } = setup();
    await written(bus, store, "q", "a");
    bus.take("q", { lease: 60_000, maxDeliveries: 1 });
    await store.settle(true);
    bus.nack("q", 1);
    expect(bus.purge("q.dead")).toBe(1);
    await store.settle(false);
    expect(queued(bus, "q")).toEqual([[1, 1]]);
    expect(queued(bus, "q.dead")).toEqual([]);
    storeHolds(store, "q", [[1, 1]]);
  });

  test("a write leased and nacked with a delay in one failed commit leaves (it is not held back for later)", async () => {
    const { bus, store } = setup();
    bus.publish("q", bytes("a"));
    bus.take("q", { lease: 60_000 });
    bus.nack("q", 1, 5000);
    expect(bus.topic("q")!.delayed).toBe(1);
    await store.settle(false);
    expect(bus.topic("q")!.delayed).toBe(0);
    expect(queued(bus, "q")).toEqual([]);
    expect(bus.bytes).toBe(0);
    expect(store.holds()).toEqual(new Map());
  });

  test("a topic emptied and let go (--max-topics) in a failed commit, its name taken by a newer topic meanwhile: the messages come back into that one", async () => {
    const { bus, store } = setup({ maxTopics: 2 });
    await written(bus, store, "q", "a", "b");
    bus.take("q");
    bus.take("q"); // q holds nothing now: idle, it gives its place up when one is needed
    bus.publish("r", bytes("r"));
    bus.publish("s", bytes("s")); // q is let go for s
    bus.take("s");
    expect(bus.publish("q", bytes("c")).id).toBe(3); // s is let go for a newer q
    await store.settle(false);
    expect(queued(bus, "q")).toEqual([
      [1, 0],
      [2, 0],
    ]);
    expect(new Map([...store.holds()].filter(([name]) => name === "q"))).toEqual(
      new Map([
        [
          "q",
          [
            [1, 0],
            [2, 0],
          ],
        ],
      ]),
    );
    expect(bus.bytes).toBe(bus.topicList().reduce((sum, t) => sum + t.bytes, 0));
    expect(bus.bytes).toBe(bus.topic("q")!.bytes);
  });

  test("a topic let go (--max-topics) and a newer one of its name deleted in one failed commit: the delete stands for both", async () => {
    const { bus, store } = setup({ maxTopics: 2 });
    await written(bus, store, "q", "a", "b");
    bus.take("q");
    bus.take("q");
    bus.publish("r", bytes("r"));
    bus.publish("s", bytes("s"));
    bus.take("s");
    bus.publish("q", bytes("c"));
    expect(bus.deleteTopic("q")).toBe(1);
    await store.settle(false);
    // The store deletes every row of q when it tries the delete again: a and b stay gone.
    expect(queued(bus, "q")).toEqual([]);
    expect(store.holds().has("q")).toBe(false);
    expect(bus.bytes).toBe(bus.topicList().reduce((sum, t) => sum + t.bytes, 0));
  });

  test("a write taken at once by a waiting consumer, in a commit that failed, is neither queued nor handed out twice", async () => {
    const { bus, store } = setup();
    const got: Message[] = [];
    bus.consume("q", { credit: 1, deliver: (m) => void got.push(m) });
    bus.publish("q", bytes("x"));
    expect(got.length).toBe(1);
    await store.settle(false);
    expect(queued(bus, "q")).toEqual([]);
    expect(bus.bytes).toBe(0);
  });

  test("an ack whose commit failed puts the message back in the queue (delivered again: at-least-once)", async () => {
    const { bus, store } = setup();
    await written(bus, store, "q", "a", "b");
    const leased = bus.take("q", { lease: 30000 })!;
    await store.settle(true);
    bus.ack("q", leased.id);
    await store.settle(false);
    expect(queued(bus, "q")).toEqual([
      [1, 1],
      [2, 0],
    ]);
    expect(bus.topic("q")!.leased.size).toBe(0);
  });

  test("a lease granted in a commit that failed ends, and the message is queued with its old count", async () => {
    const { bus, store } = setup();
    await written(bus, store, "q", "a");
    bus.take("q", { lease: 30000 });
    expect(bus.topic("q")!.leased.size).toBe(1);
    await store.settle(false);
    expect(bus.topic("q")!.leased.size).toBe(0);
    expect(queued(bus, "q")).toEqual([[1, 0]]);
    expect(() => bus.ack("q", 1)).toThrow(/no lease/);
  });

  test("a streaming consumer's lease from a failed commit is given back with its credit", async () => {
    const { bus, store } = setup();
    await written(bus, store, "q", "a", "b");
    const got: Message[] = [];
    const consumer: Consumer = { credit: 1, lease: 30000, streaming: true, deliver: (m) => void got.push(m) };
    bus.consume("q", consumer);
    expect(got.map((m) => m.id)).toEqual([1]);
    expect(consumer.credit).toBe(0);
    await store.settle(false);
    expect(consumer.credit).toBe(1);
    expect(queued(bus, "q")).toEqual([
      [1, 0],
      [2, 0],
    ]);
    // It gets messages again at the next write (not in a loop of failing commits).
    bus.publish("q", bytes("c"));
    expect(got.map((m) => m.id)).toEqual([1, 1]);
  });

  test("drop-oldest in a failed commit: the dropped message comes back and the new one leaves", async () => {
    const { bus, store } = setup({ maxQueue: 2 });
    await written(bus, store, "q", "a", "b");
    bus.publish("q", bytes("c"));
    expect(queued(bus, "q").map(([id]) => id)).toEqual([2, 3]);
    await store.settle(false);
    expect(queued(bus, "q").map(([id]) => id)).toEqual([1, 2]);
    expect(bus.topic("q")!.bytes).toBe(2 * messageCost(1) + OBJECT_OVERHEAD); // the dropped one is back as an object
  });

  test("a nack past the maximum in a failed commit: the message is back in its topic, not in .dead", async () => {
    const { bus, store } = setup();
    await written(bus, store, "q", "a");
    bus.take("q", { lease: 30000, maxDeliveries: 1 });
    await store.settle(true);
    bus.nack("q", 1);
    expect(queued(bus, "q.dead").length).toBe(1);
    await store.settle(false);
    expect(queued(bus, "q")).toEqual([[1, 1]]);
    expect(queued(bus, "q.dead")).toEqual([]);
  });

  test("several takes across topics in one failed commit come back in id order", async () => {
    const { bus, store } = setup();
    await written(bus, store, "a", "1", "2", "3");
    await written(bus, store, "b", "1");
    bus.take("a");
    bus.take("b");
    bus.take("a", { lease: 1000 });
    await store.settle(false);
    expect(queued(bus, "a").map(([id]) => id)).toEqual([1, 2, 3]);
    expect(queued(bus, "b").map(([id]) => id)).toEqual([1]);
  });

  test("an ack and takes in one failed commit: every message back at the head in id order", async () => {
    const { bus, store } = setup();
    await written(bus, store, "q", "a", "b", "c", "d");
    bus.take("q", { lease: 30000 });
    await store.settle(true);
    bus.take("q");
    bus.take("q");
    bus.ack("q", 1);
    await store.settle(false);
    expect(queued(bus, "q")).toEqual([
      [1, 1],
      [2, 0],
      [3, 0],
      [4, 0],
    ]);
  });

  test("a commit that was written changes nothing", async () => {
    const { bus, store } = setup();
    await written(bus, store, "q", "a", "b");
    bus.take("q");
    await store.settle(true);
    expect(queued(bus, "q").map(([id]) => id)).toEqual([2]);
  });
});
