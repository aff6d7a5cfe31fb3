// The bus: the one door transports call for topics, ids, queues, fan-out, competing consumers,
// leases and limits. No sockets, no timers: the server calls tick() to let time pass.

import * as admin from "./admin.ts";
import { BusState, type BusEvents, type BusTotals } from "./bus-state.ts";
import { dispatch, enqueueWaiting, expireOld, handOut } from "./delivery.ts";
import { checkDelay, checkLease } from "./durations.ts";
import { BusError } from "./errors.ts";
import { type BusLimits, DEFAULT_LIMITS } from "./limits.ts";
import { type Message, messageCost } from "./message.ts";
import { endLease, returnToQueues } from "./returning.ts";
import { MemoryStore, type Store } from "./store.ts";
import type { PayloadSink } from "./message-queue.ts";
import type { Consumer, Lease, Subscriber, Topic } from "./topic.ts";
import { checkTopicName } from "./topic-name.ts";
import type { Engine, TakeOptions } from "./engine.ts";
import { undoUncommitted } from "./undo.ts";
import { append, appendLent } from "./writing.ts";

export type { BusEvents, BusTotals, DropReason } from "./bus-state.ts";
export { DEFAULT_LIMITS, type BusLimits, type OverflowPolicy } from "./limits.ts";

export interface BusOptions {
  limits?: Partial<BusLimits>;
  store?: Store;
  events?: BusEvents;
  now?: () => number;
}

/** The most messages one peek returns. */
export const MAX_PEEK = 1000;
/** How many messages a peek returns when not told (RESP PEEK, HTTP ?peek, `msgbus peek`). */
export const DEFAULT_PEEK = 10;

/** A peek's count: 1 to MAX_PEEK, or BAD_REQUEST (one rule for every engine). */
export function checkPeekCount(count: number): void {
  if (!Number.isSafeInteger(count) || count < 1 || count > MAX_PEEK) {
    throw new BusError("BAD_REQUEST", `peek count must be a whole number from 1 to ${MAX_PEEK} (got ${count})`);
  }
}

export type { TakeOptions } from "./engine.ts";

/** The in-memory engine: every call answers at once (Engine's results are never Promises here). */
export class Bus implements Engine {
  readonly limits: BusLimits;
  readonly store: Store;
  readonly totals: BusTotals;
  private readonly s: BusState;

  constructor(options: BusOptions = {}) {
    this.limits = { ...DEFAULT_LIMITS, ...options.limits };
    this.store = options.store ?? new MemoryStore();
    const now = options.now ?? Date.now;
    this.s = new BusState(this.limits, this.store, options.events ?? {}, now, (changes) => undoUncommitted(this.s, changes));
    this.totals = this.s.totals;
    this.restore();
  }

  /** Bytes held over every topic (payload plus overhead), against `maxMemory`. */
  get bytes(): number {
    return this.s.bytes;
  }

  // ---- writing ----

  /**
   * Writes a message: gives it the topic's next id, sends it to every subscriber and queues it.
   * The bus keeps `payload` as given: pass bytes nobody will change afterwards.
   */
  publish(topicName: string, payload: Uint8Array): Message {
    this.checkSize(payload.length);
    const topic = this.s.topics.use(topicName);
    try {
      return append(this.s, topic, payload, undefined, 0);
    } catch (error) {
      this.s.topics.settle(topic); // a refused write to a new topic leaves no topic behind
      throw error;
    }
  }

  /** Messages ready to take now. */
  depth(topicName: string): number {
    return this.s.topics.get(topicName)?.queue.length ?? 0;
  }

  /**
   * Writes a message whose payload is only lent for the call (a view of a socket's read buffer):
   * the bus copies what it keeps, usually straight into the topic's packed queue, so a write costs
   * no payload array and no Message object of its own. `owned`: the payload is the caller's to give
   * after all (a large argument assembled across reads), so keeping it needs no copy. Returns the id.
   */
  publishBorrowed(topicName: string, bytes: Uint8Array, owned = false, start = 0, end = bytes.length): number {
    this.checkSize(end - start);
    return this.writeBorrowed(this.s.topics.use(topicName), bytes, owned, start, end);
  }

  /**
   * PUBLISH: writes as publishBorrowed does and returns how many subscribers the write reaches
   * (subscriberCount, read as it is written: one topic lookup for both).
   */
  publishReaching(topicName: string, bytes: Uint8Array, owned = false, start = 0, end = bytes.length): number {
    this.checkSize(end - start);
    const topic = this.s.topics.use(topicName);
    const reached = topic.subscriberCount;
    this.writeBorrowed(topic, bytes, owned, start, end);
    return reached;
  }

