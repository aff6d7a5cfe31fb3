// The bus: topics, ids, queues, fan-out, competing consumers, leases and limits.
// No sockets, no timers: transports call in, and the server calls tick() to let time pass.

import { checkDelay, checkLease } from "./durations.ts";
import { BusError } from "./errors.ts";
import { MinHeap } from "./heap.ts";
import { type Message, messageCost } from "./message.ts";
import type { Consumer, Delayed, Lease, Subscriber, Topic } from "./topic.ts";
import { TopicRegistry } from "./topic-registry.ts";
import { checkTopicName, deadTopicOf, DEAD_SUFFIX } from "./topic-name.ts";
import { type Change, Uncommitted } from "./uncommitted.ts";
import { MemoryStore, type Store } from "../store/store.ts";

export type OverflowPolicy = "drop-oldest" | "reject";
export type DropReason = "overflow" | "memory" | "age" | "purge" | "delete";

export interface BusLimits {
  /** Largest payload in bytes. */
  maxMessageSize: number;
  /** Most messages a topic holds (queued + leased + delayed). */
  maxQueue: number;
  /** Most bytes a topic holds, payload plus per-message overhead. */
  maxQueueBytes: number;
  /** Global budget over every topic, same measure. */
  maxMemory: number;
  /** What a write to a full topic does. Dead-letter topics always drop their oldest. */
  overflow: OverflowPolicy;
  /** Queued messages older than this (ms) expire; 0 keeps them until consumed or dropped. */
  maxAge: number;
  /** Lease time in ms when a consumer asks for a lease without saying how long. */
  defaultLease: number;
  /** Deliveries before a returned message goes to `<topic>.dead`, unless the consumer says. */
  maxDeliveries: number;
  /** Most topics in use at once (holding a message, a subscriber or a consumer); idle ones do not count. */
  maxTopics: number;
  /** Most last ids of let-go topics remembered by name; older ones raise a bus-wide id floor. */
  maxTombstones: number;
}

export const DEFAULT_LIMITS: BusLimits = {
  maxMessageSize: 1048576,
  maxQueue: 100000,
  maxQueueBytes: 64 * 1048576,
  maxMemory: 256 * 1048576,
  overflow: "drop-oldest",
  maxAge: 0,
  defaultLease: 30000,
  maxDeliveries: 5,
  maxTopics: 10000,
  maxTombstones: 10000,
};

export interface BusEvents {
  /** Messages left a topic unconsumed. The server logs this, rate-limited. */
  dropped?(topic: string, reason: DropReason, count: number): void;
  /** A message moved to its dead-letter topic. */
  deadLettered?(message: Message, deadTopic: string): void;
}

export interface BusOptions {
  limits?: Partial<BusLimits>;
  store?: Store;
  events?: BusEvents;
  now?: () => number;
}

export interface TakeOptions {
  /** Lease time in ms (at-least-once); absent: at-most-once. */
  lease?: number;
  maxDeliveries?: number;
}

export interface BusTotals {
  messagesIn: number;
  messagesOut: number;
  dropped: number;
  expired: number;
  redelivered: number;
  deadLettered: number;
  acked: number;
}

export class Bus {
  readonly limits: BusLimits;
  readonly store: Store;
  readonly totals: BusTotals = {
    messagesIn: 0,
    messagesOut: 0,
    dropped: 0,
    expired: 0,
    redelivered: 0,
    deadLettered: 0,
    acked: 0,
  };
  private readonly topics: TopicRegistry;
  private readonly leaseTimers = new MinHeap<Lease>();
  private liveLeases = 0;
  private readonly delayedTimers = new MinHeap<Delayed>();
  private liveDelayed = 0;
  private readonly consumerLeases = new Map<Consumer, Set<Lease>>();
  private readonly events: BusEvents;
  private readonly now: () => number;
  private bytesHeld = 0;
  private dispatching = new Set<Topic>();
  private readonly uncommitted: Uncommitted;

  constructor(options: BusOptions = {}) {
    this.limits = { ...DEFAULT_LIMITS, ...options.limits };
    this.store = options.store ?? new MemoryStore();
    this.events = options.events ?? {};
    this.now = options.now ?? Date.now;
    this.topics = new TopicRegistry(this.limits.maxTopics, this.limits.maxTombstones, this.now);
    this.uncommitted = new Uncommitted(this.store, (changes) => this.undoUncommitted(changes));
    this.restore();
  }

