// The Redis compatibility commands: lists as topics (LPUSH, RPOP, BLPOP, LLEN, DEL), pub/sub
// (PUBLISH, SUBSCRIBE), and enough of the admin commands (CONFIG, COMMAND, INFO, CLIENT, SELECT,
// ECHO) that redis-cli, redis-benchmark and client libraries start without complaint.

import { BusError } from "../core/errors.ts";
import { globMatch } from "../core/glob.ts";
import { checkTopicName } from "../core/topic-name.ts";
import { checkWait } from "../core/durations.ts";
import type { RespCommand } from "../protocol/resp-parser.ts";

import type { Maybe } from "../core/engine.ts";
import type { Message } from "../core/message.ts";
import { VERSION, answer, block, number, publishAll } from "./command-helpers.ts";
import type { Connection } from "./tcp.ts";
import { subscribePushes } from "./tcp-fanout.ts";

export function push(c: Connection, cmd: RespCommand): void {
  const topic = cmd.text(1);
  const bus = c.ctx.bus;
  // The in-memory bus says the depth with the write: no second look-up of the topic.
  if (bus.pushBorrowed) {
    let depth = 0;
    for (let i = 2; i < cmd.count; i++) depth = bus.pushBorrowed(topic, cmd.bytesOf(i), cmd.owns(i), cmd.startOf(i), cmd.endOf(i));
    c.out.integer(depth);
    return;
  }
  const done = publishAll(c, topic, cmd, 2);
  const depth = done instanceof Promise ? done.then(() => bus.depth(topic)) : bus.depth(topic);
  if (depth instanceof Promise) c.later(depth, (n) => c.out.integer(n));
  else c.out.integer(depth);
}

export function pop(c: Connection, cmd: RespCommand): void {
  const topic = cmd.text(1);
  if (cmd.count === 2) {
    const bus = c.ctx.bus;
    // The in-memory bus writes the payload straight from its queue into the reply.
    if (bus.takeInto) {
      if (!bus.takeInto(topic, c.out)) c.out.nullBulk();
      return;
    }
    answer(c, bus.take(topic), (message) => {
      if (message) c.out.bulk(message.payload);
      else c.out.nullBulk();
    });
    return;
  }
  const count = number(cmd.text(2), "count");
  if (c.ctx.bus.remote) {
    const takes: Maybe<Message | undefined>[] = [];
    for (let i = 0; i < Math.min(count, 1000); i++) takes.push(c.ctx.bus.take(topic));
    answer(c, Promise.all(takes), (all) =>
      writePopped(
        c,
        all.filter((m) => m !== undefined),
      ),
    );
    return;
  }
  const taken = [];
  for (let i = 0; i < count; i++) {
    const message = c.ctx.bus.take(topic) as Message | undefined; // the in-memory bus: at once
    if (!message) break;
    taken.push(message);
  }
  writePopped(c, taken);
}

function writePopped(c: Connection, taken: Message[]): void {
  if (taken.length === 0) {
    c.out.nullArray();
    return;
  }
  c.out.array(taken.length);
  for (const m of taken) c.out.bulk(m.payload);
}

/** BLPOP key [key ...] timeout (seconds, 0 = forever): [key, payload] or null. */
export function blockingPop(c: Connection, cmd: RespCommand): void {
  const seconds = Number(cmd.text(cmd.count - 1));
  if (!Number.isFinite(seconds) || seconds < 0) throw new BusError("BAD_REQUEST", "timeout is not a float or out of range");
  // A tiny positive timeout is at least 1 ms: rounded to 0 it would mean forever.
  const waitMs = checkWait(seconds > 0 ? Math.max(1, Math.round(seconds * 1000)) : 0, "timeout");
  const topics: string[] = [];
  for (let i = 1; i < cmd.count - 1; i++) topics.push(cmd.text(i));
  // A remote engine's consumer tries a take on each topic as it registers.
  for (const topic of c.ctx.bus.remote ? [] : topics) {
    const message = c.ctx.bus.take(topic) as Message | undefined; // the in-memory bus: at once
    if (message) {
      c.out.array(2).bulkString(topic).bulk(message.payload);
      return;
    }
  }
  block(
    c,
    topics,
    waitMs,
    {},
    (m) => c.out.array(2).bulkString(m.topic).bulk(m.payload),
    () => c.out.nullArray(),
  );
}

export function llen(c: Connection, cmd: RespCommand): void {
  const topic = checkTopicName(cmd.text(1));
  answer(c, c.ctx.bus.depth(topic), (depth) => c.out.integer(depth));
}

export function publish(c: Connection, cmd: RespCommand): void {
  // The write answers with the subscribers it reaches: one topic lookup per PUBLISH.
  const reached = c.ctx.bus.publishReaching(cmd.text(1), cmd.bytesOf(2), cmd.owns(2), cmd.startOf(2), cmd.endOf(2));
  if (reached instanceof Promise) c.later(reached, (count) => c.out.integer(count));
  else c.out.integer(reached);
}

export function subscribe(c: Connection, cmd: RespCommand): void {
  for (let i = 1; i < cmd.count; i++) {
    const topic = cmd.text(i);
    if (!c.subscriptions.has(topic)) {
      const unsubscribe = subscribePushes(c, topic, true);
      c.subscriptions.set(topic, unsubscribe);
    }
    c.mode = "subscribed";
    c.out.push(3).bulkString("subscribe").bulkString(topic).integer(c.subscriptions.size);
  }
}

export function unsubscribe(c: Connection, cmd: RespCommand): void {
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

/** DEL topic [topic ...] (Redis): deletes the topics; replies how many existed. None is deleted while one is in use. */
export function del(c: Connection, cmd: RespCommand): void {
  const names: string[] = [];
  for (let i = 1; i < cmd.count; i++) names.push(cmd.text(i));
  answer(c, c.ctx.bus.deleteTopics(names), (deleted) => c.out.integer(deleted));
}

export function echo(c: Connection, cmd: RespCommand): void {
  c.out.bulk(cmd.view(1));
}

/** Enough of Redis's admin commands that redis-cli and redis-benchmark start without complaint. */
export function command(c: Connection, cmd: RespCommand, commandCount: number): void {
  if (cmd.text(1).toUpperCase() === "COUNT") c.out.integer(commandCount);
  else c.out.array(0); // DOCS, INFO, the list: none described
}

export function config(c: Connection, cmd: RespCommand): void {
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

export function info(c: Connection): void {
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

export function ok(c: Connection): void {
  c.out.ok();
}
