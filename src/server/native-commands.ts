// msgbus's native RESP commands: writing (PUT), taking (GET, ON) and leases (ACK, NACK, TOUCH),
// subscribing (SUB), topic information (STATS, TOPICS, PURGE, RM) and the connection (PING, AUTH,
// HELLO, QUIT, RESET). Arity and the modes a command is allowed in are in tcp-commands' table.

import { DEFAULT_PEEK, MAX_PEEK } from "../core/bus.ts";
import { BusError } from "../core/errors.ts";
import type { Consumer } from "../core/topic.ts";
import type { Message } from "../core/message.ts";
import { checkDelay, checkLease, checkWait } from "../core/durations.ts";
import { parseWholeNumber } from "../core/numbers.ts";
import { writeMessage } from "../protocol/frame.ts";
import { NOPROTO_REPLY, WRONGPASS_REPLY } from "../protocol/resp-errors.ts";
import type { RespCommand } from "../protocol/resp-parser.ts";
import { topicJson, totalsJson } from "./metrics.ts";
import { VERSION, answer, block, duration, number, options, publishAll } from "./command-helpers.ts";
import type { Connection } from "./tcp.ts";
import { subscribePushes } from "./tcp-fanout.ts";

export function put(c: Connection, cmd: RespCommand): void {
  const id = publishAll(c, cmd.text(1), cmd, 2);
  if (id instanceof Promise) c.later(id, (last) => c.out.integer(last));
  else c.out.integer(id);
}

/** GET topic [WAIT d] [LEASE d] [MAXDELIVERIES n]: one message frame, or null. WAIT 0 waits forever. */
export function get(c: Connection, cmd: RespCommand): void {
  const topic = cmd.text(1);
  const opts = options(cmd, 2, ["WAIT", "LEASE", "MAXDELIVERIES"]);
  const lease = opts.has("LEASE") ? checkLease(duration(opts.get("LEASE"), "LEASE"), "LEASE") : undefined;
  const wait = opts.has("WAIT") ? checkWait(duration(opts.get("WAIT"), "WAIT"), "WAIT") : undefined;
  const maxDeliveries = opts.has("MAXDELIVERIES") ? number(opts.get("MAXDELIVERIES"), "MAXDELIVERIES", 1) : undefined;
  const wake = () =>
    block(
      c,
      [topic],
      wait!,
      { lease, maxDeliveries },
      (m) => writeMessage(c.out, m, false),
      () => c.out.nullArray(),
    );
  // A remote engine's consumer tries a take as it registers: one round trip, not two.
  if (wait !== undefined && c.ctx.bus.remote) {
    wake();
    return;
  }
  answer(c, c.ctx.bus.take(topic, { lease, maxDeliveries }), (message) => {
    if (message) writeMessage(c.out, message, false);
    else if (wait === undefined) c.out.nullArray();
    else wake();
  });
}

/** PEEK topic [COUNT n] [SINCE id]: up to n (default 10, at most 1000) queued message frames in id order, none taken. */
export function peek(c: Connection, cmd: RespCommand): void {
  const opts = options(cmd, 2, ["COUNT", "SINCE"]);
  const count = opts.has("COUNT") ? number(opts.get("COUNT"), "COUNT", 1, MAX_PEEK) : DEFAULT_PEEK;
  const since = opts.has("SINCE") ? number(opts.get("SINCE"), "SINCE") : 0;
  answer(c, c.ctx.bus.peek(cmd.text(1), count, since), (messages) => {
    c.out.array(messages.length);
    for (const message of messages) writeMessage(c.out, message, false);
  });
}

export function ack(c: Connection, cmd: RespCommand): void {
  const opts = options(cmd, 3, ["DELIVERY"]);
  const delivery = opts.has("DELIVERY") ? number(opts.get("DELIVERY"), "DELIVERY", 1) : undefined;
  answer(c, c.ctx.bus.ack(cmd.text(1), number(cmd.text(2), "id", 1), delivery), () => c.out.ok());
}

export function nack(c: Connection, cmd: RespCommand): void {
  const opts = options(cmd, 3, ["DELAY", "DELIVERY"]);
  const delay = opts.has("DELAY") ? checkDelay(duration(opts.get("DELAY"), "DELAY"), "DELAY") : 0;
  const delivery = opts.has("DELIVERY") ? number(opts.get("DELIVERY"), "DELIVERY", 1) : undefined;
  answer(c, c.ctx.bus.nack(cmd.text(1), number(cmd.text(2), "id", 1), delay, delivery), () => c.out.ok());
}

