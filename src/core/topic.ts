// One topic's state: its queue, leases, subscribers, waiting consumers and counters.
// The Bus owns the rules; this file only holds what a topic is made of.

import { Deque } from "./deque.ts";
import { MessageQueue } from "./message-queue.ts";
import type { Message } from "./message.ts";
import { DEAD_SUFFIX } from "./topic-name.ts";

/** Receives every message written to a topic after it subscribed (fan-out, at-most-once). */
export interface Subscriber {
  /**
   * Must not call back into the bus synchronously; a transport buffers and writes. With `lent`,
   * the message's payload is a view valid only during the call (of the topic's queue): whatever
   * is kept past send() must be a copy. Only a subscriber that says `takesLent` is lent one.
   */
  send(message: Message, lent?: boolean): void;
  /**
   * True when send() copies what it keeps of a lent message (it encodes the frame at once, say):
   * a write to a topic whose subscribers all take lent messages copies its payload only into the
   * queue, not into a payload of its own first.
   */
  readonly takesLent?: boolean;
  /**
   * For a `takesLent` subscriber, called instead of send() for a write the bus made no Message for
   * (a lent write: see appendLent): the message of this topic numbered `id`, written at `created`,
   * never delivered, with no origin, whose payload is bytes[start, end), valid only during the
   * call. Saves making a Message and a view of its payload per write.
   */
  sendLent?(id: number, created: number, bytes: Uint8Array, start: number, end: number): void;
  /**
   * How many readers this subscriber stands for (default 1): a transport that fans out itself
   * (a WebSocket group on Bun's native pub/sub) counts its sockets. Read by `subscriberCount`.
   */
  readonly weight?: number;
}

/**
 * Takes messages from a topic: each message goes to exactly one consumer. A one-shot consumer
 * (a blocking GET) has credit 1; a streaming one (ON) has credit = how many it may hold at once.
 */
export interface Consumer {
  /** How many more messages it accepts now; the bus lowers it on every delivery. */
  credit: number;
  /** Lease time in ms: at-least-once. Undefined: at-most-once (the message leaves on hand-out). */
  readonly lease?: number;
  /** Past this many deliveries a returned message goes to the dead-letter topic. */
  readonly maxDeliveries?: number;
  /** Streaming consumers get their credit back when a lease ends and their leases back on cancel. */
  readonly streaming?: boolean;
  /** Must not call back into the bus synchronously. */
  deliver(message: Message): void;
}

export interface Lease {
  readonly message: Message;
  readonly topic: Topic;
  // The delivery a lease is for is its message's count: a leased message is not delivered again
  // until its lease ends (one field less per lease; an ack naming an older delivery is refused).
  expires: number;
  /** How long the lease runs (ms): what a renewal (touch) without a length extends it by. */
  length: number;
  /** The key of its live entry in the lease book's expiry heap (leases.ts; <= expires; other entries are stale). */
  timer: number;
  readonly maxDeliveries: number;
  readonly consumer?: Consumer;
  active: boolean;
}

/** A message nacked with a delay, held back until `Bus.tick` returns it (or a purge drops it). */
export interface Delayed {
  readonly message: Message;
  readonly topic: Topic;
  /** When it is released (ms): what a purge undone by a failed commit holds it back until again. */
  readonly until: number;
  /** False once returned or dropped: its entry in the lease book's release heap is then skipped. */
  active: boolean;
}

export interface TopicCounters {
  published: number;
  consumed: number;
  acked: number;
  redelivered: number;
  dropped: number;
  expired: number;
  deadLettered: number;
  bytesIn: number;
}

export class Topic {
  lastId = 0;
  readonly queue: MessageQueue;
  readonly leased = new Map<number, Lease>();
  /** Nacked with a delay: held back, still counted against the limits. */
  readonly delayedMessages = new Set<Delayed>();
  /**
   * Bytes charged for every message the topic owns (queued, leased and delayed): payload plus
   * MESSAGE_OVERHEAD each, plus OBJECT_OVERHEAD for each held as an object (see BusState.recharge).
   */
  bytes = 0;
  /** How many of its messages `bytes` charges OBJECT_OVERHEAD for. */
  objects = 0;
  readonly subscribers = new Set<Subscriber>();
  /** Subscribers that keep the messages they are sent (not `takesLent`): while any, nothing is lent to them. */
  keepingSubscribers = 0;
  readonly waiting = new Deque<Consumer>();
  readonly waitingSet = new Set<Consumer>();
  readonly streamingConsumers = new Set<Consumer>();
  readonly counters: TopicCounters = {
    published: 0,
    consumed: 0,
    acked: 0,
    redelivered: 0,
    dropped: 0,
    expired: 0,
    deadLettered: 0,
    bytesIn: 0,
  };
  /** Messages per second over the last rate window, refreshed by Bus.tick. */
  rateIn = 0;
  rateOut = 0;
  lastCounted = { published: 0, consumed: 0, at: 0 };
  /** Listed idle by the registry (kept here so the busy path costs no lookup). */
  listedIdle = false;
  /** The bus is handing its messages out (a call back from a consumer must not start again). */
  dispatching = false;
  /** The stamp of its newest entry in the registry's idle order; -1: never listed. */
  idleStamp = -1;

  /** A dead-letter topic (`<topic>.dead`): always drop-oldest when full, never dead-lettered again. */
  readonly deadLetters: boolean;

  constructor(readonly name: string) {
    this.queue = new MessageQueue(name);
    this.deadLetters = name.endsWith(DEAD_SUFFIX);
  }

  /** Readers a write reaches now, one per connection: the count every report uses. */
  get subscriberCount(): number {
    let count = 0;
    for (const subscriber of this.subscribers) count += subscriber.weight ?? 1;
    return count;
  }

  /** Consumers registered now: streaming ones, plus one-shot ones waiting (blocked GETs). The count every report uses. */
  get consumerCount(): number {
    let oneShot = 0;
    for (const consumer of this.waiting) if (!consumer.streaming) oneShot++;
    return this.streamingConsumers.size + oneShot;
  }

  get delayed(): number {
    return this.delayedMessages.size;
  }

  /** Messages the topic owns, for its count limit. */
  get held(): number {
    return this.queue.length + this.leased.size + this.delayedMessages.size;
  }

  /**
   * Holds nothing and nobody: no message (queued, leased or delayed), no subscriber, no consumer.
   * Such a topic does not count against the topic limit (see TopicRegistry).
   */
  get idle(): boolean {
    return (
      this.queue.length === 0 &&
      this.leased.size === 0 &&
      this.delayedMessages.size === 0 &&
      this.subscribers.size === 0 &&
      this.waitingSet.size === 0 &&
      this.streamingConsumers.size === 0
    );
  }
}
