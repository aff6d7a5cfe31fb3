// `put --lines` / `pub --lines`: stdin cut into lines, one message each, sent as they arrive and
// pipelined. A line over the message limit is skipped, truncated or fatal (--long-lines); with
// --reconnect, lines wait in a bounded buffer (--buffer) while the server is away.

import { Deque } from "../core/deque.ts";
import { isBusError } from "../core/errors.ts";
import type { WriteResult } from "../client/client.ts";
import type { Connected } from "./_connect.ts";
import { messageLimit, stdinChunks, tooLarge, type MessageLimit } from "./_io.ts";
import { Backoff, connectRetrying, isUnavailable } from "./_session.ts";

export const LONG_LINES = ["skip", "truncate", "fail"] as const;
export type LongLines = (typeof LONG_LINES)[number];

export interface LineWriterOptions {
  topic: string;
  /** One attempt to connect. */
  connect(): Promise<Connected>;
  reconnect: boolean;
  /** Lines read but not yet acknowledged, at most. */
  buffer: number;
  longLines: LongLines;
  /** Called for each acknowledged line, in order. */
  report(written: WriteResult): Promise<void>;
  warn(text: string): void;
}

interface Entry {
  line: Uint8Array;
  number: number;
  /** Sent on the current connection (generation), or waiting to be sent. */
  sentOn: number;
  done: boolean;
  result?: WriteResult;
}

/** Streams stdin line by line; resolves once every line is acknowledged, rejects on a failure that ends it. */
export async function writeLines(o: LineWriterOptions): Promise<void> {
  const backoff = new Backoff();
  // The first connection comes before stdin is read: the server's limit decides what a long line is.
  let connected: Connected | undefined = await connectRetrying(o.connect, o.reconnect, backoff, o.warn);
  let limit = await messageLimit(connected);
  let generation = 1;
  const pending = new Deque<Entry>();
  let unsent = 0; // pending entries from this index on are not sent on the current connection
  let failure: unknown;
  let reporting = Promise.resolve();
  let wake: (() => void) | undefined;
  let dropped = 0;
  const progress = () => {
    wake?.();
    wake = undefined;
  };

  // Acknowledged lines leave from the head, reported in order.
  const settleHead = () => {
    while (pending.length > 0 && pending.peek()!.done) {
      const entry = pending.shift()!;
      unsent = Math.max(0, unsent - 1);
      if (entry.result) {
        const result = entry.result;
        reporting = reporting.then(() => o.report(result));
        reporting.catch((error: unknown) => {
          failure ??= error;
          progress();
        });
      }
    }
    progress();
  };

  const send = () => {
    if (!connected || failure) return;
    const { client } = connected;
    const sentOn = generation;
    for (; unsent < pending.length; unsent++) {
      const entry = pending.at(unsent)!;
      entry.sentOn = sentOn;
      client.put(o.topic, entry.line).then(
        (result) => {
          if (entry.sentOn !== sentOn || entry.done) return;
          entry.done = true;
          entry.result = result;
          settleHead();
        },
        (error: unknown) => {
          if (entry.sentOn !== sentOn || entry.done) return;
          if (isBusError(error) && error.code === "TOO_LARGE" && o.longLines !== "fail") {
            // The server's limit is lower than we knew: the line is skipped like any long line.
            o.warn(`line ${entry.number} (${entry.line.length} bytes) refused by the server as too large: skipped`);
            entry.done = true;
            settleHead();
          } else if (o.reconnect && isUnavailable(error)) {
            if (sentOn === generation) lost(error);
          } else {
            failure ??= error;
            progress();
          }
        },
      );
    }
  };

  // The server went away: every line not acknowledged is sent again on the next connection (a
  // line whose reply was lost may so arrive twice: at-least-once).
  const lost = (error: unknown) => {
    const was = connected;
    connected = undefined;
    generation++;
    unsent = 0;
    void was?.client.close();
    o.warn(`${(error as Error).message}; trying again, keeping up to ${o.buffer} lines meanwhile (--buffer)`);
    void (async () => {
      await backoff.wait();
      try {
        const next = await o.connect();
        limit = await messageLimit(next);
        connected = next;
        backoff.reset();
        o.warn(
          `connected again: sending ${pending.length} waiting line${pending.length === 1 ? "" : "s"}` +
            (dropped > 0 ? `; ${dropped} older line${dropped === 1 ? " was" : "s were"} dropped while away (--buffer ${o.buffer})` : ""),
        );
        dropped = 0;
        send();
      } catch (reconnectError) {
        if (isUnavailable(reconnectError)) lost(reconnectError);
        else failure ??= reconnectError;
      }
      progress();
    })();
  };

  const waitForProgress = () => new Promise<void>((resolve) => (wake = resolve));

  for await (const { line, number } of stdinLines(() => limit, o.longLines, o.warn)) {
    if (failure) break;
    while (pending.length >= o.buffer && !failure) {
      if (connected || !o.reconnect) {
        await waitForProgress();
        continue;
      }
      // Away, and the buffer is full: the oldest line makes room (a log keeps its newest lines).
      if (dropped === 0) o.warn(`buffer full while the server is away: dropping the oldest lines (--buffer ${o.buffer})`);
      pending.shift();
      dropped++;
    }
    if (failure) break;
    pending.push({ line, number, sentOn: 0, done: false });
    send();
  }
  while (pending.length > 0 && !failure) await waitForProgress();
  await reporting;
  if (failure) throw failure;
  await connected?.client.close();
}

