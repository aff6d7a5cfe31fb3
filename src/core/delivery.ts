// Handing messages out: waiting consumers served in turn, each message at-most-once (forgotten)
// or under a lease, and queued messages past maxAge expired before anyone gets them.

import type { BusState } from "./bus-state.ts";
import type { Message } from "./message.ts";
import type { Consumer, Topic } from "./topic.ts";

/** Puts a consumer with credit at the end of a topic's waiting list, once. */
export function enqueueWaiting(topic: Topic, consumer: Consumer): void {
  if (consumer.credit <= 0 || topic.waitingSet.has(consumer)) return;
  if (consumer.streaming && !topic.streamingConsumers.has(consumer)) return;
  topic.waiting.push(consumer);
  topic.waitingSet.add(consumer);
}

/** Hands queued messages to waiting consumers, one each in turn (fair round-robin). */
export function dispatch(s: BusState, topic: Topic): void {
  // A consumer's deliver() that calls back into the bus (an ack) must not start a second loop here.
  if (topic.dispatching) return;
  topic.dispatching = true;
  try {
    if (topic.queue.length > 0 && topic.waiting.length > 0) expireOld(s, topic, s.now());
    while (topic.queue.length > 0 && topic.waiting.length > 0) {
      const consumer = topic.waiting.shift()!;
      topic.waitingSet.delete(consumer);
      if (consumer.credit <= 0) continue;
      const message = topic.queue.shift()!;
      consumer.credit--;
      handOut(s, topic, message, consumer.lease, consumer.maxDeliveries, consumer);
      if (consumer.credit > 0 && consumer.streaming) enqueueWaiting(topic, consumer);
      consumer.deliver(message);
    }
  } finally {
    topic.dispatching = false;
  }
  s.topics.settle(topic);
}

/** A message taken off the queue goes to a consumer: forgotten (no lease) or leased. */
export function handOut(
  s: BusState,
  topic: Topic,
  message: Message,
  lease: number | undefined,
  maxDeliveries: number | undefined,
  consumer: Consumer | undefined,
): void {
  message.deliveries++;
  topic.counters.consumed++;
  s.totals.messagesOut++;
  if (message.deliveries > 1) {
    topic.counters.redelivered++;
    s.totals.redelivered++;
  }
  if (lease === undefined) {
    s.forget(topic, message, message.deliveries - 1);
    return;
  }
  const entry = s.leases.grant(topic, message, Math.max(1, lease), maxDeliveries ?? s.limits.maxDeliveries, consumer, s.now());
  s.recharge(topic); // leased, it is an object (it may have been one already, put back at the head)
  s.store.delivered(message);
  s.uncommitted.record("leased", topic, message, message.deliveries - 1, entry);
}

/** Drops the queued messages older than maxAge, oldest first. */
export function expireOld(s: BusState, topic: Topic, now: number): void {
  const { maxAge } = s.limits;
  if (maxAge <= 0) return;
  let expired = 0;
  for (let created = topic.queue.peekCreated(); created !== undefined && now - created > maxAge; created = topic.queue.peekCreated()) {
    s.forget(topic, topic.queue.shift()!);
    expired++;
  }
  if (expired > 0) s.reportDrop(topic, "age", expired);
}
