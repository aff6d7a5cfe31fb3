// A store whose batches a unit test commits or fails by hand (a full disk): the bus cannot tell it
// from sqlite. For the undo of failed commits (bus-undo, bus-charges).

import { StoreCommitError, type Store, type StoredTopic } from "../../src/core/store.ts";

export class HandStore implements Store {
  private batch?: { promise: Promise<void>; resolve: () => void; reject: (e: Error) => void };
  load(): StoredTopic[] {
    return [];
  }
  added(): void {
    this.pending();
  }
  removed(): void {
    this.pending();
  }
  delivered(): void {
    this.pending();
  }
  purged(): void {
    this.pending();
  }
  flush(): Promise<void> | null {
    return this.batch?.promise ?? null;
  }
  close(): void {}
  /** Whether a batch waits to be settled. */
  get waiting(): boolean {
    return this.batch !== undefined;
  }
  private pending(): void {
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
    if (written) batch.resolve();
    else batch.reject(new StoreCommitError("cannot write to /data/msgbus.db: database or disk is full (SQLITE_FULL): free some disk space"));
    await batch.promise.catch(() => {});
  }
}
