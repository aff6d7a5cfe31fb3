// What the bus changed since the store's last commit, kept until that commit settles, so that a
// commit that fails (disk full) can be undone in memory: nobody loses a message the disk never saw.

import type { Message } from "./message.ts";
import type { Delayed, Lease, Topic } from "./topic.ts";
import { StoreCommitError, type Store } from "./store.ts";

/**
 * One change, with what undoing it needs: `deliveries` is the message's delivery count before
 * the change. Undone newest first, each puts the message back where the change took it from.
 */
export type Change =
  | { kind: "added"; topic: Topic; message: Message; deliveries: number }
  | { kind: "removed"; topic: Topic; message: Message; deliveries: number }
  | { kind: "leased"; topic: Topic; message: Message; deliveries: number; lease: Lease }
  | Purge
  | { kind: "deleted"; topic: Topic };

/** A purge: what it dropped, the queue in its order and the delayed messages with their release times. */
export interface Purge {
  kind: "purged";
  topic: Topic;
  queued: Message[];
  delayed: Delayed[];
}

export class Uncommitted {
  private batch: Promise<void> | null = null;
  private changes: Change[] = [];

  constructor(
    private readonly store: Store,
    private readonly undo: (changes: Change[]) => void,
  ) {}

  /**
   * Call right after telling the store: the change joins the store's pending batch. Its parts
   * come as arguments so that a store with nothing pending (memory) costs no object per change.
   */
  record(kind: "added" | "removed" | "leased", topic: Topic, message: Message, deliveries: number, lease?: Lease): void {
    const changes = this.changesOf(this.store.flush());
    if (!changes) return; // a store with nothing to wait for (memory): nothing can fail
    changes.push(kind === "leased" ? { kind, topic, message, deliveries, lease: lease! } : { kind, topic, message, deliveries });
  }

  /**
   * Call right after telling the store of a purge (purged, or removed for each message when some
   * are leased): if its batch fails, `queued` (the queue as it was, in order) and `delayed` come back.
   */
  recordPurge(topic: Topic, queued: Message[], delayed: Delayed[]): void {
    if (queued.length + delayed.length === 0) return;
    this.changesOf(this.store.flush())?.push({ kind: "purged", topic, queued, delayed });
  }

  /**
   * Call right after telling the store of a topic's delete: never undone (the store keeps it), it
   * tells the undo that what the batch changed in topics of that name before it stays gone.
   */
  recordDelete(topic: Topic): void {
    this.changesOf(this.store.flush())?.push({ kind: "deleted", topic });
  }

  /** The changes of the store's pending batch, `batch`; undefined when nothing is pending. */
  private changesOf(batch: Promise<void> | null): Change[] | undefined {
    if (!batch) return undefined;
    if (batch !== this.batch) {
      this.batch = batch;
      const changes: Change[] = (this.changes = []);
      // Registered at the batch's first change, so before any transport waits on it: the bus is
      // back as it was before the transports answer the error.
      batch.then(
        () => {
          if (this.batch === batch) {
            this.batch = null;
            this.changes = [];
          }
        },
        (error: unknown) => {
          if (error instanceof StoreCommitError) this.undo(changes);
        },
      );
    }
    return this.changes;
  }
}