  /** LPUSH: writes as publishBorrowed does and returns the topic's depth after (one topic lookup). */
  pushBorrowed(topicName: string, bytes: Uint8Array, owned = false, start = 0, end = bytes.length): number {
    this.checkSize(end - start);
    const topic = this.s.topics.use(topicName);
    this.writeBorrowed(topic, bytes, owned, start, end);
    return topic.queue.length;
  }

  private writeBorrowed(topic: Topic, bytes: Uint8Array, owned: boolean, start: number, end: number): number {
    try {
      // The usual case copies the range straight into the queue: no view of it is ever made.
      if (this.s.packsBorrowed(topic, end - start)) return appendLent(this.s, topic, bytes, start, end);
      const payload = bytes.subarray(start, end);
      // A copy of its own: on a Buffer (socket data) slice() would be a view pinning the whole read.
      return append(this.s, topic, owned ? payload : new Uint8Array(payload), undefined, 0).id;
    } catch (error) {
      this.s.topics.settle(topic); // a refused write to a new topic leaves no topic behind
      throw error;
    }
  }

  private checkSize(length: number): void {
    if (length > this.limits.maxMessageSize) {
      throw new BusError("TOO_LARGE", `message of ${length} bytes is larger than the limit of ${this.limits.maxMessageSize} bytes`);
    }
  }

  /** How many subscribers a write to this topic reaches now. */
  subscriberCount(topicName: string): number {
    return this.s.topics.get(topicName)?.subscriberCount ?? 0;
  }

  // ---- taking ----

  /** Takes the oldest queued message, or undefined when there is none. */
  take(topicName: string, options: TakeOptions = {}): Message | undefined {
    if (options.lease !== undefined) checkLease(options.lease);
    const topic = this.s.topics.get(topicName);
    if (!topic) {
      checkTopicName(topicName);
      return undefined;
    }
    if (this.limits.maxAge > 0) expireOld(this.s, topic, this.s.now());
    const message = topic.queue.shift();
    if (message) handOut(this.s, topic, message, options.lease, options.maxDeliveries, undefined);
    this.s.topics.settle(topic);
    return message;
  }

  /**
   * Takes the oldest queued message at-most-once (no lease) straight into `sink`: its payload is
   * written from the queue, with no Message object and no copy, when nothing else needs the
   * message (a store that keeps nothing). Counts, memory and expiry as take() does. Returns false
   * when there is none (nothing written).
   */
  takeInto(topicName: string, sink: PayloadSink): boolean {
    if (this.s.storeKeeps) {
      const message = this.take(topicName);
      if (message) sink.bulkRange(message.payload, 0, message.payload.length);
      return message !== undefined;
    }
    const topic = this.s.topics.get(topicName);
    if (!topic) {
      checkTopicName(topicName);
      return false;
    }
    if (this.limits.maxAge > 0) expireOld(this.s, topic, this.s.now());
    const queue = topic.queue;
    const took = queue.shiftInto(sink);
    // What handOut and forget do for a message taken without a lease, by its id, length and count.
    if (took) this.s.forgetTaken(topic, queue.taken.id, queue.taken.length, queue.taken.deliveries + 1);
    this.s.topics.settle(topic);
    return took;
  }

  /**
   * Looks at up to `count` (1..MAX_PEEK) queued messages with an id greater than `since`, in id
   * order, without taking them: nothing changes (no delivery counted, no lease). Only the queue is
   * looked at: leased and delayed messages are not queued. Past --max-age, a message is left out.
   */
  peek(topicName: string, count: number, since = 0): Message[] {
    checkTopicName(topicName);
    checkPeekCount(count);
    const topic = this.s.topics.get(topicName);
    if (!topic) return [];
    const now = this.s.now();
    const maxAge = this.limits.maxAge;
    const byId = (a: Message, b: Message) => a.id - b.id;
    // The queue is in id order but for returned messages at its head: keep the `count` smallest
    // ids, sorting whenever twice that many are held (O(n log count), bounded memory).
    const picked: Message[] = [];
    for (const message of topic.queue) {
      if (message.id <= since || (maxAge > 0 && now - message.created > maxAge)) continue;
      picked.push(message);
      if (picked.length >= count * 2) {
        picked.sort(byId);
        picked.length = count;
      }
    }
    picked.sort(byId);
    if (picked.length > count) picked.length = count;
    return picked;
  }

