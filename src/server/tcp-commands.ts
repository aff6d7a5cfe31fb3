// The RESP commands: msgbus's native ones (PUT, GET, ON, SUB, ACK, ...) and the Redis aliases
// (LPUSH, BLPOP, PUBLISH, SUBSCRIBE, ...). Each translates to the bus and writes one reply.

import { BusError, isBusError, type ErrorCode } from "../core/errors.ts";
import type { Consumer } from "../core/topic.ts";
import type { Message } from "../core/message.ts";
import { checkTopicName } from "../core/topic-name.ts";
import { parseDuration } from "../config.ts";
import { type Connection, writeMessage } from "./tcp.ts";

type Handler = (c: Connection, args: Uint8Array[]) => void;

const decoder = new TextDecoder();
const text = (b: Uint8Array | undefined): string => (b ? decoder.decode(b) : "");
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
const WHILE_CONSUMING = new Set(["ACK", "NACK", "ON", "OFF", "PING", "QUIT"]);

export function runCommand(c: Connection, args: Uint8Array[]): void {
  const name = text(args[0]).toUpperCase();
  const handler = COMMANDS[name];
  try {
    if (!handler) {
      throw new BusError("BAD_REQUEST", `unknown command '${text(args[0]).slice(0, 64)}'`);
    }
    if (!c.authenticated && !BEFORE_AUTH.has(name)) {
      throw new BusError("UNAUTHORIZED", "Authentication required.");
    }
    if (c.mode === "subscribed" && !c.out.resp3 && !WHILE_SUBSCRIBED.has(name)) {
      throw new BusError("BAD_REQUEST", `Can't execute '${name.toLowerCase()}': only SUBSCRIBE / UNSUBSCRIBE / SUB / UNSUB / PING / QUIT are allowed in this context`);
    }
    if (c.mode === "consuming" && !WHILE_CONSUMING.has(name)) {
      throw new BusError("BAD_REQUEST", `Can't execute '${name.toLowerCase()}': only ACK / NACK / ON / OFF / PING / QUIT are allowed while consuming`);
    }
    handler(c, args);
  } catch (error) {
    if (isBusError(error)) c.out.error(respError(error));
    else throw error;
  }
}

function arity(args: Uint8Array[], min: number, max = Infinity): void {
  if (args.length < min || args.length > max) {
    throw new BusError("BAD_REQUEST", `wrong number of arguments for '${text(args[0]).toLowerCase()}' command`);
  }
}

function integer(b: Uint8Array | undefined, what: string): number {
  const s = text(b);
  const n = Number(s);
  if (s === "" || !Number.isInteger(n)) throw new BusError("BAD_REQUEST", `${what} is not an integer: '${s.slice(0, 32)}'`);
  return n;
}

function duration(b: Uint8Array | undefined, what: string): number {
  const s = text(b);
  const ms = parseDuration(s);
  if (ms === undefined) throw new BusError("BAD_REQUEST", `${what} is not a duration (e.g. 500ms, 30s; a plain number is seconds): '${s.slice(0, 32)}'`);
  return ms;
}

/** Reads trailing NAME value options, e.g. GET jobs WAIT 5s LEASE 30s. */
function options(args: Uint8Array[], from: number, known: string[]): Map<string, Uint8Array> {
  const found = new Map<string, Uint8Array>();
  for (let i = from; i < args.length; i += 2) {
    const key = text(args[i]).toUpperCase();
    if (!known.includes(key)) throw new BusError("BAD_REQUEST", `unknown option '${text(args[i]).slice(0, 32)}' (known: ${known.join(", ")})`);
    if (i + 1 >= args.length) throw new BusError("BAD_REQUEST", `option ${key} needs a value`);
    found.set(key, args[i + 1]!);
  }
  return found;
}

/** Payloads are kept by the bus: copy them out of the socket's read buffer. */
function own(payload: Uint8Array): Uint8Array {
  return payload.slice();
}

// ---- writing ----

function put(c: Connection, args: Uint8Array[]): void {
  arity(args, 3);
  const topic = text(args[1]);
  let id = 0;
  for (let i = 2; i < args.length; i++) id = c.ctx.bus.publish(topic, own(args[i]!)).id;
  c.out.integer(id);
}

function push(c: Connection, args: Uint8Array[]): void {
  arity(args, 3);
  const topic = text(args[1]);
  for (let i = 2; i < args.length; i++) c.ctx.bus.publish(topic, own(args[i]!));
  c.out.integer(c.ctx.bus.topic(topic)?.queue.length ?? 0);
}

function publish(c: Connection, args: Uint8Array[]): void {
  arity(args, 3, 3);
  const topic = text(args[1]);
  const reached = c.ctx.bus.subscriberCount(topic);
  c.ctx.bus.publish(topic, own(args[2]!));
  c.out.integer(reached);
}

