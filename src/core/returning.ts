// What an ended lease means: acked and forgotten, back to the head of the queue (now or after a
// delay), or on to the dead-letter topic once delivered maxDeliveries times.

import type { BusState } from "./bus-state.ts";
import { dispatch, enqueueWaiting } from "./delivery.ts";
import { BusError } from "./errors.ts";
import type { Message } from "./message.ts";
import type { Delayed, Lease, Topic } from "./topic.ts";
import { deadTopicOf } from "./topic-name.ts";
import { append } from "./writing.ts";

export function endLease(s: BusState, lease: Lease, how: "ack" | "return", delay: number, thenDispatch = true): void {
  if (!s.leases.end(lease)) return;
  const { topic, message } = lease;
  if (lease.consumer) {
    lease.consumer.credit++;
    enqueueWaiting(topic, lease.consumer);
  }
  if (how === "ack") {
    topic.counters.acked++;
    s.totals.acked++;
    s.forget(topic, message);
  } else if (message.deliveries >= lease.maxDeliveries && !topic.deadLetters) {
    // (A dead-letter topic's own consumers retry as often as they like: its messages already
    // carry their failed count, and moving them again would only renumber them.)
    deadLetter(s, topic, message);
  } else if (delay > 0) {
    s.leases.delay(topic, message, s.now() + delay);
  } else {
    topic.queue.unshift(message);
  }
  s.recharge(topic);
  if (thenDispatch) dispatch(s, topic);
}

/**
 * Puts several messages back at once (leases expired or cancelled together, delayed nacks due
 * together): highest id first, each to the head of its queue, so that the heads keep id order;
 * only then are they handed out.
 */
export function returnToQueues(s: BusState, leases: Lease[], released: Delayed[]): void {
  if (leases.length + released.length === 0) return;
  const items: (Lease | Delayed)[] = [...leases, ...released];
  items.sort((a, b) => b.message.id - a.message.id);
  const topics = new Set<Topic>();
  for (const item of items) {
    topics.add(item.topic);
    if ("expires" in item) {
      endLease(s, item, "return", 0, false);
    } else {
      s.leases.endDelay(item);
      item.topic.queue.unshift(item.message);
    }
  }
  for (const topic of topics) {
    s.recharge(topic);
    dispatch(s, topic);
  }
}

function deadLetter(s: BusState, topic: Topic, message: Message): void {
  s.forget(topic, message);
  const origin = message.origin ?? { topic: topic.name, id: message.id, deliveries: message.deliveries };
  let dead: Topic;
  let moved: Message;
  try {
    dead = s.topics.use(deadTopicOf(origin.topic));
    // A new message of the dead topic: its own id, deliveries from 0; the failed count is in origin.
    try {
      moved = append(s, dead, message.payload, origin, 0);
    } finally {
      s.topics.settle(dead);
    }
  } catch (error) {
    // No room for it (too many topics, or a dead topic full of leased messages): a counted
    // drop, rather than an exception out of tick() or a nack that leaves the lease half-ended.
    if (!(error instanceof BusError)) throw error;
    s.reportDrop(topic, "overflow", 1);
    return;
  }
  topic.counters.deadLettered++;
  s.totals.deadLettered++;
  s.events.deadLettered?.(moved, dead.name);
}