  /**
   * Registers a consumer: it gets queued messages now and new ones as they come, while it has
   * credit. One-shot consumers leave after one message; streaming ones stay until cancelled.
   */
  consume(topicName: string, consumer: Consumer): void {
    checkTopicName(topicName);
    if (consumer.lease !== undefined) checkLease(consumer.lease);
    const topic = this.s.topics.use(topicName); // BUS_FULL here registers nothing
    this.register(topic, consumer);
    this.s.topics.settle(topic);
  }

  /**
   * Registers one consumer on several topics (BLPOP a b c): it gets the first message any of them
   * has. All or nothing: a bad name, a bad lease or too many topics throws having registered
   * nowhere. A one-shot consumer served during registration is left registered nowhere either.
   */
  consumeAny(topicNames: string[], consumer: Consumer): void {
    for (const name of topicNames) checkTopicName(name);
    if (consumer.lease !== undefined) checkLease(consumer.lease);
    this.s.topics.reserve(topicNames);
    const registered: Topic[] = [];
    for (const name of topicNames) {
      if (consumer.credit <= 0) break;
      const topic = this.s.topics.use(name);
      registered.push(topic);
      this.register(topic, consumer);
    }
    if (!consumer.streaming && consumer.credit <= 0) {
      for (const topic of registered) this.leave(topic, consumer);
    }
    for (const topic of registered) this.s.topics.settle(topic);
  }

  private register(topic: Topic, consumer: Consumer): void {
    if (consumer.streaming) topic.streamingConsumers.add(consumer);
    enqueueWaiting(topic, consumer);
    dispatch(this.s, topic);
  }

  /** Takes a consumer off a topic's waiting list. */
  private leave(topic: Topic, consumer: Consumer): void {
    if (topic.waitingSet.delete(consumer)) topic.waiting.removeFirst((c) => c === consumer);
  }

  /** Gives a consumer more credit (a streaming at-most-once consumer that is ready for more). */
  grant(topicName: string, consumer: Consumer, credit: number): void {
    const topic = this.s.topics.get(topicName);
    if (!topic) return;
    consumer.credit += credit;
    enqueueWaiting(topic, consumer);
    dispatch(this.s, topic);
  }

  /**
   * Removes a consumer. A streaming consumer's leases go back to the queue (its connection
   * closed: the messages it held were not processed).
   */
  cancel(topicName: string, consumer: Consumer): void {
    const topic = this.s.topics.get(topicName);
    if (!topic) return;
    this.leave(topic, consumer);
    topic.streamingConsumers.delete(consumer);
    returnToQueues(this.s, this.s.leases.takeLeasesOf(consumer), []);
    this.s.topics.settle(topic);
  }

  /**
   * Stops handing a streaming consumer new messages, but leaves it the leases it holds: it may
   * still ack or nack them (a consumer finishing its work before it leaves). cancel() later
   * returns whatever it still holds.
   */
  stopConsuming(topicName: string, consumer: Consumer): void {
    const topic = this.s.topics.get(topicName);
    if (!topic) return;
    this.leave(topic, consumer);
    topic.streamingConsumers.delete(consumer);
    this.s.topics.settle(topic);
  }

  // ---- leases ----

  /** Ends a lease: the message is done. `delivery`, when given, must be the lease's own. */
  ack(topicName: string, id: number, delivery?: number): void {
    const lease = this.leaseOf(topicName, id, delivery);
    endLease(this.s, lease, "ack", 0);
  }

  /**
   * Ends a lease and returns the message to the head of the queue (after `delay` ms), or to the
   * dead-letter topic once it has been delivered `maxDeliveries` times.
   */
  nack(topicName: string, id: number, delay = 0, delivery?: number): void {
    checkDelay(delay);
    const lease = this.leaseOf(topicName, id, delivery);
    endLease(this.s, lease, "return", delay);
  }

  /**
   * Renews a lease (a consumer still at work): it now expires `leaseMs` from now, by default its
   * own length. Returns the new expiry (server ms). NO_LEASE when the message is not leased, or
   * `delivery` names an older delivery.
   */
  touch(topicName: string, id: number, leaseMs?: number, delivery?: number): number {
    if (leaseMs !== undefined) checkLease(leaseMs);
    const lease = this.leaseOf(topicName, id, delivery);
    this.s.leases.renew(lease, leaseMs !== undefined ? Math.max(1, leaseMs) : lease.length, this.s.now());
    return lease.expires;
  }