/**
 * Stdin as lines (without "\n" or "\r\n"), numbered from 1. A line longer than the limit is never
 * held whole: at most limit + 1 bytes of it are kept while the rest is counted.
 */
async function* stdinLines(limit: () => MessageLimit, policy: LongLines, warn: (text: string) => void): AsyncGenerator<{ line: Uint8Array; number: number }> {
  let number = 1;
  let kept: Uint8Array[] = [];
  let keptBytes = 0;
  let total = 0;
  let last = -1;

  const append = (piece: Uint8Array) => {
    if (piece.length === 0) return;
    total += piece.length;
    last = piece[piece.length - 1]!;
    const room = limit().bytes + 1 - keptBytes;
    if (room > 0) {
      const part = piece.length <= room ? piece : piece.subarray(0, room);
      kept.push(part.slice());
      keptBytes += part.length;
    }
    if (policy === "fail" && total > limit().bytes + 1) throw tooLarge(`line ${number} has more than ${limit().bytes + 1} bytes`, limit());
  };

  const end = (): Uint8Array | undefined => {
    const max = limit().bytes;
    const length = last === 13 ? total - 1 : total;
    let line = kept.length === 1 ? kept[0]! : concat(kept, keptBytes);
    kept = [];
    keptBytes = 0;
    total = 0;
    last = -1;
    if (length <= max) return line.subarray(0, length);
    if (policy === "fail") throw tooLarge(`line ${number} is ${length} bytes`, limit());
    if (policy === "skip") {
      warn(`line ${number} is ${length} bytes, over the limit of ${max}: skipped (--long-lines)`);
      return undefined;
    }
    warn(`line ${number} is ${length} bytes, over the limit of ${max}: truncated to ${max} bytes (--long-lines)`);
    line = line.subarray(0, max);
    return line;
  };

  for await (const chunk of stdinChunks()) {
    let start = 0;
    for (;;) {
      const nl = chunk.indexOf(10, start);
      if (nl < 0) {
        append(chunk.subarray(start));
        break;
      }
      append(chunk.subarray(start, nl));
      const line = end();
      if (line) yield { line, number };
      number++;
      start = nl + 1;
    }
  }
  if (total > 0) {
    const line = end();
    if (line) yield { line, number };
  }
}

function concat(parts: Uint8Array[], size: number): Uint8Array {
  const out = new Uint8Array(size);
  let at = 0;
  for (const part of parts) {
    out.set(part, at);
    at += part.length;
  }
  return out;
}
