// Writing a message into a topic: its id, fan-out to subscribers, the queue, and the limits a
// write must fit (dropping the oldest or refusing, per the overflow policy).

import type { BusState, DropReason } from "./bus-state.ts";
import { dispatch } from "./delivery.ts";
import { BusError } from "./errors.ts";
import { type Message, MESSAGE_OVERHEAD, messageCost, OBJECT_OVERHEAD } from "./message.ts";
import { packs } from "./message-queue.ts";
import type { Topic } from "./topic.ts";

/** Gives the message the topic's next id, sends it to every subscriber, queues it, serves a waiting consumer. */
export function append(s: BusState, topic: Topic, payload: Uint8Array, origin: Message["origin"], deliveries: number): Message {
  const cost = messageCost(payload.length);
  // One the queue cannot pack (too large, or a dead letter) stays an object: charged as one.
  const object = !packs(payload.length) || origin !== undefined;
  makeRoom(s, topic, object ? cost + OBJECT_OVERHEAD : cost);
  const message: Message = {
    id: ++topic.lastId,
    topic: topic.name,
    created: s.now(),
    payload,
    deliveries,
    origin, // always present (maybe undefined): one object shape for every message
  };
  topic.queue.push(message);
  topic.bytes += cost;
  s.bytes += cost;
  if (object) s.recharge(topic);
  topic.counters.published++;
  topic.counters.bytesIn += payload.length;
  s.totals.messagesIn++;
  s.store.added(message);
  s.uncommitted.record("added", topic, message, deliveries);
  for (const subscriber of topic.subscribers) subscriber.send(message);
  if (topic.waiting.length > 0) dispatch(s, topic);
  return message;
}

/**
 * A write whose payload, bytes[start, end), is lent and that nobody but the queue keeps (see
 * BusState.packsBorrowed): the queue copies the range into its chunks, and that is the only copy.
 * No Message object (nor view of the payload) is made for it, unless a subscriber needs one:
 * subscribers (all of them `takesLent`) are sent the range of the queue's copy (`sendLent`), or a
 * Message whose payload is a view of it, lent for the call. The store keeps nothing (the memory
 * store), so it is told nothing. Returns the id.
 */
export function appendLent(s: BusState, topic: Topic, bytes: Uint8Array, start: number, end: number): number {
  const length = end - start;
  const cost = messageCost(length);
  makeRoom(s, topic, cost);
  const id = ++topic.lastId;
  const created = s.now();
  const queue = topic.queue;
  const fanOut = topic.subscribers.size > 0;
  const at = queue.pushPacked(id, created, 0, bytes, start, end);
  topic.bytes += cost;
  s.bytes += cost;
  topic.counters.published++;
  topic.counters.bytesIn += length;
  s.totals.messagesIn++;
  if (fanOut) {
    const chunk = queue.tailBytes;
    let lent: Message | undefined;
    for (const subscriber of topic.subscribers) {
      if (subscriber.sendLent !== undefined) subscriber.sendLent(id, created, chunk, at, at + length);
      else subscriber.send((lent ??= { id, topic: topic.name, created, payload: chunk.subarray(at, at + length), deliveries: 0, origin: undefined }), true);
    }
  }
  if (topic.waiting.length > 0) dispatch(s, topic);
  return id;
}

/**
 * Drops the oldest queued messages until `cost` fits, or refuses the write under `reject`.
 * Victims are only forgotten once the write is sure to fit: a write refused anyway drops nothing.
 */
function makeRoom(s: BusState, topic: Topic, cost: number): void {
  const { maxQueue, maxQueueBytes, maxMemory } = s.limits;
  const held = topic.held;
  // The common case, on every write: room enough, nothing to allocate or decide.
  if (held < maxQueue && topic.bytes + cost <= maxQueueBytes && s.bytes + cost <= maxMemory) return;
  const policy = topic.deadLetters ? "drop-oldest" : s.limits.overflow;
  // A full topic taking its next write (drop-oldest, a store that keeps nothing), when the oldest
  // message alone makes room (it frees its messageCost): it is dropped by its size and id, with
  // no Message made for it.
  if (policy === "drop-oldest" && !s.storeKeeps && held - 1 < maxQueue) {
    const topicFull = held >= maxQueue || topic.bytes + cost > maxQueueBytes;
    const mustFree = Math.max(topic.bytes + cost - maxQueueBytes, s.bytes + cost - maxMemory);
    const queue = topic.queue;
    if (queue.dropHead(mustFree - MESSAGE_OVERHEAD)) {
      s.forgetUnkept(topic, queue.taken.id, queue.taken.length);
      s.reportDrop(topic, topicFull ? "overflow" : "memory", 1);
      return;
    }
  }
  const victims: Message[] = [];
  // Victims only read for their size and id may be views of the queue's chunks, when nothing keeps
  // them past this call (a store that keeps nothing); put back, they get their own bytes.
  const lend = !s.storeKeeps;
  let freed = 0;
  let reason: DropReason = "overflow";
  // Dropping frees at most what is queued: leased and delayed messages stay, each charged at least
  // MESSAGE_OVERHEAD + OBJECT_OVERHEAD. A write that would not fit even then is refused before
  // anything leaves the queue (put back, packed messages would be objects, which cost more).
  const kept = topic.leased.size + topic.delayedMessages.size;
  const keptBytes = kept * (MESSAGE_OVERHEAD + OBJECT_OVERHEAD);
  const fits = kept < maxQueue && keptBytes + cost <= maxQueueBytes && s.bytes - topic.bytes + keptBytes + cost <= maxMemory;
  for (;;) {
    const countFull = topic.held >= maxQueue;
    const topicFull = countFull || topic.bytes - freed + cost > maxQueueBytes;
    const busFull = s.bytes - freed + cost > maxMemory;
    if (!topicFull && !busFull) break;
    const objects = topic.queue.objects;
    const victim = policy === "drop-oldest" && fits ? topic.queue.shift(lend) : undefined;
    if (!victim) {
      for (let i = victims.length - 1; i >= 0; i--) topic.queue.unshift(lend ? { ...victims[i]!, payload: victims[i]!.payload.slice() } : victims[i]!);
      s.recharge(topic); // put back at the head, packed victims are objects now
      if (topicFull) {
        throw new BusError(
          "TOPIC_FULL",
          countFull
            ? `topic full: ${topic.name} holds ${topic.held} messages (limit ${maxQueue})`
            : `topic full: ${topic.name} holds ${topic.bytes} bytes (limit ${maxQueueBytes})`,
        );
      }
      throw new BusError("BUS_FULL", `bus full: ${s.bytes} bytes held (limit ${maxMemory})`);
    }
    reason = topicFull ? "overflow" : "memory";
    victims.push(victim);
    freed += messageCost(victim.payload.length) + (topic.queue.objects < objects ? OBJECT_OVERHEAD : 0);
  }
  for (const victim of victims) s.forget(topic, victim);
  if (victims.length > 0) s.reportDrop(topic, reason, victims.length);
}
