// A store whose batches a unit test commits or fails by hand (a full disk): the bus cannot tell it
// from sqlite. For the undo of failed commits (bus-undo, bus-charges). It also keeps a model of
// what a real store would hold (`holds`): a failed batch is forgotten but for its deletes, which
// are kept and tried again, as SqliteStore does.

import type { Message } from "../../src/core/message.ts";
import { StoreCommitError, type Store, type StoredTopic } from "../../src/core/store.ts";

/** A change as reported, with what the model needs of it (a message's count at report time). */
type Reported =
  | { kind: "added" | "delivered"; topic: string; id: number; deliveries: number }
  | { kind: "removed"; topic: string; id: number }
  | { kind: "purged" | "deleted"; topic: string };

export class HandStore implements Store {
  private batch?: { promise: Promise<void>; resolve: () => void; reject: (e: Error) => void };
  /** What the committed batches wrote: topic -> id -> delivery count. */
  private readonly committed = new Map<string, Map<number, number>>();
  /** Reported since the last commit (after a failed one: only what it kept, its deletes). */
  private reported: Reported[] = [];
  load(): StoredTopic[] {
    return [];
  }
  added(message: Message): void {
    this.pending({ kind: "added", topic: message.topic, id: message.id, deliveries: message.deliveries });
  }
  removed(topic: string, id: number): void {
    this.pending({ kind: "removed", topic, id });
  }
  delivered(message: Message): void {
    this.pending({ kind: "delivered", topic: message.topic, id: message.id, deliveries: message.deliveries });
  }
  purged(topic: string): void {
    this.pending({ kind: "purged", topic });
  }
  deleted(topic: string): void {
    this.pending({ kind: "deleted", topic });
  }
  flush(): Promise<void> | null {
    return this.batch?.promise ?? null;
  }
  close(): void {}
  /** Whether a batch waits to be settled. */
  get waiting(): boolean {
    return this.batch !== undefined;
  }
  /**
   * What the store holds once what is pending is written (a failed batch's kept deletes too):
   * topic -> [id, delivery count] in id order, topics holding nothing left out.
   */
  holds(): Map<string, [number, number][]> {
    const held = new Map<string, Map<number, number>>();
    for (const [topic, messages] of this.committed) held.set(topic, new Map(messages));
    apply(held, this.reported);
    const result = new Map<string, [number, number][]>();
    for (const [topic, messages] of held) {
      if (messages.size > 0)
        result.set(
          topic,
          [...messages].sort((a, b) => a[0] - b[0]),
        );
    }
    return result;
  }
  private pending(change: Reported): void {
    this.reported.push(change);
    if (this.batch) return;
    let resolve!: () => void;
    let reject!: (e: Error) => void;
    const promise = new Promise<void>((res, rej) => {
      resolve = res;
      reject = rej;
    });
    promise.catch(() => {});
    this.batch = { promise, resolve, reject };
  }
  /** Ends the waiting batch: written, or refused as a full disk refuses it. */
  async settle(written: boolean): Promise<void> {
    const batch = this.batch!;
    this.batch = undefined;
    if (written) {
      apply(this.committed, this.reported);
      this.reported = [];
      batch.resolve();
    } else {
      this.reported = this.reported.filter((change) => change.kind === "deleted");
      batch.reject(new StoreCommitError("cannot write to /data/msgbus.db: database or disk is full (SQLITE_FULL): free some disk space"));
    }
    await batch.promise.catch(() => {});
  }
}

function apply(held: Map<string, Map<number, number>>, changes: Reported[]): void {
  for (const change of changes) {
    let messages = held.get(change.topic);
    if (!messages) held.set(change.topic, (messages = new Map()));
    if (change.kind === "added") messages.set(change.id, change.deliveries);
    else if (change.kind === "delivered") {
      if (messages.has(change.id)) messages.set(change.id, change.deliveries);
    } else if (change.kind === "removed") messages.delete(change.id);
    else messages.clear();
  }
}
