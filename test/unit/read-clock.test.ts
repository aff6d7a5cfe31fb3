// The server's clock (server/read-clock.ts): one clock read for the commands of a TCP read, the
// clock itself anywhere else.

import { expect, test } from "bun:test";
import { ReadClock } from "../../src/server/read-clock.ts";

test("within a read every call gives the time read first for it; outside, the clock", async () => {
  const clock = new ReadClock();
  const before = Date.now();
  expect(clock.begin()).toBe(true);
  const first = clock.now();
  expect(first).toBeGreaterThanOrEqual(before);
  await Bun.sleep(5);
  expect(clock.now()).toBe(first);
  // A read run inside another (not how reads come, but harmless): it neither restarts nor ends it.
  expect(clock.begin()).toBe(false);
  expect(clock.now()).toBe(first);
  clock.end();
  const after = clock.now();
  expect(after).toBeGreaterThanOrEqual(first + 5);
  await Bun.sleep(5);
  expect(clock.now()).toBeGreaterThanOrEqual(after + 5);
  // The next read reads the clock again, and times never go back.
  expect(clock.begin()).toBe(true);
  expect(clock.now()).toBeGreaterThanOrEqual(after + 5);
  clock.end();
});
