// The RESP commands: msgbus's native ones (PUT, GET, ON, SUB, ACK, ...) and the Redis aliases
// (LPUSH, BLPOP, PUBLISH, SUBSCRIBE, ...). Each translates to the bus and writes one reply.

import { BusError, isBusError, type ErrorCode } from "../core/errors.ts";
import type { Consumer } from "../core/topic.ts";
import type { Message } from "../core/message.ts";
import { globMatch } from "../core/glob.ts";
import { checkTopicName } from "../core/topic-name.ts";
import { checkDelay, checkLease, checkWait } from "../core/durations.ts";
import { parseDuration } from "../config.ts";
import { setLongTimeout } from "../long-timeout.ts";
import { type RespCommand, hashUpper } from "../protocol/resp.ts";
import { logFor } from "../log.ts";
import { topicJson, totalsJson } from "./metrics.ts";
import { type Connection, writeMessage } from "./tcp.ts";

type Handler = (c: Connection, cmd: RespCommand) => void;

const tcpLog = logFor("tcp");

const VERSION = typeof MSGBUS_VERSION === "string" ? MSGBUS_VERSION : "dev";
declare const MSGBUS_VERSION: string | undefined;

/** The RESP side of the error table: code -> the reply's first word (Redis style: -WORD text). */
export const RESP_PREFIX: Record<ErrorCode, string> = {
  BAD_TOPIC: "BADTOPIC",
  TOO_LARGE: "TOOLARGE",
  TOPIC_FULL: "TOPICFULL",
  BUS_FULL: "BUSFULL",
  UNAUTHORIZED: "NOAUTH",
  FORBIDDEN: "NOPERM",
  NO_MESSAGE: "NOMESSAGE",
  NO_LEASE: "NOLEASE",
  BAD_REQUEST: "ERR",
  NOT_FOUND: "NOTFOUND",
  SLOW_CONSUMER: "SLOWCONSUMER",
  UNAVAILABLE: "UNAVAILABLE",
  STORAGE: "STORAGE",
};

export function respError(error: BusError): string {
  return `${RESP_PREFIX[error.code]} ${error.message}`;
}

/** Commands a connection may send before AUTH. */
const BEFORE_AUTH = new Set(["AUTH", "HELLO", "QUIT", "PING"]);
/** Commands allowed while subscribed (RESP2), as in Redis; RESP3 connections may send anything. */
const WHILE_SUBSCRIBED = new Set(["SUBSCRIBE", "UNSUBSCRIBE", "SUB", "UNSUB", "PING", "QUIT", "RESET"]);
/** Commands allowed while consuming with ON: its acks and more ONs. */
const WHILE_CONSUMING = new Set(["ACK", "NACK", "TOUCH", "ON", "OFF", "PING", "QUIT"]);