  private leaseOf(topicName: string, id: number, delivery: number | undefined): Lease {
    checkTopicName(topicName);
    const lease = this.s.topics.get(topicName)?.leased.get(id);
    if (!lease) throw new BusError("NO_LEASE", `no lease on message ${id} of ${topicName} (acked, expired or never taken)`);
    if (delivery !== undefined && delivery !== lease.message.deliveries) {
      throw new BusError("NO_LEASE", `lease on message ${id} of ${topicName} expired and it was delivered again`);
    }
    return lease;
  }

  // ---- subscribing ----

  /**
   * Subscribes to every message written from now on. With `since`, first replays the queued
   * messages with a greater id, in id order: no gap and no duplicate, as this is synchronous.
   * Returns the unsubscribe function.
   */
  subscribe(topicName: string, subscriber: Subscriber, since?: number): () => void {
    checkTopicName(topicName);
    const topic = this.s.topics.use(topicName);
    if (since !== undefined) {
      const replay = [...topic.queue].filter((m) => m.id > since).sort((a, b) => a.id - b.id);
      for (const message of replay) subscriber.send(message);
    }
    if (!topic.subscribers.has(subscriber) && !subscriber.takesLent) topic.keepingSubscribers++;
    topic.subscribers.add(subscriber);
    return () => {
      if (topic.subscribers.delete(subscriber) && !subscriber.takesLent) topic.keepingSubscribers--;
      this.s.topics.settle(topic);
    };
  }

  // ---- time ----

  /** Lets time pass: expires leases and old messages, releases delayed nacks, refreshes rates. */
  tick(now = this.s.now()): void {
    const { expired, released } = this.s.leases.due(now);
    returnToQueues(this.s, expired, released);
    for (const topic of this.s.topics.values()) {
      if (this.limits.maxAge > 0) {
        expireOld(this.s, topic, now);
        this.s.topics.settle(topic);
      }
      const elapsed = now - topic.lastCounted.at;
      if (elapsed >= 1000) {
        const c = topic.counters;
        topic.rateIn = ((c.published - topic.lastCounted.published) * 1000) / elapsed;
        topic.rateOut = ((c.consumed - topic.lastCounted.consumed) * 1000) / elapsed;
        topic.lastCounted = { published: c.published, consumed: c.consumed, at: now };
      }
    }
  }

  // ---- administration ----

  /**
   * Drops every queued message of a topic and every one nacked with a delay. Leased ones stay
   * until acked, nacked or expired (a consumer is working on them). Returns how many were dropped.
   */
  purge(topicName: string): number {
    return admin.purge(this.s, topicName);
  }

  /**
   * Deletes a topic: its queued, delayed and leased messages are dropped (a later ack of one is
   * NO_LEASE) and counted, and the topic no longer exists. Its ids do not restart: a topic of the
   * same name written later continues after the last one. Refused (BAD_REQUEST) while the topic has
   * subscribers or consumers. Returns how many messages were dropped; undefined: no such topic.
   */
  deleteTopic(topicName: string): number | undefined {
    return admin.deleteTopic(this.s, topicName);
  }

  /**
   * Deletes several topics (RESP DEL): every name is checked, and none is deleted while any of
   * them is in use. Returns how many topics existed and were deleted.
   */
  deleteTopics(topicNames: string[]): number {
    return admin.deleteTopics(this.s, topicNames);
  }

  topic(name: string): Topic | undefined {
    return this.s.topics.get(name);
  }

  topicList(): Topic[] {
    return [...this.s.topics.values()];
  }

  /** Resolves when every change so far is as durable as the store promises; null: nothing to wait for. */
  flush(): Promise<void> | null {
    return this.store.flush();
  }

  /**
   * Loads what the store kept: ids continue, leased messages are queued again. Everything stored
   * comes back even past limits lowered since (a restart never loses what was acknowledged); a
   * topic left empty comes back as its last id only (a tombstone).
   */
  private restore(): void {
    for (const stored of this.store.load()) {
      if (stored.messages.length === 0) {
        this.s.topics.restoreEmpty(stored.name, stored.lastId);
        continue;
      }
      const topic = this.s.topics.use(stored.name, true);
      topic.lastId = Math.max(topic.lastId, stored.lastId);
      for (const message of stored.messages) {
        const cost = messageCost(message.payload.length);
        topic.queue.push(message);
        topic.bytes += cost;
        this.s.bytes += cost;
      }
      this.s.recharge(topic); // ones the queue could not pack (large, dead letters) are objects
    }
  }
}
