// What one node holds of a topic while the topic itself lives in Redis: the subscribers and the
// consumers connected to this node, and what it knows of the topic's notifications.

import type { Message } from "../../core/message.ts";
import type { Consumer, Subscriber } from "../../core/topic.ts";

/** A subscriber; while its `since` replay is being read, live messages wait in `buffer`. */
export interface SubscriberEntry {
  readonly subscriber: Subscriber;
  buffer: Message[] | undefined;
}

export class LocalTopic {
  readonly subscribers = new Set<SubscriberEntry>();
  /** Every consumer registered here, waiting or not. */
  readonly consumers = new Set<Consumer>();
  /** Consumers with credit, in turn (round-robin): the next take is for the first. */
  readonly waiting: Consumer[] = [];
  readonly streaming = new Set<Consumer>();
  /** Notifications seen (a write, a message back in the queue). */
  generation = 0;
  /** The generation a take last found the topic empty in: nothing to try until the next notification. */
  emptyGeneration = -1;
  /** Takes sent and not answered yet. */
  inFlight = 0;

  constructor(readonly name: string) {}

  get subscriberCount(): number {
    let count = 0;
    for (const entry of this.subscribers) count += entry.subscriber.weight ?? 1;
    return count;
  }

  get idle(): boolean {
    return this.subscribers.size === 0 && this.consumers.size === 0 && this.inFlight === 0;
  }

  /** Puts a consumer with credit in line (at the head: it keeps its turn after an empty take). */
  enqueue(consumer: Consumer, first = false): void {
    if (consumer.credit <= 0 || !this.consumers.has(consumer) || this.waiting.includes(consumer)) return;
    if (first) this.waiting.unshift(consumer);
    else this.waiting.push(consumer);
  }

  remove(consumer: Consumer): void {
    this.consumers.delete(consumer);
    this.streaming.delete(consumer);
    const at = this.waiting.indexOf(consumer);
    if (at >= 0) this.waiting.splice(at, 1);
  }
}

/** A lease this node handed to one of its streaming consumers (ON): it returns when the consumer leaves. */
export interface OwnedLease {
  readonly topic: string;
  readonly id: number;
  readonly delivery: number;
  readonly consumer: Consumer;
  /** Redis time (ms) the lease ends, as last known here. */
  expires: number;
}
