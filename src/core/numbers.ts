// One strict reading of whole numbers for every door (RESP, HTTP, CLI, configuration): decimal
// digits only. No sign, spaces, "0x10", "1e3" or "1.0": what Number() would quietly accept.

import { BusError } from "./errors.ts";

/** Up to 15 digits: every such number is a safe integer. */
const WHOLE = /^\d{1,15}$/;

/** The number written in decimal digits only, or undefined. */
export function parseWholeNumber(text: string): number | undefined {
  return WHOLE.test(text) ? Number(text) : undefined;
}

/** A whole number from `min` to `max`, or BAD_REQUEST naming `what` and the text. */
export function wholeNumber(text: string, what: string, min = 0, max = Number.MAX_SAFE_INTEGER): number {
  const n = parseWholeNumber(text);
  if (n === undefined || n < min || n > max) {
    const range = max === Number.MAX_SAFE_INTEGER ? `of at least ${min}` : `from ${min} to ${max}`;
    throw new BusError("BAD_REQUEST", `${what} must be a whole number ${range}: "${text.slice(0, 32)}"`);
  }
  return n;
}
