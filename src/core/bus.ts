// The bus: topics, ids, queues, fan-out, competing consumers, leases and limits.
// No sockets, no timers: transports call in, and the server calls tick() to let time pass.

import { BusError } from "./errors.ts";
import { MinHeap } from "./heap.ts";
import { type Message, messageCost } from "./message.ts";
import { type Consumer, type Lease, type Subscriber, Topic } from "./topic.ts";
import { checkTopicName, deadTopicOf, DEAD_SUFFIX } from "./topic-name.ts";
import { type Change, Uncommitted } from "./uncommitted.ts";
import { MemoryStore, type Store } from "../store/store.ts";

export type OverflowPolicy = "drop-oldest" | "reject";
export type DropReason = "overflow" | "memory" | "age" | "purge";

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
  /** Most topics the bus keeps (ids must never be reused, so topics are not forgotten). */
  maxTopics: number;
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

interface Delayed {
  message: Message;
  topic: Topic;
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
  private readonly topics = new Map<string, Topic>();
  private readonly leaseTimers = new MinHeap<Lease>();
  private liveLeases = 0;
  private readonly delayedTimers = new MinHeap<Delayed>();
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
    const topic = this.topicFor(topicName);
    return this.append(topic, payload, undefined, 0);
  }

  /** How many subscribers a write to this topic reaches now. */
  subscriberCount(topicName: string): number {
    return this.topics.get(topicName)?.subscribers.size ?? 0;
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
    const topic = this.topics.get(topicName);
    if (!topic) {
      checkTopicName(topicName);
      return undefined;
    }
    if (this.limits.maxAge > 0) this.expireOld(topic, this.now());
    const message = topic.queue.shift();
    if (!message) return undefined;
    this.handOut(topic, message, options.lease, options.maxDeliveries, undefined);
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
    const entry: Lease = {
      message,
      topic,
      delivery: message.deliveries,
      expires: this.now() + Math.max(1, lease),
      maxDeliveries: maxDeliveries ?? this.limits.maxDeliveries,
      consumer: consumer?.streaming ? consumer : undefined,
      active: true,
    };
    topic.leased.set(message.id, entry);
    this.leaseTimers.push(entry.expires, entry);
    this.liveLeases++;
    // Ended leases leave their entry in the heap until it is due: at a high ack rate that is
    // rate x lease time entries. Compact when they outnumber the live ones, so the heap stays
    // within twice the leases actually held (which the topics' limits bound).
    if (this.leaseTimers.size > 2 * this.liveLeases + 1024) this.leaseTimers.retain((lease) => lease.active);
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
    const topic = this.topicFor(topicName);
    if (consumer.streaming) topic.streamingConsumers.add(consumer);
    this.enqueueWaiting(topic, consumer);
    this.dispatch(topic);
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
    if (topic.waitingSet.delete(consumer)) topic.waiting.removeFirst((c) => c === consumer);
    topic.streamingConsumers.delete(consumer);
    const leases = this.consumerLeases.get(consumer);
    this.consumerLeases.delete(consumer);
    if (leases) this.returnToQueues([...leases], []);
  }

  /**
   * Stops handing a streaming consumer new messages, but leaves it the leases it holds: it may
   * still ack or nack them (a consumer finishing its work before it leaves). cancel() later
   * returns whatever it still holds.
   */
  stopConsuming(topicName: string, consumer: Consumer): void {
    const topic = this.topics.get(topicName);
    if (!topic) return;
    if (topic.waitingSet.delete(consumer)) topic.waiting.removeFirst((c) => c === consumer);
    topic.streamingConsumers.delete(consumer);
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
    const lease = this.leaseOf(topicName, id, delivery);
    this.endLease(lease, "return", delay);
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
      topic.delayed++;
      this.delayedTimers.push(this.now() + delay, { message, topic });
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
        item.topic.delayed--;
        item.topic.queue.unshift(item.message);
      }
    }
    for (const topic of topics) this.dispatch(topic);
  }

  private deadLetter(topic: Topic, message: Message): void {
    this.forget(topic, message);
    const origin = message.origin ?? { topic: topic.name, id: message.id, deliveries: message.deliveries };
    let dead: Topic;
    let moved: Message;
    try {
      dead = this.topicFor(deadTopicOf(origin.topic));
      // A new message of the dead topic: its own id, deliveries from 0; the failed count is in origin.
      moved = this.append(dead, message.payload, origin, 0);
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
    const topic = this.topicFor(topicName);
    if (since !== undefined) {
      const replay = [...topic.queue].filter((m) => m.id > since).sort((a, b) => a.id - b.id);
      for (const message of replay) subscriber.send(message);
    }
    topic.subscribers.add(subscriber);
    return () => topic.subscribers.delete(subscriber);
  }

  // ---- time ----

  /** Lets time pass: expires leases and old messages, releases delayed nacks, refreshes rates. */
  tick(now = this.now()): void {
    const expired: Lease[] = [];
    while ((this.leaseTimers.peekKey() ?? Infinity) <= now) {
      const lease = this.leaseTimers.pop()!;
      if (lease.active && lease.expires <= now) expired.push(lease);
    }
    const released: Delayed[] = [];
    while ((this.delayedTimers.peekKey() ?? Infinity) <= now) released.push(this.delayedTimers.pop()!);
    this.returnToQueues(expired, released);
    for (const topic of this.topics.values()) {
      if (this.limits.maxAge > 0) this.expireOld(topic, now);
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

  /** Drops every queued message of a topic (leased ones stay until acked). Returns how many. */
  purge(topicName: string): number {
    checkTopicName(topicName);
    const topic = this.topics.get(topicName);
    if (!topic) return 0;
    const purged = [...topic.queue];
    topic.queue.clear();
    for (const message of purged) {
      const cost = messageCost(message.payload.length);
      topic.bytes -= cost;
      this.bytesHeld -= cost;
    }
    if (topic.leased.size === 0 && topic.delayed === 0) this.store.purged(topic.name);
    else for (const message of purged) this.store.removed(topic.name, message.id);
    const count = purged.length;
    if (count > 0) this.reportDrop(topic, "purge", count);
    return count;
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
  }

  /** The topic of that name, created on first use; only names that pass checkTopicName get one. */
  private topicFor(name: string, restoring = false): Topic {
    let topic = this.topics.get(name);
    if (!topic) {
      checkTopicName(name);
      if (this.topics.size >= this.limits.maxTopics && !restoring) {
        throw new BusError("BUS_FULL", `too many topics (limit ${this.limits.maxTopics})`);
      }
      topic = new Topic(name);
      topic.lastCounted.at = this.now();
      this.topics.set(name, topic);
    }
    return topic;
  }

  /**
   * Loads what the store kept: ids continue, leased messages are queued again. Everything stored
   * comes back even past limits lowered since (a restart never loses what was acknowledged).
   */
  private restore(): void {
    for (const stored of this.store.load()) {
      const topic = this.topicFor(stored.name, true);
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
