// A connection's replies held until the store has committed what they acknowledge: one group per
// store batch, sent in order; a batch that failed (disk full) answers each of its commands with
// the storage error instead, so the client is never told a failed write or take succeeded and
// stays in step (one reply per command).

import { BusError, isBusError } from "../core/errors.ts";
import { RespWriter } from "../protocol/resp-writer.ts";
import { respError } from "../protocol/resp-errors.ts";

interface Group {
  /** The store batch these replies wait for; null: nothing to wait for but the groups before. */
  readonly durable: Promise<void> | null;
  readonly chunks: Uint8Array[];
  /** Replies (not pushes) in `chunks`: how many errors stand in for them if the batch failed. */
  replies: number;
  settled: boolean;
  error?: BusError;
  /** A reply still being worked out (holdLater): nothing is added to it. */
  later?: true;
}

export class HeldReplies {
  private groups: Group[] = [];

  constructor(
    /** Writes bytes to the client. */
    private readonly send: (bytes: Uint8Array) => void,
    /** Everything held went out (a quitting connection may close now). */
    private readonly drained: () => void,
  ) {}

  get empty(): boolean {
    return this.groups.length === 0;
  }

  /**
   * Holds `bytes` (copied), which carry `replies` replies, until `durable` settles and every
   * group before has gone out.
   */
  hold(durable: Promise<void> | null, bytes: Uint8Array, replies: number): void {
    let group = this.groups.at(-1);
    if (!group || group.durable !== durable || (group.settled && durable !== null) || group.later) {
      const created: Group = { durable, chunks: [], replies: 0, settled: durable === null };
      group = created;
      this.groups.push(created);
      durable?.then(
        () => this.settle(created),
        (error: unknown) => this.settle(created, isBusError(error) ? error : new BusError("STORAGE", `storage failed: ${String(error)}`)),
      );
    }
    if (bytes.length > 0) group.chunks.push(bytes.slice());
    group.replies += replies;
    if (group.settled) this.release();
  }

  /**
   * A reply that comes later (the Redis engine): it goes out in its place, after every group
   * before it and before every group held after it. `reply` must not reject.
   */
  holdLater(reply: Promise<Uint8Array>): void {
    const group: Group = { durable: null, chunks: [], replies: 1, settled: false, later: true };
    this.groups.push(group);
    reply.then((bytes) => {
      group.chunks.push(bytes);
      this.settle(group);
    });
  }

  /** The connection closed: nothing more to send. */
  clear(): void {
    this.groups = [];
  }

  private settle(group: Group, error?: BusError): void {
    group.settled = true;
    group.error = error;
    this.release();
  }

  private release(): void {
    let sent = false;
    while (this.groups.length > 0 && this.groups[0]!.settled) {
      const group = this.groups.shift()!;
      sent = true;
      if (!group.error) {
        for (const chunk of group.chunks) this.send(chunk);
        continue;
      }
      // Pushes in the group (SUB, ON) are dropped too: their messages were undone with the batch.
      const out = new RespWriter(256);
      const line = respError(new BusError("STORAGE", group.error.message));
      for (let i = 0; i < group.replies; i++) out.error(line);
      this.send(out.take());
    }
    if (sent && this.groups.length === 0) this.drained();
  }
}
