// What every part of the bus shares: limits, store, topic registry, lease book, memory held and
// totals, and the two steps they all take: forgetting a message and counting dropped ones.

import { LeaseBook } from "./leases.ts";
import type { BusLimits } from "./limits.ts";
import { type Message, messageCost, OBJECT_OVERHEAD } from "./message.ts";
import { packs } from "./message-queue.ts";
import { MemoryStore, type Store } from "./store.ts";
import type { Topic } from "./topic.ts";
import { TopicRegistry } from "./topic-registry.ts";
import { type Change, Uncommitted } from "./uncommitted.ts";

export type DropReason = "overflow" | "memory" | "age" | "purge" | "delete";

export interface BusEvents {
  /** Messages left a topic unconsumed. The server logs this, rate-limited. */
  dropped?(topic: string, reason: DropReason, count: number): void;
  /** A message moved to its dead-letter topic. */
  deadLettered?(message: Message, deadTopic: string): void;
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

export class BusState {
  readonly totals: BusTotals = {
    messagesIn: 0,
    messagesOut: 0,
    dropped: 0,
    expired: 0,
    redelivered: 0,
    deadLettered: 0,
    acked: 0,
  };
  readonly topics: TopicRegistry;
  readonly leases = new LeaseBook();
  /** Changes the store has not committed yet, undone by `undo` if its commit fails. */
  readonly uncommitted: Uncommitted;
  /** Bytes charged over every topic (Topic.bytes), against `maxMemory`. */
  bytes = 0;

  constructor(
    readonly limits: BusLimits,
    readonly store: Store,
    readonly events: BusEvents,
    readonly now: () => number,
    undo: (changes: Change[]) => void,
  ) {
    this.topics = new TopicRegistry(limits.maxTopics, limits.maxTombstones, now);
    this.uncommitted = new Uncommitted(store, undo);
    this.storeKeeps = !(store instanceof MemoryStore);
  }

  /** A store that keeps the messages it is told of until it commits (not the memory store). */
  readonly storeKeeps: boolean;

  /**
   * Whether a borrowed payload may be written as it is: nobody but the queue keeps it (every
   * subscriber takes lent messages, a store that keeps nothing) and the queue packs it (copies it
   * into its chunks).
   */
  packsBorrowed(topic: Topic, length: number): boolean {
    return topic.keepingSubscribers === 0 && !this.storeKeeps && packs(length);
  }

  /** A message leaves its topic for good: memory and store forget it. `deliveries`: its count before, for an undo. */
  forget(topic: Topic, message: Message, deliveries = message.deliveries): void {
    const cost = messageCost(message.payload.length);
    topic.bytes -= cost;
    this.bytes -= cost;
    this.store.removed(topic.name, message.id);
    this.uncommitted.record("removed", topic, message, deliveries);
    // Charged for no object, the topic had none: what left was packed, and nothing else moved
    // (the common take and drop cost no recount).
    if (topic.objects > 0) this.recharge(topic);
  }

  /**
   * Charges OBJECT_OVERHEAD for each message the topic now holds as an object rather than packed
   * in its queue's chunks: leased, delayed, put back at the head, or an external queue entry.
   * Called after every step that moves a message between those states (take with a lease, ack,
   * nack, expiry, a drop, a purge, an undo...): cheap (four counts compared), and nothing changes
   * for packed writes and takes.
   */
  recharge(topic: Topic): void {
    const objects = topic.queue.objects + topic.leased.size + topic.delayedMessages.size;
    if (objects === topic.objects) return;
    const change = (objects - topic.objects) * OBJECT_OVERHEAD;
    topic.objects = objects;
    topic.bytes += change;
    this.bytes += change;
  }

  /**
   * A message taken at-most-once that nobody else keeps (a store that keeps nothing: see
   * storeKeeps) is counted out and forgotten: handOut and forget by its id, payload length and
   * delivery count after the take, with no Message object.
   */
  forgetTaken(topic: Topic, id: number, length: number, deliveries: number): void {
    topic.counters.consumed++;
    this.totals.messagesOut++;
    if (deliveries > 1) {
      topic.counters.redelivered++;
      this.totals.redelivered++;
    }
    this.forgetUnkept(topic, id, length);
  }

  /**
   * forget() for a message nobody else keeps (a store that keeps nothing), by its id and payload
   * length: nothing to record for an undo, as such a store never fails a commit.
   */
  forgetUnkept(topic: Topic, id: number, length: number): void {
    const cost = messageCost(length);
    topic.bytes -= cost;
    this.bytes -= cost;
    this.store.removed(topic.name, id);
    if (topic.objects > 0) this.recharge(topic); // it may have been an object (put back, external)
  }

  reportDrop(topic: Topic, reason: DropReason, count: number): void {
    if (reason === "age") {
      topic.counters.expired += count;
      this.totals.expired += count;
    } else {
      topic.counters.dropped += count;
      this.totals.dropped += count;
    }
    this.events.dropped?.(topic.name, reason, count);
  }
}
