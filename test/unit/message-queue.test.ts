// The packed topic queue (core/message-queue.ts) against a plain-array model with a seeded PRNG:
// every message comes back with its id, time, delivery count, origin and bytes, in order.

import { describe, expect, test } from "bun:test";
import type { Message } from "../../src/core/message.ts";
import { MessageQueue } from "../../src/core/message-queue.ts";
import { prng } from "../helpers/prng.ts";

function message(id: number, size: number, extra: Partial<Message> = {}): Message {
  const payload = new Uint8Array(size);
  for (let i = 0; i < size; i++) payload[i] = (id + i) & 255;
  return { id, topic: "q", created: 1_700_000_000_000 + id * 3, payload, deliveries: 0, origin: undefined, ...extra };
}

const plain = (m: Message | undefined) => m && { ...m, payload: [...m.payload] };

describe("MessageQueue", () => {
  test("messages come back in order with their fields and bytes, as copies", () => {
    const q = new MessageQueue("q");
    const written = [message(1, 0), message(2, 100), message(3, 20000), message(4, 5, { deliveries: 3 })];
    for (const m of written) q.push(m);
    expect(q.length).toBe(4);
    expect([...q].map(plain)).toEqual(written.map(plain));
    const first = q.shift()!;
    expect(plain(first)).toEqual(plain(written[0]));
    const second = q.shift()!;
    expect(second.payload).not.toBe(written[1]!.payload);
    expect(plain(second)).toEqual(plain(written[1]));
    expect(q.length).toBe(2);
  });

  test("a dead letter's origin and a message of another topic are kept as they are", () => {
    const q = new MessageQueue("q.dead");
    const dead = { ...message(1, 10), topic: "q.dead", origin: { topic: "q", id: 7, deliveries: 5 } };
    const other = message(2, 10);
    q.push(dead);
    q.push(other);
    expect(q.shift()).toBe(dead);
    expect(q.shift()).toBe(other);
    expect(q.shift()).toBeUndefined();
  });

  test("peekCreated reads the oldest message's time without taking it", () => {
    const q = new MessageQueue("q");
    expect(q.peekCreated()).toBeUndefined();
    q.push(message(5, 10));
    expect(q.peekCreated()).toBe(message(5, 10).created);
    q.unshift(message(2, 1));
    expect(q.peekCreated()).toBe(message(2, 1).created);
    expect(q.length).toBe(2);
  });

  test("against a model over a long random run (seeded): push, unshift, shift, pop, removeFirst, clear", () => {
    for (const seed of [1, 2, 3, 4, 5]) {
      const random = prng(seed);
      const q = new MessageQueue("q");
      const model: Message[] = [];
      let id = 0;
      for (let step = 0; step < 20000; step++) {
        const r = random();
        if (r < 0.45) {
          const size = random() < 0.02 ? 9000 + Math.floor(random() * 9000) : Math.floor(random() * 300);
          const m = message(++id, size, random() < 0.05 ? { origin: { topic: "x", id: 1, deliveries: 2 } } : { deliveries: Math.floor(random() * 3) });
          q.push(m);
          model.push(m);
        } else if (r < 0.5) {
          const m = message(++id, Math.floor(random() * 50), { deliveries: 1 });
          q.unshift(m);
          model.unshift(m);
        } else if (r < 0.85) {
          expect(plain(q.shift())).toEqual(plain(model.shift()));
        } else if (r < 0.95) {
          expect(plain(q.pop())).toEqual(plain(model.pop()));
        } else if (r < 0.99) {
          expect(plain(q.peek())).toEqual(plain(model[0]));
        } else if (r < 0.997 && model.length > 0) {
          const target = model[Math.floor(random() * model.length)]!.id;
          expect(plain(q.removeFirst((m) => m.id === target))).toEqual(
            plain(
              model.splice(
                model.findIndex((m) => m.id === target),
                1,
              )[0],
            ),
          );
        } else {
          q.clear();
          model.length = 0;
        }
        expect(q.length).toBe(model.length);
      }
      expect([...q].map(plain)).toEqual(model.map(plain));
    }
  });
});
