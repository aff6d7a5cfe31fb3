// The store contract: what the bus reports so that a restarted server can carry on.
// The bus keeps its working set in memory; a store only has to make it survive a restart.

import { BusError } from "../core/errors.ts";
import type { Message } from "../core/message.ts";

export interface StoredTopic {
  name: string;
  /** The highest id ever given in this topic (ids never go back, even for an emptied topic). */
  lastId: number;
  /** Messages still owned by the topic (queued, leased or delayed), oldest id first. */
  messages: Message[];
}

export interface Store {
  /** Everything a restarted bus needs; leased messages come back as queued. */
  load(): StoredTopic[];
  /** A message was accepted into a topic. */
  added(message: Message): void;
  /** A message left its topic for good (taken at-most-once, acked, dropped, expired, dead-lettered). */
  removed(topic: string, id: number): void;
  /** A message's delivery count changed (it was leased). */
  delivered(message: Message): void;
  /** Every message of the topic left (purge). */
  purged(topic: string): void;
  /**
   * Resolves once everything reported so far is as safe as the store promises; `null` when
   * nothing is pending, so memory-only transports can reply without waiting. Every change
   * reported between two commits gets the same promise: its batch's.
   *
   * Rejects with a StoreCommitError when that batch could not be written (disk full, I/O
   * error). The store then forgets the batch's adds, removals and delivery counts: they are
   * never written later, so the caller must undo them in memory (the bus does: see
   * Bus.undoUncommitted). Only what cannot be lost by forgetting is kept and tried again: the
   * highest ids the batch gave (ids are never reused) and its purges. Any other rejection (a
   * BusError with code STORAGE) means the batch was written as far as it could be.
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
  flush(): null {
    return null;
  }
  close(): void {}
}
