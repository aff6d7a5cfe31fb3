// A full garbage collection once the server goes quiet after heavy traffic. JavaScriptCore
// collects as it allocates, so what a burst leaves behind (read buffers, the chunks of a drained
// queue) stays resident until the next burst or its own timer, seconds later; collecting in a
// quiet moment hands it back. Redis defragments in the background for the same reason.

import type { Engine } from "../core/engine.ts";
import { logFor } from "../log.ts";

const gcLog = logFor("server");

export interface IdleGcOptions {
  /** A count that grows with traffic (see busActivity); read every `checkMs`. */
  activity: () => number;
  /** Traffic since the last collection that makes one worth its pause. */
  minActivity?: number;
  /** Quiet (no change in `activity`) for this long first, in ms. */
  quietMs?: number;
  /** At most one collection per this long, in ms, and per 100 times as long as the last one took (see MAX_SHARE). */
  intervalMs?: number;
  /** How often activity is read, in ms. */
  checkMs?: number;
  /** The collection (default: a synchronous full one, `Bun.gc(true)`). */
  collect?: () => void;
  now?: () => number;
}

/**
 * 200 ms without a message moved ends a burst: a pipelining client pauses for far less between
 * its writes (its next write follows its replies), and what the burst left is handed back about
 * 0.3 s after it (it stays resident until then). Checking every 100 ms costs a sum of four counters.
 */
export const IDLE_GC_DEFAULTS = { minActivity: 100_000, quietMs: 200, intervalMs: 1000, checkMs: 100 };

/**
 * Idle collections take at most 1/MAX_SHARE of the time: after one that took `t` ms, the next
 * waits at least MAX_SHARE * t. A full collection takes 2-4 ms with 1,000,000 messages queued
 * and ~10 ms after draining them, so bursts a second apart (a queue filled, then drained) each get
 * theirs; a heap of many objects (200,000 leased messages) that takes longer waits longer.
 */
export const MAX_SHARE = 100;

export class IdleGc {
  /** Collections run so far. */
  collections = 0;
  private readonly options: Required<IdleGcOptions>;
  private lastActivity: number;
  /** Activity when the server last collected: what is "since". */
  private collectedAt: number;
  private quietSince: number;
  private lastCollection = Number.NEGATIVE_INFINITY;
  /** How long the last collection took, in ms. */
  private lastTook = 0;
  private timer: ReturnType<typeof setInterval> | undefined;

  constructor(options: IdleGcOptions) {
    this.options = { ...IDLE_GC_DEFAULTS, collect: () => Bun.gc(true), now: () => performance.now(), ...options };
    this.lastActivity = this.collectedAt = this.options.activity();
    this.quietSince = this.options.now();
  }

  /** Checks every `checkMs` (an unref'd timer: it never keeps the process alive). */
  start(): this {
    this.timer ??= setInterval(() => this.check(), this.options.checkMs);
    this.timer.unref?.();
    return this;
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  /** One look: collects when enough traffic went by, then none for `quietMs`, and none was run lately. */
  check(): boolean {
    const { activity, minActivity, quietMs, intervalMs, collect, now } = this.options;
    const current = activity();
    const at = now();
    if (current !== this.lastActivity) {
      this.lastActivity = current;
      this.quietSince = at;
      return false;
    }
    const wait = Math.max(intervalMs, this.lastTook * MAX_SHARE);
    if (current - this.collectedAt < minActivity || at - this.quietSince < quietMs || at - this.lastCollection < wait) return false;
    collect();
    const took = now() - at;
    this.lastTook = took;
    gcLog.debug(`quiet after ${current - this.collectedAt} messages written, taken, dropped or expired: collected garbage in ${took.toFixed(1)} ms`);
    this.collections++;
    this.collectedAt = current;
    this.lastCollection = at;
    return true;
  }
}

/** The server's idle collector, started: its traffic is the bus's. */
export function startIdleGc(bus: Engine): IdleGc {
  return new IdleGc({ activity: () => busActivity(bus) }).start();
}

/** Messages written, taken, dropped and expired so far: each leaves garbage (or frees chunks). */
export function busActivity(bus: Engine): number {
  const t = bus.totals;
  return t.messagesIn + t.messagesOut + t.dropped + t.expired;
}