  /** Bytes held over every topic (payload plus overhead), against `maxMemory`. */
  get bytes(): number {
    return this.bytesHeld;
  }

  // ---- writing ----

  /**
   * Writes a message: gives it the topic's next id, sends it to every subscriber and queues it.
   * The bus keeps `payload` as given: pass bytes nobody will change afterwards.
   */
  publish(topicName: string, payload: Uint8Array): Message {
    if (payload.length > this.limits.maxMessageSize) {
      throw new BusError(
        "TOO_LARGE",
        `message of ${payload.length} bytes is larger than the limit of ${this.limits.maxMessageSize} bytes`,
      );
    }
    const topic = this.topics.use(topicName);
    try {
      return this.append(topic, payload, undefined, 0);
    } catch (error) {
      this.topics.settle(topic); // a refused write to a new topic leaves no topic behind
      throw error;
    }
  }

  /** How many subscribers a write to this topic reaches now. */
  subscriberCount(topicName: string): number {
    return this.topics.get(topicName)?.subscriberCount ?? 0;
  }

  private append(topic: Topic, payload: Uint8Array, origin: Message["origin"], deliveries: number): Message {
    const cost = messageCost(payload.length);
    this.makeRoom(topic, cost);
    const message: Message = {
      id: ++topic.lastId,
      topic: topic.name,
      created: this.now(),
      payload,
      deliveries,
      origin, // always present (maybe undefined): one object shape for every message
    };
    topic.queue.push(message);
    topic.bytes += cost;
    this.bytesHeld += cost;
    topic.counters.published++;
    topic.counters.bytesIn += payload.length;
    this.totals.messagesIn++;
    this.store.added(message);
    this.uncommitted.record({ kind: "added", topic, message, deliveries });
    for (const subscriber of topic.subscribers) subscriber.send(message);
    if (topic.waiting.length > 0) this.dispatch(topic);
    return message;
  }

  /**
   * Drops the oldest queued messages until `cost` fits, or refuses the write under `reject`.
   * Victims are only forgotten once the write is sure to fit: a write refused anyway drops nothing.
   */
  private makeRoom(topic: Topic, cost: number): void {
    const { maxQueue, maxQueueBytes, maxMemory } = this.limits;
    // The common case, on every write: room enough, nothing to allocate or decide.
    if (topic.held < maxQueue && topic.bytes + cost <= maxQueueBytes && this.bytesHeld + cost <= maxMemory) return;
    const policy = topic.name.endsWith(DEAD_SUFFIX) ? "drop-oldest" : this.limits.overflow;
    const victims: Message[] = [];
    let freed = 0;
    let reason: DropReason = "overflow";
    for (;;) {
      const countFull = topic.held >= maxQueue;
      const topicFull = countFull || topic.bytes - freed + cost > maxQueueBytes;
      const busFull = this.bytesHeld - freed + cost > maxMemory;
      if (!topicFull && !busFull) break;
      const victim = policy === "drop-oldest" ? topic.queue.shift() : undefined;
      if (!victim) {
        for (let i = victims.length - 1; i >= 0; i--) topic.queue.unshift(victims[i]!);
        if (topicFull) {
          throw new BusError(
            "TOPIC_FULL",
            countFull
              ? `topic full: ${topic.name} holds ${topic.held} messages (limit ${maxQueue})`
              : `topic full: ${topic.name} holds ${topic.bytes} bytes (limit ${maxQueueBytes})`,
          );
        }
        throw new BusError("BUS_FULL", `bus full: ${this.bytesHeld} bytes held (limit ${maxMemory})`);
      }
      reason = topicFull ? "overflow" : "memory";
      victims.push(victim);
      freed += messageCost(victim.payload.length);
    }
    for (const victim of victims) this.forget(topic, victim);
    if (victims.length > 0) this.reportDrop(topic, reason, victims.length);
  }

  private reportDrop(topic: Topic, reason: DropReason, count: number): void {
    if (reason === "age") {
      topic.counters.expired += count;
      this.totals.expired += count;
    } else {
      topic.counters.dropped += count;
      this.totals.dropped += count;
    }
    this.events.dropped?.(topic.name, reason, count);
  }