export function runCommand(c: Connection, cmd: RespCommand): void {
  const entry = lookup(cmd);
  const replyStart = c.out.length;
  try {
    if (!entry) throw new BusError("BAD_REQUEST", `unknown command '${cmd.text(0).slice(0, 64)}'`);
    const name = entry.name;
    if (!c.authenticated && !BEFORE_AUTH.has(name)) {
      throw new BusError("UNAUTHORIZED", "Authentication required.");
    }
    if (c.mode !== "normal") {
      if (c.mode === "subscribed" && !c.out.resp3 && !WHILE_SUBSCRIBED.has(name)) {
        throw new BusError("BAD_REQUEST", `Can't execute '${name.toLowerCase()}': only SUBSCRIBE / UNSUBSCRIBE / SUB / UNSUB / PING / QUIT are allowed in this context`);
      }
      if (c.mode === "consuming" && !WHILE_CONSUMING.has(name)) {
        throw new BusError("BAD_REQUEST", `Can't execute '${name.toLowerCase()}': only ACK / NACK / TOUCH / ON / OFF / PING / QUIT are allowed while consuming`);
      }
    }
    entry.handler(c, cmd);
  } catch (error) {
    if (isBusError(error)) {
      c.out.error(respError(error));
    } else {
      // A bug, not the client's mistake: say so in the log, drop any half-written reply and
      // answer, so the connection stays in step and the replies before it still go out.
      tcpLog.error(`internal error running ${entry?.name ?? "a command"}: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
      c.out.truncate(replyStart);
      c.out.error("ERR internal error");
    }
  }
}

interface Entry {
  name: string;
  handler: Handler;
}

/** Finds a command by its name's bytes, without decoding them. */
function lookup(cmd: RespCommand): Entry | undefined {
  if (cmd.count === 0) return undefined;
  const candidates = TABLE.get(cmd.hashUpper(0));
  if (!candidates) return undefined;
  for (const entry of candidates) if (cmd.is(0, entry.name)) return entry;
  return undefined;
}

function arity(cmd: RespCommand, min: number, max = Infinity): void {
  if (cmd.count < min || cmd.count > max) {
    throw new BusError("BAD_REQUEST", `wrong number of arguments for '${cmd.text(0).toLowerCase()}' command`);
  }
}

function integer(s: string | undefined, what: string): number {
  s ??= "";
  const n = Number(s);
  if (s === "" || !Number.isInteger(n)) throw new BusError("BAD_REQUEST", `${what} is not an integer: '${s.slice(0, 32)}'`);
  return n;
}

function duration(s: string | undefined, what: string): number {
  s ??= "";
  const ms = parseDuration(s);
  if (ms === undefined) throw new BusError("BAD_REQUEST", `${what} is not a duration (e.g. 500ms, 30s; a plain number is seconds): '${s.slice(0, 32)}'`);
  return ms;
}

/** Reads trailing NAME value options, e.g. GET jobs WAIT 5s LEASE 30s. */
function options(cmd: RespCommand, from: number, known: string[]): Map<string, string> {
  const found = new Map<string, string>();
  for (let i = from; i < cmd.count; i += 2) {
    const key = cmd.text(i).toUpperCase();
    if (!known.includes(key)) throw new BusError("BAD_REQUEST", `unknown option '${cmd.text(i).slice(0, 32)}' (known: ${known.join(", ")})`);
    if (i + 1 >= cmd.count) throw new BusError("BAD_REQUEST", `option ${key} needs a value`);
    found.set(key, cmd.text(i + 1));
  }
  return found;
}

// ---- writing ----

function put(c: Connection, cmd: RespCommand): void {
  arity(cmd, 3);
  const topic = cmd.text(1);
  let id = 0;
  for (let i = 2; i < cmd.count; i++) id = c.ctx.bus.publish(topic, cmd.copy(i)).id;
  c.out.integer(id);
}

function push(c: Connection, cmd: RespCommand): void {
  arity(cmd, 3);
  const topic = cmd.text(1);
  for (let i = 2; i < cmd.count; i++) c.ctx.bus.publish(topic, cmd.copy(i));
  c.out.integer(c.ctx.bus.topic(topic)?.queue.length ?? 0);
}

function publish(c: Connection, cmd: RespCommand): void {
  arity(cmd, 3, 3);
  const topic = cmd.text(1);
  const reached = c.ctx.bus.subscriberCount(topic);
  c.ctx.bus.publish(topic, cmd.copy(2));
  c.out.integer(reached);
}

// ---- taking ----

/** GET topic [WAIT d] [LEASE d] [MAXDELIVERIES n]: one message frame, or null. WAIT 0 waits forever. */
function get(c: Connection, cmd: RespCommand): void {
  arity(cmd, 2);
  const topic = cmd.text(1);
  const opts = options(cmd, 2, ["WAIT", "LEASE", "MAXDELIVERIES"]);
  const lease = opts.has("LEASE") ? checkLease(duration(opts.get("LEASE"), "LEASE"), "LEASE") : undefined;
  const wait = opts.has("WAIT") ? checkWait(duration(opts.get("WAIT"), "WAIT"), "WAIT") : undefined;
  const maxDeliveries = opts.has("MAXDELIVERIES") ? integer(opts.get("MAXDELIVERIES"), "MAXDELIVERIES") : undefined;
  const message = c.ctx.bus.take(topic, { lease, maxDeliveries });
  if (message) {
    writeMessage(c.out, message, false);
    return;
  }
  if (wait === undefined) {
    c.out.nullArray();
    return;
  }
  block(c, [topic], wait, { lease, maxDeliveries }, (m) => writeMessage(c.out, m, false), () => c.out.nullArray());
}

function pop(c: Connection, cmd: RespCommand): void {
  arity(cmd, 2, 3);
  const topic = cmd.text(1);
  if (cmd.count === 2) {
    const message = c.ctx.bus.take(topic);
    if (message) c.out.bulk(message.payload);
    else c.out.nullBulk();
    return;
  }
  const count = integer(cmd.text(2), "count");
  if (count < 0) throw new BusError("BAD_REQUEST", "value is out of range, must be positive");
  const taken = [];
  for (let i = 0; i < count; i++) {
    const message = c.ctx.bus.take(topic);
    if (!message) break;
    taken.push(message);
  }
  if (taken.length === 0) {
    c.out.nullArray();
    return;
  }
  c.out.array(taken.length);
  for (const m of taken) c.out.bulk(m.payload);
}

/** BLPOP key [key ...] timeout (seconds, 0 = forever): [key, payload] or null. */
function blockingPop(c: Connection, cmd: RespCommand): void {
  arity(cmd, 3);
  const seconds = Number(cmd.text(cmd.count - 1));
  if (!Number.isFinite(seconds) || seconds < 0) throw new BusError("BAD_REQUEST", "timeout is not a float or out of range");
  // A tiny positive timeout is at least 1 ms: rounded to 0 it would mean forever.
  const waitMs = checkWait(seconds > 0 ? Math.max(1, Math.round(seconds * 1000)) : 0, "timeout");
  const topics: string[] = [];
  for (let i = 1; i < cmd.count - 1; i++) topics.push(cmd.text(i));
  for (const topic of topics) {
    const message = c.ctx.bus.take(topic);
    if (message) {
      c.out.array(2).bulkString(topic).bulk(message.payload);
      return;
    }
  }
  block(c, topics, waitMs, {}, (m) => c.out.array(2).bulkString(m.topic).bulk(m.payload), () => c.out.nullArray());
}

/**
 * Parks the connection until a message arrives on one of `topics` or `waitMs` passes (0: forever).
 * All or nothing: when the bus refuses one topic (a bad name, --max-topics), the consumer leaves
 * every topic it joined and the connection is not blocked, so the error is the only reply.
 */
function block(
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

function llen(c: Connection, cmd: RespCommand): void {
  arity(cmd, 2, 2);
  const topic = checkTopicName(cmd.text(1));
  c.out.integer(c.ctx.bus.topic(topic)?.queue.length ?? 0);
}

// ---- leases ----

function ack(c: Connection, cmd: RespCommand): void {
  arity(cmd, 3);
  const opts = options(cmd, 3, ["DELIVERY"]);
  const delivery = opts.has("DELIVERY") ? integer(opts.get("DELIVERY"), "DELIVERY") : undefined;
  c.ctx.bus.ack(cmd.text(1), integer(cmd.text(2), "id"), delivery);
  c.out.ok();
}

function nack(c: Connection, cmd: RespCommand): void {
  arity(cmd, 3);
  const opts = options(cmd, 3, ["DELAY", "DELIVERY"]);
  const delay = opts.has("DELAY") ? checkDelay(duration(opts.get("DELAY"), "DELAY"), "DELAY") : 0;
  const delivery = opts.has("DELIVERY") ? integer(opts.get("DELIVERY"), "DELIVERY") : undefined;
  c.ctx.bus.nack(cmd.text(1), integer(cmd.text(2), "id"), delay, delivery);
  c.out.ok();
}

/** TOUCH topic id [LEASE d] [DELIVERY n]: renews a lease (a consumer still at work); replies its new expiry (server ms). */
function touch(c: Connection, cmd: RespCommand): void {
  arity(cmd, 3);
  const opts = options(cmd, 3, ["LEASE", "DELIVERY"]);
  const lease = opts.has("LEASE") ? duration(opts.get("LEASE"), "LEASE") : undefined;
  const delivery = opts.has("DELIVERY") ? integer(opts.get("DELIVERY"), "DELIVERY") : undefined;
  c.out.integer(c.ctx.bus.touch(cmd.text(1), integer(cmd.text(2), "id"), lease, delivery));
}

/** ON topic [LEASE d] [PREFETCH n] [MAXDELIVERIES n]: a streaming consumer; messages come as pushes. */
function on(c: Connection, cmd: RespCommand): void {
  arity(cmd, 2);
  const topic = cmd.text(1);
  const opts = options(cmd, 2, ["LEASE", "PREFETCH", "MAXDELIVERIES"]);
  if (c.consumers.has(topic)) throw new BusError("BAD_REQUEST", `already consuming ${topic} on this connection`);
  const prefetch = opts.has("PREFETCH") ? integer(opts.get("PREFETCH"), "PREFETCH") : 1;
  if (prefetch < 1 || prefetch > 10000) throw new BusError("BAD_REQUEST", "PREFETCH must be from 1 to 10000");
  const lease = opts.has("LEASE") ? checkLease(duration(opts.get("LEASE"), "LEASE"), "LEASE") : c.ctx.config.leaseTime;
  const maxDeliveries = opts.has("MAXDELIVERIES") ? integer(opts.get("MAXDELIVERIES"), "MAXDELIVERIES") : undefined;
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
function off(c: Connection, cmd: RespCommand): void {
  arity(cmd, 2, 2);
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

// ---- subscribing ----

/** SUB topic [SINCE id]: native frames; replies +OK, then pushes. */
function sub(c: Connection, cmd: RespCommand): void {
  arity(cmd, 2);
  const topic = cmd.text(1);
  const opts = options(cmd, 2, ["SINCE"]);
  const since = opts.has("SINCE") ? integer(opts.get("SINCE"), "SINCE") : undefined;
  if (c.subscriptions.has(topic)) throw new BusError("BAD_REQUEST", `already subscribed to ${topic}`);
  c.mode = "subscribed";
  c.out.ok();
  // The replay goes out as the client reads it (pushMessage waits once the socket is behind).
  c.replaying = true;
  let unsubscribe: () => void;
  try {
    unsubscribe = c.ctx.bus.subscribe(topic, { send: (m) => c.pushMessage(m, false) }, since);
  } finally {
    c.replaying = false;
  }
  c.subscriptions.set(topic, unsubscribe);
}

function unsub(c: Connection, cmd: RespCommand): void {
  arity(cmd, 2, 2);
  const topic = cmd.text(1);
  c.subscriptions.get(topic)?.();
  c.subscriptions.delete(topic);
  if (c.subscriptions.size === 0 && c.mode === "subscribed") c.mode = "normal";
  c.out.ok();
}

function subscribe(c: Connection, cmd: RespCommand): void {
  arity(cmd, 2);
  for (let i = 1; i < cmd.count; i++) {
    const topic = cmd.text(i);
    if (!c.subscriptions.has(topic)) {
      const unsubscribe = c.ctx.bus.subscribe(topic, { send: (m) => c.pushMessage(m, true) });
      c.subscriptions.set(topic, unsubscribe);
    }
    c.mode = "subscribed";
    c.out.push(3).bulkString("subscribe").bulkString(topic).integer(c.subscriptions.size);
  }
}

function unsubscribe(c: Connection, cmd: RespCommand): void {
  const topics = [...c.subscriptions.keys()];
  if (cmd.count > 1) {
    topics.length = 0;
    for (let i = 1; i < cmd.count; i++) topics.push(cmd.text(i));
  }
  if (topics.length === 0) c.out.push(3).bulkString("unsubscribe").nullBulk().integer(0);
  for (const topic of topics) {
    c.subscriptions.get(topic)?.();
    c.subscriptions.delete(topic);
    c.out.push(3).bulkString("unsubscribe").bulkString(topic).integer(c.subscriptions.size);
  }
  if (c.subscriptions.size === 0) c.mode = "normal";
}

// ---- information ----

/** STATS [topic]: the same counters as /_/topics, as a map with snake_case keys. */
function stats(c: Connection, cmd: RespCommand): void {
  arity(cmd, 1, 2);
  if (cmd.count === 1) {
    writeFields(c, totalsJson(c.ctx));
    return;
  }
  const topic = c.ctx.bus.topic(cmd.text(1));
  if (!topic) throw new BusError("NOT_FOUND", `no topic ${cmd.text(1).slice(0, 128)}`);
  writeFields(c, topicJson(topic));
}

function writeFields(c: Connection, fields: Record<string, string | number>): void {
  const entries = Object.entries(fields);
  c.out.map(entries.length);
  for (const [key, value] of entries) {
    c.out.bulkString(key.replace(/[A-Z]/g, (letter) => `_${letter.toLowerCase()}`));
    // Counts are integers; rates (messages per second) are not, and RESP2 has no float type.
    if (typeof value === "number" && Number.isInteger(value)) c.out.integer(value);
    else c.out.bulkString(String(value));
  }
}

function topics(c: Connection, cmd: RespCommand): void {
  arity(cmd, 1, 1);
  const list = c.ctx.bus.topicList();
  c.out.array(list.length);
  for (const t of list) c.out.bulkString(t.name);
}

function purge(c: Connection, cmd: RespCommand): void {
  arity(cmd, 2, 2);
  c.out.integer(c.ctx.bus.purge(cmd.text(1)));
}

/** DEL topic [topic ...] (Redis): deletes the topics; replies how many existed. None is deleted while one is in use. */
function del(c: Connection, cmd: RespCommand): void {
  arity(cmd, 2);
  const names: string[] = [];
  for (let i = 1; i < cmd.count; i++) names.push(cmd.text(i));
  c.out.integer(c.ctx.bus.deleteTopics(names));
}

/** RM topic: deletes one topic; replies how many messages it dropped, -NOTFOUND when there is no such topic. */
function rm(c: Connection, cmd: RespCommand): void {
  arity(cmd, 2, 2);
  const topic = cmd.text(1);
  const dropped = c.ctx.bus.deleteTopic(topic);
  if (dropped === undefined) throw new BusError("NOT_FOUND", `no topic ${topic.slice(0, 128)}`);
  c.out.integer(dropped);
}

// ---- connection ----

function ping(c: Connection, cmd: RespCommand): void {
  arity(cmd, 1, 2);
  if (c.mode === "subscribed" && !c.out.resp3) {
    c.out.array(2).bulkString("pong").bulk(cmd.count > 1 ? cmd.view(1) : new Uint8Array(0));
  } else if (cmd.count === 2) {
    c.out.bulk(cmd.view(1));
  } else {
    c.out.raw(PONG);
  }
}

const PONG = new TextEncoder().encode("+PONG\r\n");

function echo(c: Connection, cmd: RespCommand): void {
  arity(cmd, 2, 2);
  c.out.bulk(cmd.view(1));
}

function quit(c: Connection): void {
  c.out.ok();
  c.quitting = true;
}

function auth(c: Connection, cmd: RespCommand): void {
  arity(cmd, 2, 3);
  const token = cmd.view(cmd.count - 1);
  if (!c.ctx.auth.required) throw new BusError("BAD_REQUEST", "AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?");
  if (!c.ctx.auth.check(token)) {
    c.out.error("WRONGPASS invalid username-password pair or user is disabled.");
    return;
  }
  c.authenticated = true;
  c.out.ok();
}

/** HELLO [2|3] [AUTH user token] [SETNAME name]: switches protocol, answers server info. */
function hello(c: Connection, cmd: RespCommand): void {
  let i = 1;
  let version = c.out.resp3 ? 3 : 2;
  if (cmd.count > 1 && /^\d+$/.test(cmd.text(1))) {
    version = Number(cmd.text(1));
    i = 2;
    if (version !== 2 && version !== 3) {
      c.out.error("NOPROTO unsupported protocol version");
      return;
    }
  }
  for (; i < cmd.count; i++) {
    const opt = cmd.text(i).toUpperCase();
    if (opt === "AUTH" && i + 2 < cmd.count) {
      if (c.ctx.auth.required && !c.ctx.auth.check(cmd.view(i + 2))) {
        c.out.error("WRONGPASS invalid username-password pair or user is disabled.");
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
  if (!c.authenticated) throw new BusError("UNAUTHORIZED", "HELLO must be called with the client already authenticated, otherwise the HELLO <proto> AUTH <user> <pass> option can be used to authenticate the client and select the RESP protocol version at the same time");
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

/** Enough of Redis's admin commands that redis-cli and redis-benchmark start without complaint. */
function command(c: Connection, cmd: RespCommand): void {
  const sub = cmd.text(1).toUpperCase();
  if (sub === "COUNT") c.out.integer(Object.keys(COMMANDS).length);
  else if (sub === "DOCS" || sub === "" || sub === "INFO") c.out.array(0);
  else c.out.array(0);
}

function config(c: Connection, cmd: RespCommand): void {
  arity(cmd, 2);
  const sub = cmd.text(1).toUpperCase();
  if (sub !== "GET") {
    c.out.ok();
    return;
  }
  const known: Record<string, string> = {
    save: "",
    appendonly: c.ctx.config.data ? "yes" : "no",
    "proto-max-bulk-len": String(c.ctx.config.maxMessageSize),
    maxclients: String(c.ctx.config.maxConnections),
  };
  const pairs: [string, string][] = [];
  for (let p = 2; p < cmd.count; p++) {
    const pattern = cmd.text(p);
    for (const [k, v] of Object.entries(known)) if (globMatch(pattern, k, true)) pairs.push([k, v]);
  }
  c.out.map(pairs.length);
  for (const [k, v] of pairs) c.out.bulkString(k).bulkString(v);
}

function info(c: Connection): void {
  const s = c.ctx.stats;
  const lines = [
    "# Server",
    `msgbus_version:${VERSION}`,
    "redis_version:7.0.0",
    `uptime_in_seconds:${Math.floor((Date.now() - s.started) / 1000)}`,
    "# Clients",
    `connected_clients:${s.openConnections}`,
    "# Memory",
    `used_memory:${process.memoryUsage().rss}`,
    `queued_bytes:${c.ctx.bus.bytes}`,
    `input_bytes_held:${c.input.held}`,
    "",
  ];
  c.out.bulkString(lines.join("\r\n"));
}

function ok(c: Connection): void {
  c.out.ok();
}

const COMMANDS: Record<string, Handler> = {
  PUT: put,
  PUB: put,
  GET: get,
  ON: on,
  OFF: off,
  SUB: sub,
  UNSUB: unsub,
  ACK: ack,
  NACK: nack,
  TOUCH: touch,
  STATS: stats,
  TOPICS: topics,
  PURGE: purge,
  DEL: del,
  RM: rm,
  LPUSH: push,
  RPUSH: push,
  LPOP: pop,
  RPOP: pop,
  BLPOP: blockingPop,
  BRPOP: blockingPop,
  LLEN: llen,
  PUBLISH: publish,
  SUBSCRIBE: subscribe,
  UNSUBSCRIBE: unsubscribe,
  PING: ping,
  ECHO: echo,
  QUIT: quit,
  AUTH: auth,
  HELLO: hello,
  COMMAND: command,
  CONFIG: config,
  INFO: info,
  CLIENT: ok,
  SELECT: ok,
  RESET: (c) => {
    for (const u of c.subscriptions.values()) u();
    c.subscriptions.clear();
    c.releaseConsumers();
    c.mode = "normal";
    c.out.resp3 = false;
    // As in Redis: the connection is back to its first state, unauthenticated when a token is set.
    c.authenticated = !c.ctx.auth.required;
    c.out.simple("RESET");
  },
};

const TABLE = new Map<number, Entry[]>();
for (const [name, handler] of Object.entries(COMMANDS)) {
  const h = hashUpper(name);
  const list = TABLE.get(h) ?? [];
  list.push({ name, handler });
  TABLE.set(h, list);
}