// ---- taking ----

/** GET topic [WAIT d] [LEASE d] [MAXDELIVERIES n]: one message frame, or null. WAIT 0 waits forever. */
function get(c: Connection, args: Uint8Array[]): void {
  arity(args, 2);
  const topic = text(args[1]);
  const opts = options(args, 2, ["WAIT", "LEASE", "MAXDELIVERIES"]);
  const lease = opts.has("LEASE") ? Math.max(1, duration(opts.get("LEASE"), "LEASE")) : undefined;
  const maxDeliveries = opts.has("MAXDELIVERIES") ? integer(opts.get("MAXDELIVERIES"), "MAXDELIVERIES") : undefined;
  const message = c.ctx.bus.take(topic, { lease, maxDeliveries });
  if (message) {
    writeMessage(c.out, message, false);
    return;
  }
  if (!opts.has("WAIT")) {
    c.out.nullArray();
    return;
  }
  block(c, [topic], duration(opts.get("WAIT"), "WAIT"), { lease, maxDeliveries }, (m) => writeMessage(c.out, m, false), () => c.out.nullArray());
}

function pop(c: Connection, args: Uint8Array[]): void {
  arity(args, 2, 3);
  const topic = text(args[1]);
  if (args.length === 2) {
    const message = c.ctx.bus.take(topic);
    if (message) c.out.bulk(message.payload);
    else c.out.nullBulk();
    return;
  }
  const count = integer(args[2], "count");
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
function blockingPop(c: Connection, args: Uint8Array[]): void {
  arity(args, 3);
  const seconds = Number(text(args[args.length - 1]));
  if (!Number.isFinite(seconds) || seconds < 0) throw new BusError("BAD_REQUEST", "timeout is not a float or out of range");
  const topics = args.slice(1, -1).map(text);
  for (const topic of topics) {
    const message = c.ctx.bus.take(topic);
    if (message) {
      c.out.array(2).bulkString(topic).bulk(message.payload);
      return;
    }
  }
  block(c, topics, Math.round(seconds * 1000), {}, (m) => c.out.array(2).bulkString(m.topic).bulk(m.payload), () => c.out.nullArray());
}

/** Parks the connection until a message arrives on one of `topics` or `waitMs` passes (0: forever). */
function block(
  c: Connection,
  topics: string[],
  waitMs: number,
  take: { lease?: number; maxDeliveries?: number },
  reply: (m: Message) => void,
  timedOut: () => void,
): void {
  const consumer: Consumer = {
    credit: 1,
    lease: take.lease,
    maxDeliveries: take.maxDeliveries,
    deliver(message) {
      reply(message);
      // Safe inside the bus's dispatch: with its credit spent, unblock only removes this
      // consumer from the other topics' waiting lists.
      c.unblock();
      c.scheduleFlush();
    },
  };
  const timer =
    waitMs > 0
      ? setTimeout(() => {
          timedOut();
          c.unblock();
          c.scheduleFlush();
        }, waitMs)
      : undefined;
  c.blocked = { consumer, topics, timer };
  for (const topic of topics) {
    if (consumer.credit <= 0) break;
    c.ctx.bus.consume(topic, consumer);
  }
}

function llen(c: Connection, args: Uint8Array[]): void {
  arity(args, 2, 2);
  const topic = checkTopicName(text(args[1]));
  c.out.integer(c.ctx.bus.topic(topic)?.queue.length ?? 0);
}

// ---- leases ----

function ack(c: Connection, args: Uint8Array[]): void {
  arity(args, 3);
  const opts = options(args, 3, ["DELIVERY"]);
  const delivery = opts.has("DELIVERY") ? integer(opts.get("DELIVERY"), "DELIVERY") : undefined;
  c.ctx.bus.ack(text(args[1]), integer(args[2], "id"), delivery);
  c.out.ok();
}

function nack(c: Connection, args: Uint8Array[]): void {
  arity(args, 3);
  const opts = options(args, 3, ["DELAY", "DELIVERY"]);
  const delay = opts.has("DELAY") ? duration(opts.get("DELAY"), "DELAY") : 0;
  const delivery = opts.has("DELIVERY") ? integer(opts.get("DELIVERY"), "DELIVERY") : undefined;
  c.ctx.bus.nack(text(args[1]), integer(args[2], "id"), delay, delivery);
  c.out.ok();
}

/** ON topic [LEASE d] [PREFETCH n] [MAXDELIVERIES n]: a streaming consumer; messages come as pushes. */
function on(c: Connection, args: Uint8Array[]): void {
  arity(args, 2);
  const topic = text(args[1]);
  const opts = options(args, 2, ["LEASE", "PREFETCH", "MAXDELIVERIES"]);
  if (c.consumers.has(topic)) throw new BusError("BAD_REQUEST", `already consuming ${topic} on this connection`);
  const prefetch = opts.has("PREFETCH") ? integer(opts.get("PREFETCH"), "PREFETCH") : 1;
  if (prefetch < 1 || prefetch > 10000) throw new BusError("BAD_REQUEST", "PREFETCH must be from 1 to 10000");
  const lease = opts.has("LEASE") ? Math.max(1, duration(opts.get("LEASE"), "LEASE")) : c.ctx.config.leaseTime;
  const maxDeliveries = opts.has("MAXDELIVERIES") ? integer(opts.get("MAXDELIVERIES"), "MAXDELIVERIES") : undefined;
  const consumer: Consumer = {
    credit: prefetch,
    lease,
    maxDeliveries,
    streaming: true,
    deliver(message) {
      writeMessage(c.out, message, true);
      c.scheduleFlush();
    },
  };
  c.mode = "consuming";
  c.consumers.set(topic, consumer);
  c.out.ok(); // the reply goes out before the first push: written now, the pushes follow
  c.ctx.bus.consume(topic, consumer);
}

/** OFF topic: stop consuming; leases held are returned. */
function off(c: Connection, args: Uint8Array[]): void {
  arity(args, 2, 2);
  const topic = text(args[1]);
  const consumer = c.consumers.get(topic);
  if (consumer) {
    c.ctx.bus.cancel(topic, consumer);
    c.consumers.delete(topic);
  }
  if (c.consumers.size === 0 && c.mode === "consuming") c.mode = "normal";
  c.out.ok();
}

// ---- subscribing ----

/** SUB topic [SINCE id]: native frames; replies +OK, then pushes. */
function sub(c: Connection, args: Uint8Array[]): void {
  arity(args, 2);
  const topic = text(args[1]);
  const opts = options(args, 2, ["SINCE"]);
  const since = opts.has("SINCE") ? integer(opts.get("SINCE"), "SINCE") : undefined;
  if (c.subscriptions.has(topic)) throw new BusError("BAD_REQUEST", `already subscribed to ${topic}`);
  c.mode = "subscribed";
  c.out.ok();
  const unsubscribe = c.ctx.bus.subscribe(topic, { send: (m) => c.pushMessage(m, false) }, since);
  c.subscriptions.set(topic, unsubscribe);
}

function unsub(c: Connection, args: Uint8Array[]): void {
  arity(args, 2, 2);
  const topic = text(args[1]);
  c.subscriptions.get(topic)?.();
  c.subscriptions.delete(topic);
  if (c.subscriptions.size === 0 && c.mode === "subscribed") c.mode = "normal";
  c.out.ok();
}

function subscribe(c: Connection, args: Uint8Array[]): void {
  arity(args, 2);
  for (const raw of args.slice(1)) {
    const topic = text(raw);
    if (!c.subscriptions.has(topic)) {
      const unsubscribe = c.ctx.bus.subscribe(topic, { send: (m) => c.pushMessage(m, true) });
      c.subscriptions.set(topic, unsubscribe);
    }
    c.mode = "subscribed";
    c.out.push(3).bulkString("subscribe").bulkString(topic).integer(c.subscriptions.size);
  }
}

function unsubscribe(c: Connection, args: Uint8Array[]): void {
  const topics = args.length > 1 ? args.slice(1).map(text) : [...c.subscriptions.keys()];
  if (topics.length === 0) c.out.push(3).bulkString("unsubscribe").nullBulk().integer(0);
  for (const topic of topics) {
    c.subscriptions.get(topic)?.();
    c.subscriptions.delete(topic);
    c.out.push(3).bulkString("unsubscribe").bulkString(topic).integer(c.subscriptions.size);
  }
  if (c.subscriptions.size === 0) c.mode = "normal";
}

// ---- information ----

function stats(c: Connection, args: Uint8Array[]): void {
  arity(args, 1, 2);
  const bus = c.ctx.bus;
  if (args.length === 1) {
    const t = bus.totals;
    const fields: [string, number][] = [
      ["topics", bus.topicList().length],
      ["bytes", bus.bytes],
      ["messages_in", t.messagesIn],
      ["messages_out", t.messagesOut],
      ["acked", t.acked],
      ["redelivered", t.redelivered],
      ["dead_lettered", t.deadLettered],
      ["dropped", t.dropped],
      ["expired", t.expired],
      ["connections", c.ctx.stats.openConnections],
    ];
    c.out.map(fields.length);
    for (const [k, v] of fields) c.out.bulkString(k).integer(v);
    return;
  }
  const topic = bus.topic(text(args[1]));
  if (!topic) throw new BusError("NOT_FOUND", `no topic ${text(args[1]).slice(0, 128)}`);
  const k = topic.counters;
  const fields: [string, number][] = [
    ["depth", topic.queue.length],
    ["inflight", topic.leased.size],
    ["delayed", topic.delayed],
    ["bytes", topic.bytes],
    ["last_id", topic.lastId],
    ["subscribers", topic.subscribers.size],
    ["consumers", topic.streamingConsumers.size + topic.waiting.length],
    ["published", k.published],
    ["consumed", k.consumed],
    ["acked", k.acked],
    ["redelivered", k.redelivered],
    ["dropped", k.dropped],
    ["expired", k.expired],
    ["dead_lettered", k.deadLettered],
  ];
  c.out.map(fields.length);
  for (const [key, v] of fields) c.out.bulkString(key).integer(v);
}

function topics(c: Connection, args: Uint8Array[]): void {
  arity(args, 1, 1);
  const list = c.ctx.bus.topicList();
  c.out.array(list.length);
  for (const t of list) c.out.bulkString(t.name);
}

function purge(c: Connection, args: Uint8Array[]): void {
  arity(args, 2, 2);
  c.out.integer(c.ctx.bus.purge(text(args[1])));
}

// ---- connection ----

function ping(c: Connection, args: Uint8Array[]): void {
  arity(args, 1, 2);
  if (c.mode === "subscribed" && !c.out.resp3) {
    c.out.array(2).bulkString("pong").bulk(args[1] ?? new Uint8Array(0));
  } else if (args.length === 2) {
    c.out.bulk(args[1]!);
  } else {
    c.out.simple("PONG");
  }
}

function echo(c: Connection, args: Uint8Array[]): void {
  arity(args, 2, 2);
  c.out.bulk(args[1]!);
}

function quit(c: Connection): void {
  c.out.ok();
  c.quitting = true;
}

function auth(c: Connection, args: Uint8Array[]): void {
  arity(args, 2, 3);
  const token = args[args.length - 1]!;
  if (!c.ctx.auth.required) throw new BusError("BAD_REQUEST", "AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?");
  if (!c.ctx.auth.check(token)) {
    c.out.error("WRONGPASS invalid username-password pair or user is disabled.");
    return;
  }
  c.authenticated = true;
  c.out.ok();
}

/** HELLO [2|3] [AUTH user token] [SETNAME name]: switches protocol, answers server info. */
function hello(c: Connection, args: Uint8Array[]): void {
  let i = 1;
  let version = c.out.resp3 ? 3 : 2;
  if (args.length > 1 && /^\d+$/.test(text(args[1]))) {
    version = Number(text(args[1]));
    i = 2;
    if (version !== 2 && version !== 3) {
      c.out.error("NOPROTO unsupported protocol version");
      return;
    }
  }
  for (; i < args.length; i++) {
    const opt = text(args[i]).toUpperCase();
    if (opt === "AUTH" && i + 2 < args.length) {
      if (c.ctx.auth.required && !c.ctx.auth.check(args[i + 2]!)) {
        c.out.error("WRONGPASS invalid username-password pair or user is disabled.");
        return;
      }
      c.authenticated = true;
      i += 2;
    } else if (opt === "SETNAME" && i + 1 < args.length) {
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
function command(c: Connection, args: Uint8Array[]): void {
  const sub = text(args[1]).toUpperCase();
  if (sub === "COUNT") c.out.integer(Object.keys(COMMANDS).length);
  else if (sub === "DOCS" || sub === "" || sub === "INFO") c.out.array(0);
  else c.out.array(0);
}

function config(c: Connection, args: Uint8Array[]): void {
  arity(args, 2);
  const sub = text(args[1]).toUpperCase();
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
  for (const pattern of args.slice(2).map(text)) {
    for (const [k, v] of Object.entries(known)) if (matches(pattern, k)) pairs.push([k, v]);
  }
  c.out.map(pairs.length);
  for (const [k, v] of pairs) c.out.bulkString(k).bulkString(v);
}

function matches(pattern: string, name: string): boolean {
  const re = new RegExp("^" + pattern.replace(/[.+^${}()|[\]\\]/g, "\\$&").replace(/\*/g, ".*").replace(/\?/g, ".") + "$", "i");
  return re.test(name);
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
  STATS: stats,
  TOPICS: topics,
  PURGE: purge,
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
    for (const [t, k] of c.consumers) c.ctx.bus.cancel(t, k);
    c.consumers.clear();
    c.mode = "normal";
    c.out.resp3 = false;
    c.out.simple("RESET");
  },
};