  /** A message leaves its topic for good: memory and store forget it. `deliveries`: its count before, for an undo. */
  private forget(topic: Topic, message: Message, deliveries = message.deliveries): void {
    const cost = messageCost(message.payload.length);
    topic.bytes -= cost;
    this.bytesHeld -= cost;
    this.store.removed(topic.name, message.id);
    this.uncommitted.record({ kind: "removed", topic, message, deliveries });
  }

  // ---- taking ----

  /** Takes the oldest queued message, or undefined when there is none. */
  take(topicName: string, options: TakeOptions = {}): Message | undefined {
    if (options.lease !== undefined) checkLease(options.lease);
    const topic = this.topics.get(topicName);
    if (!topic) {
      checkTopicName(topicName);
      return undefined;
    }
    if (this.limits.maxAge > 0) this.expireOld(topic, this.now());
    const message = topic.queue.shift();
    if (message) this.handOut(topic, message, options.lease, options.maxDeliveries, undefined);
    this.topics.settle(topic);
    return message;
  }

  private handOut(
    topic: Topic,
    message: Message,
    lease: number | undefined,
    maxDeliveries: number | undefined,
    consumer: Consumer | undefined,
  ): void {
    message.deliveries++;
    topic.counters.consumed++;
    this.totals.messagesOut++;
    if (message.deliveries > 1) {
      topic.counters.redelivered++;
      this.totals.redelivered++;
    }
    if (lease === undefined) {
      this.forget(topic, message, message.deliveries - 1);
      return;
    }
    const expires = this.now() + Math.max(1, lease);
    const entry: Lease = {
      message,
      topic,
      delivery: message.deliveries,
      expires,
      length: Math.max(1, lease),
      timer: expires,
      maxDeliveries: maxDeliveries ?? this.limits.maxDeliveries,
      consumer: consumer?.streaming ? consumer : undefined,
      active: true,
    };
    topic.leased.set(message.id, entry);
    this.leaseTimers.push(expires, entry);
    this.liveLeases++;
    // Ended leases leave their entry in the heap until it is due: at a high ack rate that is
    // rate x lease time entries. Compact when they outnumber the live ones, so the heap stays
    // within twice the leases actually held (which the topics' limits bound).
    this.compactLeaseTimers();
    if (entry.consumer) {
      let set = this.consumerLeases.get(entry.consumer);
      if (!set) this.consumerLeases.set(entry.consumer, (set = new Set()));
      set.add(entry);
    }
    this.store.delivered(message);
    this.uncommitted.record({ kind: "leased", topic, message, deliveries: message.deliveries - 1, lease: entry });
  }

  /**
   * Registers a consumer: it gets queued messages now and new ones as they come, while it has
   * credit. One-shot consumers leave after one message; streaming ones stay until cancelled.
   */
  consume(topicName: string, consumer: Consumer): void {
    checkTopicName(topicName);
    if (consumer.lease !== undefined) checkLease(consumer.lease);
    const topic = this.topics.use(topicName); // BUS_FULL here registers nothing
    this.register(topic, consumer);
    this.topics.settle(topic);
  }

  /**
   * Registers one consumer on several topics (BLPOP a b c): it gets the first message any of them
   * has. All or nothing: a bad name, a bad lease or too many topics throws having registered
   * nowhere. A one-shot consumer served during registration is left registered nowhere either.
   */
  consumeAny(topicNames: string[], consumer: Consumer): void {
    for (const name of topicNames) checkTopicName(name);
    if (consumer.lease !== undefined) checkLease(consumer.lease);
    this.topics.reserve(topicNames);
    const registered: Topic[] = [];
    for (const name of topicNames) {
      if (consumer.credit <= 0) break;
      const topic = this.topics.use(name);
      registered.push(topic);
      this.register(topic, consumer);
    }
    if (!consumer.streaming && consumer.credit <= 0) {
      for (const topic of registered) this.leave(topic, consumer);
    }
    for (const topic of registered) this.topics.settle(topic);
  }

  private register(topic: Topic, consumer: Consumer): void {
    if (consumer.streaming) topic.streamingConsumers.add(consumer);
    this.enqueueWaiting(topic, consumer);
    this.dispatch(topic);
  }

  /** Takes a consumer off a topic's waiting list. */
  private leave(topic: Topic, consumer: Consumer): void {
    if (topic.waitingSet.delete(consumer)) topic.waiting.removeFirst((c) => c === consumer);
  }

