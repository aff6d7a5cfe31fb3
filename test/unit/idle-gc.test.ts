// The idle collector (server/idle-gc.ts) on an injected clock: it collects once traffic went by
// and then stopped, never while traffic goes on, and at most once per interval.

import { describe, expect, test } from "bun:test";
import { IDLE_GC_DEFAULTS, IdleGc, MAX_SHARE } from "../../src/server/idle-gc.ts";

function harness(options: { minActivity?: number; quietMs?: number; intervalMs?: number } = {}) {
  let now = 0;
  let activity = 0;
  const gc = new IdleGc({ minActivity: 1000, quietMs: 1000, intervalMs: 10_000, ...options, activity: () => activity, now: () => now, collect: () => {} });
  return {
    gc,
    /** Advances the clock by `ms` in checks of 250 ms, adding `perCheck` traffic before each; returns how many collected. */
    run(ms: number, perCheck = 0): number {
      let collected = 0;
      for (let t = 0; t < ms; t += 250) {
        now += 250;
        activity += perCheck;
        if (gc.check()) collected++;
      }
      return collected;
    },
  };
}

describe("IdleGc", () => {
  test("collects once traffic stopped for quietMs, not before", () => {
    const h = harness();
    expect(h.run(5000, 500)).toBe(0); // busy: never
    expect(h.run(750)).toBe(0); // quiet, not yet long enough
    expect(h.run(500)).toBe(1);
    expect(h.run(60_000)).toBe(0); // nothing new since
    expect(h.gc.collections).toBe(1);
  });

  test("never collects while traffic goes on, however long", () => {
    const h = harness();
    expect(h.run(120_000, 1)).toBe(0);
  });

  test("little traffic is not worth a collection", () => {
    const h = harness();
    h.run(1000, 100); // 400 messages
    expect(h.run(5000)).toBe(0);
    h.run(2000, 100); // 1200 in all
    expect(h.run(5000)).toBe(1);
  });

  test("at most one collection per intervalMs", () => {
    const h = harness();
    h.run(1000, 1000);
    expect(h.run(1500)).toBe(1);
    h.run(1000, 1000); // another burst at once
    expect(h.run(3000)).toBe(0); // quiet again, but the last one is recent
    expect(h.run(10_000)).toBe(1);
  });

  test("with the defaults, a burst's garbage goes 200-300 ms after its last message (checks every 100 ms)", () => {
    let now = 0;
    let activity = 0;
    let collectedAt = -1;
    const gc = new IdleGc({ activity: () => activity, now: () => now, collect: () => (collectedAt = now) });
    expect(IDLE_GC_DEFAULTS.checkMs).toBe(100);
    for (; now < 2000; now += IDLE_GC_DEFAULTS.checkMs) {
      activity += 100_000; // a burst: 1,000,000 messages a second
      gc.check();
    }
    const last = now - IDLE_GC_DEFAULTS.checkMs; // the last check that saw traffic
    for (; now < 3000; now += IDLE_GC_DEFAULTS.checkMs) gc.check();
    expect(gc.collections).toBe(1);
    expect(collectedAt - last).toBeGreaterThanOrEqual(IDLE_GC_DEFAULTS.quietMs);
    expect(collectedAt - last).toBeLessThanOrEqual(300);
  });

  test("a collection that took long makes the next wait MAX_SHARE times as long", () => {
    let now = 0;
    let activity = 0;
    const gc = new IdleGc({ minActivity: 1000, quietMs: 200, intervalMs: 1000, activity: () => activity, now: () => now, collect: () => (now += 50) });
    const burstThenQuiet = (quietMs: number) => {
      activity += 1000;
      expect(gc.check()).toBe(false);
      let collected = 0;
      for (let t = 0; t < quietMs; t += 100) {
        now += 100;
        if (gc.check()) collected++;
      }
      return collected;
    };
    expect(burstThenQuiet(300)).toBe(1); // took 50 ms: the next waits 5 s, not 1 s
    expect(burstThenQuiet(2000)).toBe(0);
    expect(burstThenQuiet(2000)).toBe(0);
    expect(burstThenQuiet(2000)).toBe(1); // 5 s after the first
    expect(MAX_SHARE * 50).toBe(5000);
  });

  test("start and stop an unref'd timer; stop is idempotent", () => {
    const gc = new IdleGc({ activity: () => 0, collect: () => {} }).start();
    gc.stop();
    gc.stop();
    expect(gc.collections).toBe(0);
  });
});
