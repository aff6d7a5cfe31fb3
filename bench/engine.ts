// In-process bench of the bus engine alone (no sockets, memory store): what the hot paths cost.
// Usage: bun bench/engine.ts [--quick]. Prints operations per second, the best of 7 rounds.

import { Bus } from "../src/core/bus.ts";
import type { Message } from "../src/core/message.ts";

const quick = process.argv.includes("--quick");
const N = quick ? 200_000 : 1_000_000;
const ROUNDS = 7;
const payload = new Uint8Array(100);
const big = { maxQueue: 10_000_000, maxQueueBytes: 2 ** 40, maxMemory: 2 ** 40 };

/** publish then take at once, one topic: the queue goes empty and back on every pair. */
function publishTake(): number {
  const bus = new Bus({ limits: big });
  const started = performance.now();
  for (let i = 0; i < N; i++) {
    bus.publish("jobs", payload);
    bus.take("jobs");
  }
  return N / ((performance.now() - started) / 1000);
}

/** publish to a topic with 10 subscribers (fan-out), nobody taking. */
function publishFanOut(): number {
  const bus = new Bus({ limits: big });
  let seen = 0;
  for (let i = 0; i < 10; i++) bus.subscribe("sensors", { send: () => void seen++ });
  const started = performance.now();
  for (let i = 0; i < N; i++) {
    bus.publish("sensors", payload);
    if ((i & 1023) === 1023) bus.purge("sensors");
  }
  return N / ((performance.now() - started) / 1000);
}

/** publish, take with a lease, ack: at-least-once, one topic. */
function leaseAck(): number {
  const bus = new Bus({ limits: big });
  const started = performance.now();
  for (let i = 0; i < N; i++) {
    bus.publish("jobs", payload);
    const message = bus.take("jobs", { lease: 30_000 }) as Message;
    bus.ack("jobs", message.id);
  }
  return N / ((performance.now() - started) / 1000);
}

/** a streaming consumer (credit 1) that acks each delivery: publish, dispatch, ack. */
function consumerAck(): number {
  const bus = new Bus({ limits: big });
  let last: Message | undefined;
  bus.consume("jobs", { credit: 1, lease: 30_000, streaming: true, deliver: (m) => void (last = m) });
  const started = performance.now();
  for (let i = 0; i < N; i++) {
    bus.publish("jobs", payload);
    bus.ack("jobs", last!.id);
  }
  return N / ((performance.now() - started) / 1000);
}

/** publish+take over 1,000 topics in turn. */
function manyTopics(): number {
  const bus = new Bus({ limits: big });
  const names = Array.from({ length: 1000 }, (_, i) => `t${i}`);
  const started = performance.now();
  for (let i = 0; i < N; i++) {
    const name = names[i % 1000]!;
    bus.publish(name, payload);
    bus.take(name);
  }
  return N / ((performance.now() - started) / 1000);
}

const cases: [string, () => number][] = [
  ["publish+take", publishTake],
  ["publish, 10 subscribers", publishFanOut],
  ["publish+lease+ack", leaseAck],
  ["streaming consumer + ack", consumerAck],
  ["publish+take, 1000 topics", manyTopics],
];

console.log(`## engine: ${N.toLocaleString("en-US")} operations per case, best of ${ROUNDS} rounds (ops/s; best, since the machine may be shared)\n`);
for (const [name, run] of cases) {
  run(); // warm-up
  const results = Array.from({ length: ROUNDS }, run).sort((a, b) => a - b);
  console.log(
    `${name.padEnd(28)} ${Math.round(results[ROUNDS - 1]!)
      .toLocaleString("en-US")
      .padStart(12)}`,
  );
}