  /** Gives a consumer more credit (a streaming at-most-once consumer that is ready for more). */
  grant(topicName: string, consumer: Consumer, credit: number): void {
    const topic = this.topics.get(topicName);
    if (!topic) return;
    consumer.credit += credit;
    this.enqueueWaiting(topic, consumer);
    this.dispatch(topic);
  }

  /**
   * Removes a consumer. A streaming consumer's leases go back to the queue (its connection
   * closed: the messages it held were not processed).
   */
  cancel(topicName: string, consumer: Consumer): void {
    const topic = this.topics.get(topicName);
    if (!topic) return;
    this.leave(topic, consumer);
    topic.streamingConsumers.delete(consumer);
    const leases = this.consumerLeases.get(consumer);
    this.consumerLeases.delete(consumer);
    if (leases) this.returnToQueues([...leases], []);
    this.topics.settle(topic);
  }

  /**
   * Stops handing a streaming consumer new messages, but leaves it the leases it holds: it may
   * still ack or nack them (a consumer finishing its work before it leaves). cancel() later
   * returns whatever it still holds.
   */
  stopConsuming(topicName: string, consumer: Consumer): void {
    const topic = this.topics.get(topicName);
    if (!topic) return;
    this.leave(topic, consumer);
    topic.streamingConsumers.delete(consumer);
    this.topics.settle(topic);
  }

  private enqueueWaiting(topic: Topic, consumer: Consumer): void {
    if (consumer.credit <= 0 || topic.waitingSet.has(consumer)) return;
    if (consumer.streaming && !topic.streamingConsumers.has(consumer)) return;
    topic.waiting.push(consumer);
    topic.waitingSet.add(consumer);
  }

  /** Hands queued messages to waiting consumers, one each in turn (fair round-robin). */
  private dispatch(topic: Topic): void {
    if (this.dispatching.has(topic)) return;
    this.dispatching.add(topic);
    try {
      if (topic.queue.length > 0 && topic.waiting.length > 0) this.expireOld(topic, this.now());
      while (topic.queue.length > 0 && topic.waiting.length > 0) {
        const consumer = topic.waiting.shift()!;
        topic.waitingSet.delete(consumer);
        if (consumer.credit <= 0) continue;
        const message = topic.queue.shift()!;
        consumer.credit--;
        this.handOut(topic, message, consumer.lease, consumer.maxDeliveries, consumer);
        if (consumer.credit > 0 && consumer.streaming) this.enqueueWaiting(topic, consumer);
        consumer.deliver(message);
      }
    } finally {
      this.dispatching.delete(topic);
    }
    this.topics.settle(topic);
  }

  // ---- leases ----

  /** Ends a lease: the message is done. `delivery`, when given, must be the lease's own. */
  ack(topicName: string, id: number, delivery?: number): void {
    const lease = this.leaseOf(topicName, id, delivery);
    this.endLease(lease, "ack", 0);
  }

  /**
   * Ends a lease and returns the message to the head of the queue (after `delay` ms), or to the
   * dead-letter topic once it has been delivered `maxDeliveries` times.
   */
  nack(topicName: string, id: number, delay = 0, delivery?: number): void {
    checkDelay(delay);
    const lease = this.leaseOf(topicName, id, delivery);
    this.endLease(lease, "return", delay);
  }

  /**
   * Renews a lease (a consumer still at work): it now expires `leaseMs` from now, by default its
   * own length. Returns the new expiry (server ms). NO_LEASE when the message is not leased, or
   * `delivery` names an older delivery.
   */
  touch(topicName: string, id: number, leaseMs?: number, delivery?: number): number {
    if (leaseMs !== undefined) checkLease(leaseMs);
    const lease = this.leaseOf(topicName, id, delivery);
    if (leaseMs !== undefined) lease.length = Math.max(1, leaseMs);
    lease.expires = this.now() + lease.length;
    // A later expiry needs no new heap entry: tick re-arms the lease when its entry comes due. An
    // earlier one does; the old entry is then stale (tick skips it, compaction drops it).
    if (lease.expires < lease.timer) {
      lease.timer = lease.expires;
      this.leaseTimers.push(lease.expires, lease);
      this.compactLeaseTimers();
    }
    return lease.expires;
  }

  /** Ended or renewed leases leave stale heap entries: drop them once they outnumber the live ones. */
  private compactLeaseTimers(): void {
    if (this.leaseTimers.size > 2 * this.liveLeases + 1024) {
      this.leaseTimers.retain((lease, key) => lease.active && key === lease.timer);
    }
  }

