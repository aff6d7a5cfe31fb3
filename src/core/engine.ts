// The engine port: what the transports call. The in-memory Bus implements it synchronously; the
// Redis engine (store/redis/) asynchronously. A result may be a value or a Promise of it.

import type { BusTotals } from "./bus-state.ts";
import type { BusLimits } from "./limits.ts";
import type { Message } from "./message.ts";
import type { PayloadSink } from "./message-queue.ts";
import type { Consumer, Subscriber, TopicCounters } from "./topic.ts";

/** A value now (the in-memory bus: no promise, no extra tick) or later (Redis). */
export type Maybe<T> = T | Promise<T>;

/** What a report reads of a topic; `Topic` satisfies it, and so does a snapshot read from Redis. */
export interface TopicView {
  readonly name: string;
  readonly queue: { readonly length: number };
  readonly leased: { readonly size: number };
  readonly delayed: number;
  readonly bytes: number;
  readonly lastId: number;
  readonly subscriberCount: number;
  readonly consumerCount: number;
  readonly rateIn: number;
  readonly rateOut: number;
  readonly counters: TopicCounters;
}

export interface TakeOptions {
  /** Lease time in ms (at-least-once); absent: at-most-once. */
  lease?: number;
  maxDeliveries?: number;
}

/** The state of the engine's backend, for /_/health. */
export interface BackendHealth {
  /** e.g. "redis" */
  readonly name: string;
  readonly up: boolean;
}

/**
 * The one door every transport uses. Registration (consume, subscribe, cancel) is always
 * synchronous: deliveries come through the callbacks, at once or later. Results of the calls that
 * answer a request (publish, take, ack, ...) may be Promises: a transport that gets one keeps the
 * reply in its place (TCP: Connection.later) and maps a rejection like a thrown BusError.
 */
export interface Engine {
  readonly limits: BusLimits;
  readonly totals: BusTotals;
  readonly bytes: number;
  /**
   * True when the state lives elsewhere (Redis): takes are round trips, so a blocking read
   * registers its consumer at once instead of trying a take first.
   */
  readonly remote?: boolean;
  publish(topic: string, payload: Uint8Array): Maybe<Message>;
  /**
   * A write whose payload, bytes[start, end) (all of `bytes` by default), is only lent for the
   * call (a range of a socket's read buffer: no view needs making; `owned`: `bytes` is the
   * caller's to give). The engine copies what it keeps. Resolves with the id.
   */
  publishBorrowed(topic: string, bytes: Uint8Array, owned?: boolean, start?: number, end?: number): Maybe<number>;
  /**
   * PUBLISH's write: as publishBorrowed, resolving with how many subscribers it reaches (what
   * subscriberCount says as it is written), so the topic is looked up once.
   */
  publishReaching(topic: string, bytes: Uint8Array, owned?: boolean, start?: number, end?: number): Maybe<number>;
  /** Optional: LPUSH's write, as publishBorrowed, returning the topic's depth after. Engines without it: depth(). */
  pushBorrowed?(topic: string, bytes: Uint8Array, owned?: boolean, start?: number, end?: number): number;
  subscriberCount(topic: string): number;
  /** Messages ready to take (LLEN, LPUSH's reply). */
  depth(topic: string): Maybe<number>;
  take(topic: string, options?: TakeOptions): Maybe<Message | undefined>;
  /**
   * Optional: takes the oldest message at-most-once straight into `sink` (RPOP's reply), with no
   * Message object when the engine can; false when there is none. Engines without it: take().
   */
  takeInto?(topic: string, sink: PayloadSink): boolean;
  /** Up to `count` queued messages with an id over `since`, in id order, none taken (PEEK, ?peek). */
  peek(topic: string, count: number, since?: number): Maybe<Message[]>;
  consume(topic: string, consumer: Consumer): void;
  consumeAny(topics: string[], consumer: Consumer): void;
  cancel(topic: string, consumer: Consumer): void;
  stopConsuming(topic: string, consumer: Consumer): void;
  ack(topic: string, id: number, delivery?: number): Maybe<void>;
  nack(topic: string, id: number, delay?: number, delivery?: number): Maybe<void>;
  touch(topic: string, id: number, leaseMs?: number, delivery?: number): Maybe<number>;
  subscribe(topic: string, subscriber: Subscriber, since?: number): () => void;
  purge(topic: string): Maybe<number>;
  deleteTopic(topic: string): Maybe<number | undefined>;
  deleteTopics(topics: string[]): Maybe<number>;
  topic(name: string): TopicView | undefined;
  topicList(): TopicView[];
  flush(): Promise<void> | null;
  tick(now?: number): void;
  /** The backend's state, when there is one to lose (Redis). */
  health?(): BackendHealth;
  /** Releases the backend (after the last flush). */
  close?(): Promise<void> | void;
}

/** Runs `next` on a value now, or once it comes: no promise where there was none. */
export function then<T, R>(value: Maybe<T>, next: (value: T) => R): Maybe<R> {
  return value instanceof Promise ? value.then(next) : next(value);
}
