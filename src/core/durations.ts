// The longest lease, nack delay and blocking wait the bus accepts, in one place for every door.
// Longer or non-finite values are refused with a clear error rather than clamped or wrapped.

import { BusError } from "./errors.ts";

const HOUR = 3600000;
const DAY = 24 * HOUR;

/** A lease hides a message at most this long (SQS's visibility timeout has the same ceiling). */
export const MAX_LEASE_MS = 12 * HOUR;
/** A nacked message is held back at most this long. */
export const MAX_DELAY_MS = 12 * HOUR;
/** A blocking read waits at most this long (0 means forever, and is always allowed). */
export const MAX_WAIT_MS = 365 * DAY;

function check(ms: number, max: number, what: string, maxText: string): number {
  if (!Number.isFinite(ms) || ms < 0) throw new BusError("BAD_REQUEST", `${what} must be a duration from 0 to ${maxText}`);
  if (ms > max) throw new BusError("BAD_REQUEST", `${what} is longer than the maximum of ${maxText}`);
  return ms;
}

/** A lease time in ms: at least 1 ms, at most MAX_LEASE_MS. */
export function checkLease(ms: number, what = "lease"): number {
  return Math.max(1, check(ms, MAX_LEASE_MS, what, "12h"));
}

/** A nack delay in ms: 0 (at once) to MAX_DELAY_MS. */
export function checkDelay(ms: number, what = "delay"): number {
  return check(ms, MAX_DELAY_MS, what, "12h");
}

/** A blocking wait in ms: 0 (forever) to MAX_WAIT_MS. */
export function checkWait(ms: number, what = "wait"): number {
  return check(ms, MAX_WAIT_MS, what, "365d (0 waits forever)");
}