  private leaseOf(topicName: string, id: number, delivery: number | undefined): Lease {
    checkTopicName(topicName);
    const lease = this.topics.get(topicName)?.leased.get(id);
    if (!lease) throw new BusError("NO_LEASE", `no lease on message ${id} of ${topicName} (acked, expired or never taken)`);
    if (delivery !== undefined && delivery !== lease.delivery) {
      throw new BusError("NO_LEASE", `lease on message ${id} of ${topicName} expired and it was delivered again`);
    }
    return lease;
  }

  private endLease(lease: Lease, how: "ack" | "return", delay: number, dispatch = true): void {
    if (!lease.active) return;
    lease.active = false;
    this.liveLeases--;
    const { topic, message } = lease;
    topic.leased.delete(message.id);
    if (lease.consumer) {
      this.consumerLeases.get(lease.consumer)?.delete(lease);
      lease.consumer.credit++;
      this.enqueueWaiting(topic, lease.consumer);
    }
    if (how === "ack") {
      topic.counters.acked++;
      this.totals.acked++;
      this.forget(topic, message);
    } else if (message.deliveries >= lease.maxDeliveries && !topic.name.endsWith(DEAD_SUFFIX)) {
      // (A dead-letter topic's own consumers retry as often as they like: its messages already
      // carry their failed count, and moving them again would only renumber them.)
      this.deadLetter(topic, message);
    } else if (delay > 0) {
      const delayed: Delayed = { message, topic, active: true };
      topic.delayedMessages.add(delayed);
      this.liveDelayed++;
      this.delayedTimers.push(this.now() + delay, delayed);
    } else {
      topic.queue.unshift(message);
    }
    if (dispatch) this.dispatch(topic);
  }

  /**
   * Puts several messages back at once (leases expired or cancelled together, delayed nacks due
   * together): highest id first, each to the head of its queue, so that the heads keep id order;
   * only then are they handed out.
   */
  private returnToQueues(leases: Lease[], released: Delayed[]): void {
    if (leases.length + released.length === 0) return;
    const items: (Lease | Delayed)[] = [...leases, ...released];
    items.sort((a, b) => b.message.id - a.message.id);
    const topics = new Set<Topic>();
    for (const item of items) {
      topics.add(item.topic);
      if ("delivery" in item) {
        this.endLease(item, "return", 0, false);
      } else {
        this.endDelay(item);
        item.topic.queue.unshift(item.message);
      }
    }
    for (const topic of topics) this.dispatch(topic);
  }

  /** A delayed message is no longer held back (returned or dropped). */
  private endDelay(delayed: Delayed): void {
    delayed.active = false;
    delayed.topic.delayedMessages.delete(delayed);
    this.liveDelayed--;
  }

  private deadLetter(topic: Topic, message: Message): void {
    this.forget(topic, message);
    const origin = message.origin ?? { topic: topic.name, id: message.id, deliveries: message.deliveries };
    let dead: Topic;
    let moved: Message;
    try {
      dead = this.topics.use(deadTopicOf(origin.topic));
      // A new message of the dead topic: its own id, deliveries from 0; the failed count is in origin.
      try {
        moved = this.append(dead, message.payload, origin, 0);
      } finally {
        this.topics.settle(dead);
      }
    } catch (error) {
      // No room for it (too many topics, or a dead topic full of leased messages): a counted
      // drop, rather than an exception out of tick() or a nack that leaves the lease half-ended.
      if (!(error instanceof BusError)) throw error;
      this.reportDrop(topic, "overflow", 1);
      return;
    }
    topic.counters.deadLettered++;
    this.totals.deadLettered++;
    this.events.deadLettered?.(moved, dead.name);
  }

  // ---- subscribing ----

  /**
   * Subscribes to every message written from now on. With `since`, first replays the queued
   * messages with a greater id, in id order: no gap and no duplicate, as this is synchronous.
   * Returns the unsubscribe function.
   */
  subscribe(topicName: string, subscriber: Subscriber, since?: number): () => void {
    checkTopicName(topicName);
    const topic = this.topics.use(topicName);
    if (since !== undefined) {
      const replay = [...topic.queue].filter((m) => m.id > since).sort((a, b) => a.id - b.id);
      for (const message of replay) subscriber.send(message);
    }
    topic.subscribers.add(subscriber);
    return () => {
      topic.subscribers.delete(subscriber);
      this.topics.settle(topic);
    };
  }

