// The replay-then-live buffer SSE streams and catching-up WebSockets share: id order with no gap,
// and a --send-buffer bound on what waits before a live message (never the replay, never one message).

import { expect, test } from "bun:test";
import { Bus } from "../../src/core/bus.ts";
import type { Message } from "../../src/core/message.ts";
import { CatchUp } from "../../src/server/catch-up.ts";

const bytes = (n: number) => new Uint8Array(n);

function drain(catchUp: CatchUp): number[] {
  const ids: number[] = [];
  for (let m = catchUp.next(); m; m = catchUp.next()) ids.push(m.id);
  return ids;
}

test("the replay waits in the buffer and live messages follow it in id order, with no gap", () => {
  const bus = new Bus();
  for (let i = 0; i < 5; i++) bus.publish("t", bytes(1));
  const live: Message[] = [];
  const catchUp = new CatchUp(bus, "t", 2, 1000, (m) => live.push(m));
  expect(catchUp.length).toBe(3); // ids 3, 4, 5
  bus.publish("t", bytes(1));
  expect(live.map((m) => m.id)).toEqual([6]);
  expect(catchUp.queue(live[0]!)).toBe(true);
  expect(drain(catchUp)).toEqual([3, 4, 5, 6]);
  catchUp.close();
  expect(bus.subscriberCount("t")).toBe(0);
});

test("the limit counts live bytes waiting before a message: not the replay, not the message itself", () => {
  const bus = new Bus({ limits: { maxMessageSize: 1 << 20 } });
  bus.publish("t", bytes(5000)); // replayed: the bus holds it anyway
  const live: Message[] = [];
  const catchUp = new CatchUp(bus, "t", 0, 1000, (m) => live.push(m));
  bus.publish("t", bytes(4000)); // bigger than the limit, but alone
  bus.publish("t", bytes(10)); // 4000 live bytes waited before it: past the limit
  expect(catchUp.queue(live[0]!)).toBe(true);
  expect(catchUp.queue(live[1]!)).toBe(false);
  catchUp.next(); // the replay goes: live bytes unchanged
  catchUp.next(); // the 4000 go: what waits is small again
  bus.publish("t", bytes(10));
  expect(catchUp.queue(live[2]!)).toBe(true);
  catchUp.close();
});