/** TOUCH topic id [LEASE d] [DELIVERY n]: renews a lease (a consumer still at work); replies its new expiry (server ms). */
export function touch(c: Connection, cmd: RespCommand): void {
  const opts = options(cmd, 3, ["LEASE", "DELIVERY"]);
  const lease = opts.has("LEASE") ? duration(opts.get("LEASE"), "LEASE") : undefined;
  const delivery = opts.has("DELIVERY") ? number(opts.get("DELIVERY"), "DELIVERY", 1) : undefined;
  answer(c, c.ctx.bus.touch(cmd.text(1), number(cmd.text(2), "id", 1), lease, delivery), (expires) => c.out.integer(expires));
}

/** ON topic [LEASE d] [PREFETCH n] [MAXDELIVERIES n]: a streaming consumer; messages come as pushes. */
export function on(c: Connection, cmd: RespCommand): void {
  const topic = cmd.text(1);
  const opts = options(cmd, 2, ["LEASE", "PREFETCH", "MAXDELIVERIES"]);
  if (c.consumers.has(topic)) throw new BusError("BAD_REQUEST", `already consuming ${topic} on this connection`);
  const prefetch = opts.has("PREFETCH") ? number(opts.get("PREFETCH"), "PREFETCH", 1, 10000) : 1;
  const lease = opts.has("LEASE") ? checkLease(duration(opts.get("LEASE"), "LEASE"), "LEASE") : c.ctx.config.leaseTime;
  const maxDeliveries = opts.has("MAXDELIVERIES") ? number(opts.get("MAXDELIVERIES"), "MAXDELIVERIES", 1) : undefined;
  // Messages handed out while registering wait for the +OK: the reply goes out before the first push.
  let early: Message[] | undefined = [];
  const consumer: Consumer = {
    credit: prefetch,
    lease,
    maxDeliveries,
    streaming: true,
    deliver(message) {
      if (early) return void early.push(message);
      // A delivery, not backlog: PREFETCH bounds how many are unacked.
      c.pushMessage(message, false, false);
    },
  };
  c.ctx.bus.consume(topic, consumer); // a refusal (bad lease, BUSFULL) throws having registered nothing
  c.mode = "consuming";
  c.consumers.set(topic, consumer);
  c.out.ok();
  for (const message of early) writeMessage(c.out, message, true);
  early = undefined;
}

/**
 * OFF topic: stop receiving messages. Leases already held stay with the connection so its running
 * work can still be acked or nacked; closing the connection returns what is left.
 */
export function off(c: Connection, cmd: RespCommand): void {
  const topic = cmd.text(1);
  const consumer = c.consumers.get(topic);
  if (consumer) {
    c.ctx.bus.stopConsuming(topic, consumer);
    c.consumers.delete(topic);
    c.stoppedConsumers.push([topic, consumer]);
  }
  if (c.consumers.size === 0 && c.mode === "consuming") c.mode = "normal";
  c.out.ok();
}

/** SUB topic [SINCE id]: native frames; replies +OK, then pushes. */
export function sub(c: Connection, cmd: RespCommand): void {
  const topic = cmd.text(1);
  const opts = options(cmd, 2, ["SINCE"]);
  const since = opts.has("SINCE") ? number(opts.get("SINCE"), "SINCE") : undefined;
  if (c.subscriptions.has(topic)) throw new BusError("BAD_REQUEST", `already subscribed to ${topic}`);
  c.mode = "subscribed";
  c.out.ok();
  // The replay goes out as the client reads it (pushMessage waits once the socket is behind).
  c.replaying = true;
  let unsubscribe: () => void;
  try {
    unsubscribe = subscribePushes(c, topic, false, since);
  } finally {
    c.replaying = false;
  }
  c.subscriptions.set(topic, unsubscribe);
}

export function unsub(c: Connection, cmd: RespCommand): void {
  const topic = cmd.text(1);
  c.subscriptions.get(topic)?.();
  c.subscriptions.delete(topic);
  if (c.subscriptions.size === 0 && c.mode === "subscribed") c.mode = "normal";
  c.out.ok();
}

/** STATS [topic]: the same counters as /_/topics, as a map with snake_case keys. */
export function stats(c: Connection, cmd: RespCommand): void {
  if (cmd.count === 1) {
    writeFields(c, totalsJson(c.ctx));
    return;
  }
  const topic = c.ctx.bus.topic(cmd.text(1));
  if (!topic) throw new BusError("NOT_FOUND", `no topic ${cmd.text(1).slice(0, 128)}`);
  writeFields(c, topicJson(topic));
}

function writeFields<T extends { [K in keyof T]: string | number }>(c: Connection, fields: T): void {
  const entries: [string, string | number][] = Object.entries(fields);
  c.out.map(entries.length);
  for (const [key, value] of entries) {
    c.out.bulkString(key.replace(/[A-Z]/g, (letter) => `_${letter.toLowerCase()}`));
    // Counts are integers; rates (messages per second) are not, and RESP2 has no float type.
    if (typeof value === "number" && Number.isInteger(value)) c.out.integer(value);
    else c.out.bulkString(String(value));
  }
}

