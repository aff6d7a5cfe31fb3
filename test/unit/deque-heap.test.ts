// The two containers under the bus: the ring-buffer Deque (topic queues) and the MinHeap
// (lease and delay timers), checked by hand and against a plain-array model with a seeded PRNG.

import { prng } from "../helpers/prng.ts";
import { describe, expect, test } from "bun:test";
import { Deque } from "../../src/core/deque.ts";
import { MinHeap } from "../../src/core/heap.ts";

describe("Deque", () => {
  test("push then shift is first in, first out", () => {
    const d = new Deque<number>();
    for (let i = 0; i < 5; i++) d.push(i);
    expect(d.length).toBe(5);
    expect([d.shift(), d.shift(), d.shift(), d.shift(), d.shift()]).toEqual([0, 1, 2, 3, 4]);
    expect(d.length).toBe(0);
  });

  test("shift and peek on an empty deque return undefined", () => {
    const d = new Deque<string>();
    expect(d.shift()).toBeUndefined();
    expect(d.peek()).toBeUndefined();
    expect(d.length).toBe(0);
  });

  test("unshift puts an item in front of everything", () => {
    const d = new Deque<number>();
    d.push(2);
    d.push(3);
    d.unshift(1);
    d.unshift(0);
    expect([...d]).toEqual([0, 1, 2, 3]);
    expect(d.peek()).toBe(0);
  });

  test("at reads by position from the head and is undefined out of range", () => {
    const d = new Deque<string>();
    for (const s of ["a", "b", "c"]) d.push(s);
    d.shift();
    d.push("d");
    expect([d.at(0), d.at(1), d.at(2)]).toEqual(["b", "c", "d"]);
    expect(d.at(-1)).toBeUndefined();
    expect(d.at(3)).toBeUndefined();
  });

  test("it grows past its capacity while the contents wrap around the ring", () => {
    const d = new Deque<number>(4);
    d.push(1);
    d.push(2);
    d.shift();
    d.shift(); // head is now in the middle of the ring
    for (let i = 0; i < 100; i++) d.push(i);
    d.unshift(-1);
    expect(d.length).toBe(101);
    expect([...d]).toEqual([-1, ...Array.from({ length: 100 }, (_, i) => i)]);
  });

  test("unshift into a full ring grows it and keeps the order", () => {
    const d = new Deque<number>(2);
    d.push(1);
    d.push(2);
    d.unshift(0);
    d.unshift(-1);
    expect([...d]).toEqual([-1, 0, 1, 2]);
  });

  test("it shrinks after growing large and keeps the remaining items in order", () => {
    const d = new Deque<number>();
    for (let i = 0; i < 10_000; i++) d.push(i);
    for (let i = 0; i < 9_990; i++) expect(d.shift()).toBe(i);
    expect([...d]).toEqual([9990, 9991, 9992, 9993, 9994, 9995, 9996, 9997, 9998, 9999]);
    d.push(10_000);
    expect(d.at(10)).toBe(10_000);
  });

  test("removeFirst takes the first match from the head, middle or tail and keeps the rest in order", () => {
    const d = new Deque<number>(4);
    d.push(99);
    d.shift();
    for (const n of [1, 2, 3, 2, 4]) d.push(n); // wraps around the ring
    expect(d.removeFirst((n) => n === 2)).toBe(2);
    expect([...d]).toEqual([1, 3, 2, 4]);
    expect(d.removeFirst((n) => n === 1)).toBe(1);
    expect(d.removeFirst((n) => n === 4)).toBe(4);
    expect([...d]).toEqual([3, 2]);
    expect(d.removeFirst((n) => n === 7)).toBeUndefined();
    expect(d.length).toBe(2);
    d.push(5);
    expect([...d]).toEqual([3, 2, 5]);
  });

  test("clear empties it and it can be used again", () => {
    const d = new Deque<number>();
    for (let i = 0; i < 40; i++) d.push(i);
    d.clear();
    expect(d.length).toBe(0);
    expect([...d]).toEqual([]);
    d.push(1);
    expect(d.shift()).toBe(1);
  });

  test("random pushes, unshifts, shifts and removals match an array model", () => {
    for (let seed = 1; seed <= 20; seed++) {
      const random = prng(seed);
      const d = new Deque<number>(1 + Math.floor(random() * 8));
      const model: number[] = [];
      for (let step = 0; step < 2000; step++) {
        const r = random();
        const value = step;
        if (r < 0.35) {
          d.push(value);
          model.push(value);
        } else if (r < 0.5) {
          d.unshift(value);
          model.unshift(value);
        } else if (r < 0.9) {
          expect(d.shift()).toBe(model.shift());
        } else if (model.length > 0) {
          const target = model[Math.floor(random() * model.length)]!;
          expect(d.removeFirst((n) => n === target)).toBe(target);
          model.splice(model.indexOf(target), 1);
        }
        expect(d.length).toBe(model.length);
        expect(d.peek()).toBe(model[0]);
      }
      expect([...d]).toEqual(model);
    }
  });
});

describe("MinHeap", () => {
  test("pops values in key order whatever order they were pushed in", () => {
    const h = new MinHeap<string>();
    for (const [k, v] of [
      [5, "e"],
      [1, "a"],
      [4, "d"],
      [2, "b"],
      [3, "c"],
    ] as const) {
      h.push(k, v);
    }
    expect(h.size).toBe(5);
    expect(h.peekKey()).toBe(1);
    const out: string[] = [];
    for (let v = h.pop(); v !== undefined; v = h.pop()) out.push(v);
    expect(out).toEqual(["a", "b", "c", "d", "e"]);
    expect(h.size).toBe(0);
  });

  test("an empty heap has no key and pops undefined", () => {
    const h = new MinHeap<number>();
    expect(h.peekKey()).toBeUndefined();
    expect(h.pop()).toBeUndefined();
  });

  test("equal keys all come out, none lost or repeated", () => {
    const h = new MinHeap<number>();
    for (let i = 0; i < 10; i++) h.push(7, i);
    h.push(3, 100);
    const out: number[] = [];
    for (let v = h.pop(); v !== undefined; v = h.pop()) out.push(v);
    expect(out[0]).toBe(100);
    expect(out.slice(1).sort((a, b) => a - b)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
  });

  test("clear empties it", () => {
    const h = new MinHeap<number>();
    h.push(1, 1);
    h.push(2, 2);
    h.clear();
    expect(h.size).toBe(0);
    expect(h.pop()).toBeUndefined();
  });

  test("random interleaved pushes and pops always pop the smallest key (array model)", () => {
    for (let seed = 1; seed <= 20; seed++) {
      const random = prng(seed * 7919);
      const h = new MinHeap<{ key: number }>();
      const model: number[] = [];
      for (let step = 0; step < 2000; step++) {
        if (random() < 0.6) {
          const key = Math.floor(random() * 500);
          h.push(key, { key });
          model.push(key);
        } else {
          model.sort((a, b) => a - b);
          const expected = model.shift();
          expect(h.peekKey()).toBe(expected);
          expect(h.pop()?.key).toBe(expected);
        }
        expect(h.size).toBe(model.length);
      }
    }
  });
});