  // ---- time ----

  /** Lets time pass: expires leases and old messages, releases delayed nacks, refreshes rates. */
  tick(now = this.now()): void {
    const expired: Lease[] = [];
    for (let key = this.leaseTimers.peekKey(); key !== undefined && key <= now; key = this.leaseTimers.peekKey()) {
      const lease = this.leaseTimers.pop()!;
      if (!lease.active || key !== lease.timer) continue; // ended, or a stale entry of a renewed lease
      if (lease.expires <= now) {
        expired.push(lease);
      } else {
        lease.timer = lease.expires; // renewed since: wait for the new expiry
        this.leaseTimers.push(lease.expires, lease);
      }
    }
    const released: Delayed[] = [];
    while ((this.delayedTimers.peekKey() ?? Infinity) <= now) {
      const delayed = this.delayedTimers.pop()!;
      if (delayed.active) released.push(delayed);
    }
    this.returnToQueues(expired, released);
    for (const topic of this.topics.values()) {
      if (this.limits.maxAge > 0) {
        this.expireOld(topic, now);
        this.topics.settle(topic);
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

  private expireOld(topic: Topic, now: number): void {
    const { maxAge } = this.limits;
    if (maxAge <= 0) return;
    let expired = 0;
    for (let m = topic.queue.peek(); m && now - m.created > maxAge; m = topic.queue.peek()) {
      topic.queue.shift();
      this.forget(topic, m);
      expired++;
    }
    if (expired > 0) this.reportDrop(topic, "age", expired);
  }

  // ---- administration ----

  /**
   * Drops every queued message of a topic and every one nacked with a delay. Leased ones stay
   * until acked, nacked or expired (a consumer is working on them). Returns how many were dropped.
   */
  purge(topicName: string): number {
    checkTopicName(topicName);
    const topic = this.topics.get(topicName);
    if (!topic) return 0;
    const purged = [...topic.queue];
    topic.queue.clear();
    for (const delayed of [...topic.delayedMessages]) {
      this.endDelay(delayed);
      purged.push(delayed.message);
    }
    this.dropAll(topic, purged, "purge");
    this.topics.settle(topic);
    return purged.length;
  }

  /**
   * Deletes a topic: its queued, delayed and leased messages are dropped (a later ack of one is
   * NO_LEASE) and counted, and the topic no longer exists. Its ids do not restart: a topic of the
   * same name written later continues after the last one. Refused (BAD_REQUEST) while the topic has
   * subscribers or consumers. Returns how many messages were dropped; undefined: no such topic.
   */
  deleteTopic(topicName: string): number | undefined {
    checkTopicName(topicName);
    const topic = this.topics.get(topicName);
    if (!topic) return undefined;
    this.checkUnused(topic);
    const dropped = [...topic.queue];
    topic.queue.clear();
    for (const delayed of [...topic.delayedMessages]) {
      this.endDelay(delayed);
      dropped.push(delayed.message);
    }
    for (const lease of [...topic.leased.values()]) {
      lease.active = false;
      this.liveLeases--;
      if (lease.consumer) this.consumerLeases.get(lease.consumer)?.delete(lease);
      dropped.push(lease.message);
    }
    topic.leased.clear();
    this.dropAll(topic, dropped, "delete");
    this.topics.remove(topic);
    return dropped.length;
  }

  /**
   * Deletes several topics (RESP DEL): every name is checked, and none is deleted while any of
   * them is in use. Returns how many topics existed and were deleted.
   */
  deleteTopics(topicNames: string[]): number {
    for (const name of topicNames) checkTopicName(name);
    for (const name of topicNames) {
      const topic = this.topics.get(name);
      if (topic) this.checkUnused(topic);
    }
    let deleted = 0;
    for (const name of new Set(topicNames)) if (this.deleteTopic(name) !== undefined) deleted++;
    return deleted;
  }

  private checkUnused(topic: Topic): void {
    const subscribers = topic.subscribers.size;
    const consumers = topic.consumerCount;
    if (subscribers === 0 && consumers === 0) return;
    const who = [subscribers ? `${subscribers} subscriber${subscribers === 1 ? "" : "s"}` : "", consumers ? `${consumers} consumer${consumers === 1 ? "" : "s"}` : ""];
    throw new BusError("BAD_REQUEST", `topic ${topic.name} is in use (${who.filter(Boolean).join(", ")}): it can be deleted once they leave`);
  }

  /** Forgets messages a purge or delete took out of a topic, and counts them as drops. */
  private dropAll(topic: Topic, messages: Message[], reason: DropReason): void {
    for (const message of messages) {
      const cost = messageCost(message.payload.length);
      topic.bytes -= cost;
      this.bytesHeld -= cost;
    }
    // The whole topic at once when nothing of it is left (leases survive a purge).
    if (topic.leased.size === 0) this.store.purged(topic.name);
    else for (const message of messages) this.store.removed(topic.name, message.id);
    if (messages.length > 0) this.reportDrop(topic, reason, messages.length);
    // Delayed entries stay in their heap until due (tick skips them); compact like lease timers.
    if (this.delayedTimers.size > 2 * this.liveDelayed + 1024) this.delayedTimers.retain((delayed) => delayed.active);
  }

  topic(name: string): Topic | undefined {
    return this.topics.get(name);
  }

  topicList(): Topic[] {
    return [...this.topics.values()];
  }

  /** Resolves when every change so far is as durable as the store promises; null: nothing to wait for. */
  flush(): Promise<void> | null {
    return this.store.flush();
  }

  /**
   * The store could not write a batch and forgot it (disk full): undoes its changes, newest
   * first, so memory is again what the disk holds. Taken, acked, dropped and expired messages
   * go back to the head of their queue with the delivery count they had; leases granted in the
   * batch end; messages written in the batch leave (their writers were answered STORAGE; ids
   * are not reused). Nothing is dispatched: waiting consumers get the messages at the next write
   * or grant, not in a loop of failing commits.
   */
  private undoUncommitted(changes: Change[]): void {
    // Messages put back at the head, per topic: re-sorted at the end, since an acked message
    // did not come from the head and would otherwise land behind the ones taken after it.
    const returned = new Map<Topic, number>();
    for (let i = changes.length - 1; i >= 0; i--) {
      const change = changes[i]!;
      const { topic, message } = change;
      message.deliveries = change.deliveries;
      const cost = messageCost(message.payload.length);
      if (change.kind === "added") {
        const queue = topic.queue;
        const removed = queue.at(queue.length - 1) === message ? queue.pop() : queue.removeFirst((m) => m === message);
        if (removed) {
          topic.bytes -= cost;
          this.bytesHeld -= cost;
        }
      } else if (change.kind === "removed") {
        topic.queue.unshift(message);
        returned.set(topic, (returned.get(topic) ?? 0) + 1);
        topic.bytes += cost;
        this.bytesHeld += cost;
      } else {
        const lease = change.lease;
        if (!lease.active) continue;
        lease.active = false;
        this.liveLeases--;
        topic.leased.delete(message.id);
        if (lease.consumer) {
          this.consumerLeases.get(lease.consumer)?.delete(lease);
          lease.consumer.credit++;
          this.enqueueWaiting(topic, lease.consumer);
        }
        topic.queue.unshift(message);
        returned.set(topic, (returned.get(topic) ?? 0) + 1);
      }
    }
    for (const [topic, count] of returned) {
      const head: Message[] = [];
      for (let i = 0; i < count && topic.queue.length > 0; i++) head.push(topic.queue.shift()!);
      head.sort((a, b) => b.id - a.id);
      for (const message of head) topic.queue.unshift(message);
    }
    // A topic emptied by the batch may have been let go meanwhile: it holds messages again.
    for (const change of changes) this.topics.readmit(change.topic);
  }

  /**
   * Loads what the store kept: ids continue, leased messages are queued again. Everything stored
   * comes back even past limits lowered since (a restart never loses what was acknowledged); a
   * topic left empty comes back as its last id only (a tombstone).
   */
  private restore(): void {
    for (const stored of this.store.load()) {
      if (stored.messages.length === 0) {
        this.topics.restoreEmpty(stored.name, stored.lastId);
        continue;
      }
      const topic = this.topics.use(stored.name, true);
      topic.lastId = Math.max(topic.lastId, stored.lastId);
      for (const message of stored.messages) {
        const cost = messageCost(message.payload.length);
        topic.queue.push(message);
        topic.bytes += cost;
        this.bytesHeld += cost;
      }
    }
  }
}
