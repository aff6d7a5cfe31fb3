// What the bus changed since the store's last commit, kept until that commit settles, so that a
// commit that fails (disk full) can be undone in memory: nobody loses a message the disk never saw.

import type { Message } from "./message.ts";
import type { Lease, Topic } from "./topic.ts";
import { StoreCommitError, type Store } from "./store.ts";

/**
 * One change, with what undoing it needs: `deliveries` is the message's delivery count before
 * the change. Undone newest first, each puts the message back where the change took it from.
 */
export type Change =
  | { kind: "added"; topic: Topic; message: Message; deliveries: number }
  | { kind: "removed"; topic: Topic; message: Message; deliveries: number }
  | { kind: "leased"; topic: Topic; message: Message; deliveries: number; lease: Lease };

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
  record(kind: Change["kind"], topic: Topic, message: Message, deliveries: number, lease?: Lease): void {
    const batch = this.store.flush();
    if (!batch) return; // a store with nothing to wait for (memory): nothing can fail
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
    this.changes.push(kind === "leased" ? { kind, topic, message, deliveries, lease: lease! } : { kind, topic, message, deliveries });
  }
}
