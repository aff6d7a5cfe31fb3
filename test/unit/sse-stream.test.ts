// An SSE stream's slow-reader bound, in-process: what waits for a reader is its backlog; the one
// message already in the stream, or one message alone, however large, is not.

import { expect, test } from "bun:test";
import { Bus } from "../../src/core/bus.ts";
import type { Config } from "../../src/config.ts";
import type { ServerContext } from "../../src/server/context.ts";
import { ServerStats } from "../../src/server/context.ts";
import { SseHub } from "../../src/server/sse.ts";
import { Auth } from "../../src/server/auth.ts";

const MiB = 1048576;

function hub(sendBuffer: number) {
  const bus = new Bus({ limits: { maxMessageSize: 8 * MiB } });
  const ctx = { bus, config: { sendBuffer } as Config, stats: new ServerStats(), auth: new Auth({}), stopping: false } as unknown as ServerContext;
  return { bus, ctx, sse: new SseHub(ctx, {}) };
}

test("a reader is cut off for what waited before a message, never for the one message in progress", () => {
  const { bus, ctx, sse } = hub(256 * 1024);
  const aborted = new AbortController();
  // Nobody reads the body: the stream's own queue fills with the first message and stays full.
  sse.open({ topic: "huge", who: undefined, json: false, since: undefined }, aborted.signal);
  bus.publish("huge", new Uint8Array(4 * MiB)); // into the stream: in progress
  bus.publish("huge", new Uint8Array(4 * MiB)); // waits alone: one message, not a backlog
  expect(ctx.stats.slowConsumers).toBe(0);
  expect(sse.size).toBe(1);
  bus.publish("huge", new Uint8Array(1)); // 4 MiB waited before it: past --send-buffer
  expect(ctx.stats.slowConsumers).toBe(1);
  expect(sse.size).toBe(0);
  sse.closeAll();
  aborted.abort();
});
