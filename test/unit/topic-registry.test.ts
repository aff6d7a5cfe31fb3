// The topic registry on its own: which topics are in use, which idle one is let go first, and
// that its lazily kept idle order agrees with a plain ordered list over long random runs.

import { describe, expect, test } from "bun:test";
import type { BusError } from "../../src/core/errors.ts";
import type { Message } from "../../src/core/message.ts";
import { TopicRegistry } from "../../src/core/topic-registry.ts";
import type { Topic } from "../../src/core/topic.ts";

const message = (topic: Topic): Message => ({ id: topic.lastId, topic: topic.name, created: 0, payload: new Uint8Array(0), deliveries: 0 });

/** Writes one message to the topic (creating it), as the bus does: use, append, settle. */
function write(registry: TopicRegistry, name: string): void {
  const topic = registry.use(name);
  topic.lastId++;
  topic.queue.push(message(topic));
  registry.settle(topic);
}

function drain(registry: TopicRegistry, name: string): void {
  const topic = registry.get(name);
  if (!topic) return;
  topic.queue.clear();
  registry.settle(topic);
}

const names = (registry: TopicRegistry) => [...registry.values()].map((t) => t.name).sort();

/** The reference: the idle topics as a plain list, longest idle first. */
class Model {
  readonly live = new Map<string, { held: boolean; written: boolean }>();
  readonly idle: string[] = [];
  constructor(readonly maxTopics: number) {}

  get inUse(): number {
    return this.live.size - this.idle.length;
  }

  write(name: string): "BUS_FULL" | undefined {
    let topic = this.live.get(name);
    if (topic) {
      this.unlist(name);
    } else {
      if (this.inUse >= this.maxTopics) return "BUS_FULL";
      while (this.live.size >= this.maxTopics && this.idle.length > 0) this.live.delete(this.idle.shift()!);
      this.live.set(name, (topic = { held: false, written: false }));
    }
    topic.held = true;
    topic.written = true;
    return undefined;
  }

  drain(name: string): void {
    const topic = this.live.get(name);
    if (!topic) return;
    topic.held = false;
    if (!this.idle.includes(name)) this.idle.push(name);
  }

  remove(name: string): void {
    this.live.delete(name);
    this.unlist(name);
  }

  private unlist(name: string): void {
    const at = this.idle.indexOf(name);
    if (at >= 0) this.idle.splice(at, 1);
  }
}

describe("topic registry", () => {
  test("the topic idle the longest is let go first, however often others went busy and idle since", () => {
    const registry = new TopicRegistry(3, 100, () => 0);
    for (const name of ["a", "b", "c"]) {
      write(registry, name);
      drain(registry, name);
    }
    // b and c go busy and idle many times after a went idle: a stays the longest idle.
    for (let i = 0; i < 5000; i++) {
      write(registry, i % 2 ? "b" : "c");
      drain(registry, i % 2 ? "b" : "c");
    }
    write(registry, "d");
    expect(names(registry)).toEqual(["b", "c", "d"]);
    // b went idle last (i = 4999 is odd), so c is now the longest idle.
    write(registry, "e");
    expect(names(registry)).toEqual(["b", "d", "e"]);
    expect(registry.inUse).toBe(2);
  });

  test("a topic busy when the idle order is first needed still gets its place once idle", () => {
    const registry = new TopicRegistry(3, 100, () => 0);
    write(registry, "a");
    drain(registry, "a");
    write(registry, "b");
    drain(registry, "b");
    write(registry, "b"); // busy again, nothing listed since
    write(registry, "c");
    write(registry, "d"); // the registry is full: a goes
    expect(names(registry)).toEqual(["b", "c", "d"]);
    drain(registry, "b");
    drain(registry, "c");
    write(registry, "e"); // b has been idle the longest
    expect(names(registry)).toEqual(["c", "d", "e"]);
  });

  test("a topic drained and written again keeps its place as the newest idle one", () => {
    const registry = new TopicRegistry(2, 100, () => 0);
    write(registry, "a");
    drain(registry, "a");
    write(registry, "b");
    drain(registry, "b");
    for (let i = 0; i < 3000; i++) {
      write(registry, "b");
      drain(registry, "b");
    }
    write(registry, "c");
    expect(names(registry)).toEqual(["b", "c"]);
  });

  test("over long random runs (writes, drains, deletions) the registry lets go the same topics as a plain ordered list", () => {
    let seed = 42;
    const random = (n: number) => {
      seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
      return (seed >>> 8) % n;
    };
    // With many deletions the registry also empties below half, and drops its idle order.
    for (const [maxTopics, deletions] of [
      [1, 1],
      [3, 1],
      [8, 1],
      [40, 1],
      [8, 8],
      [40, 8],
    ] as const) {
      const registry = new TopicRegistry(maxTopics, 1000, () => 0);
      const model = new Model(maxTopics);
      const pool = Array.from({ length: maxTopics * 2 + 1 }, (_, i) => `t${i}`);
      for (let step = 0; step < 30000; step++) {
        // Mostly a few hot topics, so that stale entries pile up and get compacted.
        const name = random(4) > 0 ? pool[random(2)]! : pool[random(pool.length)]!;
        const op = random(20);
        if (op < deletions) {
          const topic = registry.get(name);
          if (topic) registry.remove(topic);
          model.remove(name);
        } else if (op < 10) {
          let code: string | undefined;
          try {
            write(registry, name);
          } catch (e) {
            code = (e as BusError).code;
          }
          expect(code).toBe(model.write(name));
        } else {
          drain(registry, name);
          model.drain(name);
        }
        expect(registry.inUse).toBe(model.inUse);
        if (step % 97 === 0) expect(names(registry)).toEqual([...model.live.keys()].sort());
      }
      expect(names(registry)).toEqual([...model.live.keys()].sort());
    }
  });
});
