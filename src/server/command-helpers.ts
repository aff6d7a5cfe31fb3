// What several RESP commands share: reading NAME value options, durations and whole numbers from
// their arguments, and parking a connection until a message comes (GET WAIT, BLPOP).

import { BusError } from "../core/errors.ts";
import type { Maybe } from "../core/engine.ts";
import type { Consumer } from "../core/topic.ts";
import type { Message } from "../core/message.ts";
import { wholeNumber } from "../core/numbers.ts";
import { parseDuration } from "../config.ts";
import { setLongTimeout } from "../long-timeout.ts";
import type { RespCommand } from "../protocol/resp-parser.ts";
import type { Connection } from "./tcp.ts";

declare const MSGBUS_VERSION: string | undefined;
/** The version HELLO and INFO report. */
export const VERSION = typeof MSGBUS_VERSION === "string" ? MSGBUS_VERSION : "dev";

/** A whole number in decimal digits (core/numbers.ts), from `min`; a missing argument reads as "". */
export function number(text: string | undefined, what: string, min = 0, max?: number): number {
  return wholeNumber(text ?? "", what, min, max);
}

export function duration(s: string | undefined, what: string): number {
  s ??= "";
  const ms = parseDuration(s);
  if (ms === undefined) throw new BusError("BAD_REQUEST", `${what} is not a duration (e.g. 500ms, 30s; a plain number is seconds): '${s.slice(0, 32)}'`);
  return ms;
}

/** Reads trailing NAME value options, e.g. GET jobs WAIT 5s LEASE 30s. */
export function options(cmd: RespCommand, from: number, known: string[]): Map<string, string> {
  const found = new Map<string, string>();
  for (let i = from; i < cmd.count; i += 2) {
    const key = cmd.text(i).toUpperCase();
    if (!known.includes(key)) throw new BusError("BAD_REQUEST", `unknown option '${cmd.text(i).slice(0, 32)}' (known: ${known.join(", ")})`);
    if (i + 1 >= cmd.count) throw new BusError("BAD_REQUEST", `option ${key} needs a value`);
    found.set(key, cmd.text(i + 1));
  }
  return found;
}

/** Writes a command's reply now, or, for a Promise (the Redis engine), in its place once it comes. */
export function answer<T>(c: Connection, result: Maybe<T>, write: (value: T) => void): void {
  if (result instanceof Promise) c.later(result, write);
  else write(result);
}

/**
 * Writes every value argument from `from` on (PUT t a b c, LPUSH): the last id, at once with the
 * in-memory bus (no array, no closure on this hot path), or once every write is done (Redis).
 */
export function publishAll(c: Connection, topic: string, cmd: RespCommand, from: number): Maybe<number> {
  const bus = c.ctx.bus;
  let result: Maybe<number> = 0;
  let pending: Promise<number>[] | undefined;
  for (let i = from; i < cmd.count; i++) {
    result = bus.publishBorrowed(topic, cmd.bytesOf(i), cmd.owns(i), cmd.startOf(i), cmd.endOf(i));
    if (result instanceof Promise) (pending ??= []).push(result);
  }
  if (!pending) return result;
  const final = result;
  return Promise.all(pending).then(() => final);
}

/**
 * Parks the connection until a message arrives on one of `topics` or `waitMs` passes (0: forever).
 * All or nothing: when the bus refuses one topic (a bad name, --max-topics), the consumer leaves
 * every topic it joined and the connection is not blocked, so the error is the only reply.
 */
export function block(
  c: Connection,
  topics: string[],
  waitMs: number,
  take: { lease?: number; maxDeliveries?: number },
  reply: (m: Message) => void,
  timedOut: () => void,
): void {
  let registering = true;
  const consumer: Consumer = {
    credit: 1,
    lease: take.lease,
    maxDeliveries: take.maxDeliveries,
    deliver(message) {
      // Delivered while joining: the command is answered in this batch, nothing to wake.
      if (registering) return reply(message);
      c.replyLate(() => reply(message));
      // Safe inside the bus's dispatch: with its credit spent, unblock only removes this
      // consumer from the other topics' waiting lists.
      c.unblock();
    },
  };
  // All or nothing: a refusal (BUSFULL, a bad name) throws having registered nowhere, so the
  // connection is not blocked and its next command is answered in turn.
  try {
    c.ctx.bus.consumeAny(topics, consumer);
  } finally {
    registering = false;
  }
  if (consumer.credit <= 0) return; // served while registering: nothing left to wait for
  const timer =
    waitMs > 0
      ? setLongTimeout(() => {
          c.replyLate(timedOut);
          c.unblock();
        }, waitMs)
      : undefined;
  c.blocked = { consumer, topics, timer };
}