/** TOPICS: the topics the token may read. */
export function topics(c: Connection, _cmd: RespCommand): void {
  const list = c.ctx.bus.topicList().filter((t) => c.ctx.auth.may(c.principal, t.name, "read"));
  c.out.array(list.length);
  for (const t of list) c.out.bulkString(t.name);
}

export function purge(c: Connection, cmd: RespCommand): void {
  answer(c, c.ctx.bus.purge(cmd.text(1)), (purged) => c.out.integer(purged));
}

/** RM topic: deletes one topic; replies how many messages it dropped, -NOTFOUND when there is no such topic. */
export function rm(c: Connection, cmd: RespCommand): void {
  const topic = cmd.text(1);
  answer(c, c.ctx.bus.deleteTopic(topic), (dropped) => {
    if (dropped === undefined) throw new BusError("NOT_FOUND", `no topic ${topic.slice(0, 128)}`);
    c.out.integer(dropped);
  });
}

export function ping(c: Connection, cmd: RespCommand): void {
  if (c.mode === "subscribed" && !c.out.resp3) {
    c.out
      .array(2)
      .bulkString("pong")
      .bulk(cmd.count > 1 ? cmd.view(1) : new Uint8Array(0));
  } else if (cmd.count === 2) {
    c.out.bulk(cmd.view(1));
  } else {
    c.out.raw(PONG);
  }
}

const PONG = new TextEncoder().encode("+PONG\r\n");

export function quit(c: Connection): void {
  c.out.ok();
  c.quitting = true;
}

export function auth(c: Connection, cmd: RespCommand): void {
  const token = cmd.view(cmd.count - 1);
  if (!c.ctx.auth.required)
    throw new BusError(
      "BAD_REQUEST",
      "AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?",
    );
  if (!accept(c, token)) {
    c.out.error(WRONGPASS_REPLY);
    return;
  }
  c.out.ok();
}

/** AUTH's and HELLO AUTH's check: the connection takes the token's identity, or stays as it was. */
function accept(c: Connection, token: Uint8Array): boolean {
  const who = c.ctx.auth.identify(token);
  if (!who) {
    c.ctx.auth.refused(c.remote, "tcp", token);
    return false;
  }
  c.principal = who;
  c.authenticated = true;
  return true;
}

/** HELLO [2|3] [AUTH user token] [SETNAME name]: switches protocol, answers server info. */
export function hello(c: Connection, cmd: RespCommand): void {
  let i = 1;
  let version = c.out.resp3 ? 3 : 2;
  const asked = cmd.count > 1 ? parseWholeNumber(cmd.text(1)) : undefined;
  if (asked !== undefined) {
    version = asked;
    i = 2;
    if (version !== 2 && version !== 3) {
      c.out.error(NOPROTO_REPLY);
      return;
    }
  }
  for (; i < cmd.count; i++) {
    const opt = cmd.text(i).toUpperCase();
    if (opt === "AUTH" && i + 2 < cmd.count) {
      if (c.ctx.auth.required && !accept(c, cmd.view(i + 2))) {
        c.out.error(WRONGPASS_REPLY);
        return;
      }
      c.authenticated = true;
      i += 2;
    } else if (opt === "SETNAME" && i + 1 < cmd.count) {
      i += 1;
    } else {
      throw new BusError("BAD_REQUEST", `syntax error in HELLO option '${opt.slice(0, 32)}'`);
    }
  }
  if (!c.authenticated)
    throw new BusError(
      "UNAUTHORIZED",
      "HELLO must be called with the client already authenticated, otherwise the HELLO <proto> AUTH <user> <pass> option can be used to authenticate the client and select the RESP protocol version at the same time",
    );
  c.out.resp3 = version === 3;
  c.out.map(7);
  c.out.bulkString("server").bulkString("msgbus");
  c.out.bulkString("version").bulkString(VERSION);
  c.out.bulkString("proto").integer(version);
  c.out.bulkString("id").integer(0);
  c.out.bulkString("mode").bulkString("standalone");
  c.out.bulkString("role").bulkString("master");
  c.out.bulkString("modules").array(0);
}

/** RESET: the connection back to its first state (as in Redis: unauthenticated when a token is set). */
export function reset(c: Connection): void {
  for (const u of c.subscriptions.values()) u();
  c.subscriptions.clear();
  c.releaseConsumers();
  c.mode = "normal";
  c.out.resp3 = false;
  c.authenticated = !c.ctx.auth.required;
  c.principal = undefined;
  c.out.simple("RESET");
}
