// The store port: what the bus reports so that a restarted server can carry on. The engine
// defines it; store/ holds its adapters (sqlite.ts; Redis next). MemoryStore is the default.

import { BusError } from "./errors.ts";
import type { Message } from "./message.ts";

export interface StoredTopic {
  name: string;
  /** The highest id ever given in this topic (ids never go back, even for an emptied topic). */
  lastId: number;
  /** Messages still owned by the topic (queued, leased or delayed), oldest id first. */
  messages: Message[];
}

/**
 * The bus keeps its working set in memory and stays synchronous and free of I/O; a store only
 * has to make that state survive a restart. What every adapter must guarantee:
 *
 * - **Load at start.** `load()` is called once, by the Bus constructor, before any report. It
 *   returns synchronously everything kept: each topic's last id and its messages in id order,
 *   leased ones as queued. An adapter whose backend is asynchronous (Redis) does its reading
 *   before the bus is built (an async open) and hands the result over here.
 * - **Synchronous reports.** `added`, `removed`, `delivered`, `purged` and `deleted` are called on the hot
 *   path, in the order things happened: they only record (no I/O, no await, no throw, no call
 *   back into the bus) and the adapter writes later, in batches.
 * - **Group commit.** `flush()` returns the promise of the batch that holds every change reported
 *   since the last commit started (the same promise for all of them), or `null` when nothing is
 *   pending; it settles once: resolved when the batch is as safe as the store promises, rejected
 *   when it is not. It must settle in bounded time (a backend that does not answer is a failure).
 * - **Undo on StoreCommitError.** A batch rejected with StoreCommitError was not written at all,
 *   and the adapter forgets its adds, removals and delivery counts (never writing them later):
 *   the bus undoes them in memory (core/undo.ts), and its writers, takers, ackers and purgers are
 *   answered STORAGE. Its purges are forgotten too (the bus queues the purged messages again).
 *   Only what forgetting would lose is kept and tried again: the highest ids the batch gave (ids
 *   are never reused) and its topic deletes (a deleted topic is gone from memory for good). Any
 *   other rejection (a BusError with
 *   code STORAGE) means the batch was written as far as it could be, and nothing is undone.
 * - **Close.** `close()` writes what is pending, if it can, and releases the backend.
 */
export interface Store {
  /** Everything a restarted bus needs; leased messages come back as queued. */
  load(): StoredTopic[];
  /** A message was accepted into a topic. */
  added(message: Message): void;
  /** A message left its topic for good (taken at-most-once, acked, dropped, expired, dead-lettered). */
  removed(topic: string, id: number): void;
  /** A message's delivery count changed (it was leased). Not always the object `added` got: match by topic and id. */
  delivered(message: Message): void;
  /** Every message of the topic left (purge). Forgotten with its batch if that fails, like a removal. */
  purged(topic: string): void;
  /**
   * Every message of the topic left, and the topic was deleted (its last id stays). Unlike a
   * purge, kept and tried again when its batch fails: the bus cannot bring a deleted topic back.
   */
  deleted(topic: string): void;
  /**
   * Resolves once everything reported so far is as safe as the store promises; `null` when
   * nothing is pending, so memory-only transports can reply without waiting. Every change
   * reported between two commits gets the same promise: its batch's. Rejects with a
   * StoreCommitError when that batch was not written and was forgotten (see above).
   */
  flush(): Promise<void> | null;
  close(): void;
}

/** A batch that was not written, and that the store has forgotten (see Store.flush). */
export class StoreCommitError extends BusError {
  constructor(message: string) {
    super("STORAGE", message);
    this.name = "StoreCommitError";
  }
}

/** The memory store: nothing survives a restart, nothing to wait for. */
export class MemoryStore implements Store {
  load(): StoredTopic[] {
    return [];
  }
  added(): void {}
  removed(): void {}
  delivered(): void {}
  purged(): void {}
  deleted(): void {}
  flush(): null {
    return null;
  }
  close(): void {}
}
