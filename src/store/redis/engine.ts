// The Redis engine: the bus's state lives in Redis (standalone or Cluster) and this node is one of
// many stateless doors to it. Each operation is one Lua script (scripts.ts); fan-out and wake-ups
// come over Redis pub/sub; consumers and subscribers connected here wait here (local.ts).

import type { BusTotals } from "../../core/bus-state.ts";
import { checkDelay, checkLease } from "../../core/durations.ts";
import type { BackendHealth, Engine, TakeOptions, TopicView } from "../../core/engine.ts";
import { BusError } from "../../core/errors.ts";
import type { BusLimits } from "../../core/limits.ts";
import type { Message, Origin } from "../../core/message.ts";
import type { Consumer, Subscriber, TopicCounters } from "../../core/topic.ts";
import { DEAD_SUFFIX, checkTopicName } from "../../core/topic-name.ts";
import { logFor } from "../../log.ts";
import { checkPeekCount } from "../../core/bus.ts";
import { type RedisClient, type RedisTarget, createClient, redisError } from "./connect.ts";
import { LocalTopic, type OwnedLease, type SubscriberEntry } from "./local.ts";

const redisLog = logFor("redis");

/** Takes one node keeps in flight per topic (pipelined on its connection). */
const MAX_IN_FLIGHT = 32;
const SWEEP_EVERY_MS = 250;
const STATS_EVERY_MS = 1000;
/** The safety net under notifications: waiting consumers try again this often. */
const POLL_EVERY_MS = 1000;
/** A since-replay waits this long for its marker before it goes on without it. */
const MARK_TIMEOUT_MS = 5000;

type Reply = Buffer | number | null | Reply[];

export class RedisEngine implements Engine {
  readonly remote = true;
  totals: BusTotals = { messagesIn: 0, messagesOut: 0, dropped: 0, expired: 0, redelivered: 0, deadLettered: 0, acked: 0 };
  bytes = 0;
  private up = false;
  private readonly local = new Map<string, LocalTopic>();
  private readonly owned = new Map<string, OwnedLease>();
  private readonly registered = new Set<string>();
  private readonly timed = new Set<string>();
  private timedList: string[] = [];
  private readonly marks = new Map<string, () => void>();
  private markCount = 0;
  private readonly nodeId = Math.random().toString(36).slice(2, 10);
  private snapshot = new Map<string, TopicView>();
  private readonly keyCache = new Map<string, string[]>();
  private readonly channelPrefix: string;
  private lastSweep = 0;
  private lastStats = 0;
  private lastPoll = 0;
  private sweeping = false;
  private reading = false;
  private closed = false;

  private constructor(
    readonly limits: BusLimits,
    private readonly prefix: string,
    private readonly client: RedisClient,
    private readonly subscriber: RedisClient,
    readonly shown: string,
  ) {
    this.channelPrefix = `${prefix}ch:`;
  }

  /** Connects (failing at once when Redis cannot be reached), subscribes, and is ready to serve. */
  static async open(target: RedisTarget, prefix: string, limits: BusLimits): Promise<RedisEngine> {
    const client = createClient(target, false);
    const subscriber = createClient(target, true);
    const engine = new RedisEngine(limits, prefix, client, subscriber, target.shown);
    try {
      await Promise.all([client.connect(), subscriber.connect()]);
      await subscriber.psubscribe(`${engine.channelPrefix}*`);
    } catch (error) {
      client.disconnect();
      subscriber.disconnect();
      throw new BusError("UNAVAILABLE", `cannot reach redis at ${target.shown}: ${redisError(error).message}`);
    }
    engine.watch();
    await engine.refresh().catch(() => {});
    return engine;
  }

  private watch(): void {
    this.up = true;
    this.client.on("ready", () => {
      if (this.up) return;
      this.up = true;
      redisLog.info(`redis at ${this.shown} is back: serving again`);
      for (const topic of this.local.values()) this.dispatch(topic, true);
    });
    const down = (why: string) => {
      if (!this.up || this.closed) return;
      this.up = false;
      redisLog.error(`redis at ${this.shown} is unreachable (${why}): writes and takes fail with UNAVAILABLE until it is back`);
    };
    this.client.on("close", () => down("connection closed"));
    this.client.on("end", () => down("connection ended"));
    this.client.on("error", (error: Error) => redisLog.debug(`redis: ${error.message}`));
    this.subscriber.on("error", (error: Error) => redisLog.debug(`redis subscriber: ${error.message}`));
    this.subscriber.on("pmessageBuffer", (_pattern: Buffer, channel: Buffer, message: Buffer) => this.notified(channel, message));
  }

  health(): BackendHealth {
    return { name: "redis", up: this.up };
  }

  // ---- keys ----

  /** The topic's seven keys, all in the hash slot of its base name (`{jobs}` for jobs and jobs.dead). */
  private keys(topic: string): string[] {
    let keys = this.keyCache.get(topic);
    if (!keys) {
      const base = topic.endsWith(DEAD_SUFFIX) ? topic.slice(0, -DEAD_SUFFIX.length) : topic;
      const start = `${this.prefix}{${base}}${topic}:`;
      keys = ["m", "b", "h", "r", "l", "x", "d"].map((k) => start + k);
      if (this.keyCache.size > 10000) this.keyCache.clear();
      this.keyCache.set(topic, keys);
    }
    return keys;
  }

  private channel(topic: string): string {
    return this.channelPrefix + topic;
  }

  /** What a return to the queue needs: the dead-letter topic's keys and limits (NACK, SWEEP). */
  private returnArgs(topic: string): (string | number)[] {
    const isDead = topic.endsWith(DEAD_SUFFIX);
    const dead = isDead ? topic : topic + DEAD_SUFFIX;
    return [
      ...this.keys(topic),
      ...this.keys(dead),
      topic,
      this.channel(topic),
      this.channel(dead),
      this.limits.maxQueue,
      this.limits.maxQueueBytes,
      isDead ? "1" : "0",
    ];
  }

  /** Lists the topic in the registry (once per node): /_/topics on every node sees it. */
  private register(topic: string): void {
    if (this.registered.has(topic)) return;
    this.registered.add(topic);
    this.client.sadd(`${this.prefix}topics`, topic).catch(() => this.registered.delete(topic));
  }

  /** Lists the topic among those with leases or delayed nacks: every node's sweeper looks at it. */
  private markTimed(topic: string): void {
    if (this.timed.has(topic)) return;
    this.timed.add(topic);
    this.timedList.push(topic);
    this.client.sadd(`${this.prefix}timed`, topic).catch(() => this.timed.delete(topic));
  }

  // ---- writing ----

  publish(topic: string, payload: Uint8Array): Promise<Message> {
    if (payload.length > this.limits.maxMessageSize) {
      throw new BusError("TOO_LARGE", `message of ${payload.length} bytes is larger than the limit of ${this.limits.maxMessageSize} bytes`);
    }
    checkTopicName(topic);
    const policy = topic.endsWith(DEAD_SUFFIX) ? "drop-oldest" : this.limits.overflow;
    const bytes = Buffer.from(payload.buffer, payload.byteOffset, payload.length);
    return this.client.msgbusPublish(...this.keys(topic), bytes, this.limits.maxQueue, this.limits.maxQueueBytes, policy, this.channel(topic)).then(
      (reply) => {
        this.register(topic);
        const [id, created] = reply as [number, number];
        return { id, topic, created, payload, deliveries: 0, origin: undefined };
      },
      (error: unknown) => {
        throw redisError(error);
      },
    );
  }

  subscriberCount(topic: string): number {
    return this.local.get(topic)?.subscriberCount ?? 0;
  }

  /** The payload may be a range of a socket's read buffer: Redis gets a copy, taken now. */
  publishBorrowed(topic: string, bytes: Uint8Array, owned = false, start = 0, end = bytes.length): Promise<number> {
    const payload = bytes.subarray(start, end);
    // A copy, not slice(): on a Buffer (socket data) that is a view of the whole read.
    return this.publish(topic, owned ? payload : new Uint8Array(payload)).then((message) => message.id);
  }

  /** PUBLISH: the subscribers of this server the write reaches, counted as it is sent, once Redis has it. */
  publishReaching(topic: string, bytes: Uint8Array, owned = false, start = 0, end = bytes.length): Promise<number> {
    const reached = this.subscriberCount(topic);
    return this.publishBorrowed(topic, bytes, owned, start, end).then(() => reached);
  }

  depth(topic: string): Promise<number> {
    checkTopicName(topic);
    return this.client.llen(this.keys(topic)[3]!).catch((error: unknown) => {
      throw redisError(error);
    });
  }

  /** Up to `count` queued messages with an id over `since`, oldest first; nothing is taken. */
  peek(topic: string, count: number, since = 0): Promise<Message[]> {
    checkTopicName(topic);
    checkPeekCount(count);
    return this.client.msgbusPeekBuffer(...this.keys(topic), since, count).then(
      (reply) => parseReplay(topic, reply as Reply[]).sort((a, b) => a.id - b.id),
      (error: unknown) => {
        throw redisError(error);
      },
    );
  }

  // ---- taking ----

  take(topic: string, options: TakeOptions = {}): Promise<Message | undefined> {
    if (options.lease !== undefined) checkLease(options.lease);
    checkTopicName(topic);
    const lease = options.lease !== undefined ? Math.max(1, options.lease) : 0;
    const maxDeliveries = options.maxDeliveries ?? this.limits.maxDeliveries;
    return this.client.msgbusTakeBuffer(...this.keys(topic), lease, maxDeliveries, this.limits.maxAge, topic).then(
      (reply) => {
        if (reply === null) return undefined;
        if (lease > 0) this.markTimed(topic);
        const [id, created, deliveries, payload, origin] = reply as Reply[];
        return {
          id: num(id),
          topic,
          created: num(created),
          payload: new Uint8Array(payload as Buffer),
          deliveries: num(deliveries),
          origin: parseOrigin(origin as Buffer),
        };
      },
      (error: unknown) => {
        throw redisError(error);
      },
    );
  }

  consume(topic: string, consumer: Consumer): void {
    checkTopicName(topic);
    if (consumer.lease !== undefined) checkLease(consumer.lease);
    this.join(topic, consumer);
  }

  consumeAny(topics: string[], consumer: Consumer): void {
    for (const name of topics) checkTopicName(name);
    if (consumer.lease !== undefined) checkLease(consumer.lease);
    for (const name of topics) this.join(name, consumer);
  }

  private join(topic: string, consumer: Consumer): void {
    const t = this.topicHere(topic);
    t.consumers.add(consumer);
    if (consumer.streaming) t.streaming.add(consumer);
    t.enqueue(consumer);
    queueMicrotask(() => this.dispatch(t, true));
  }

  cancel(topic: string, consumer: Consumer): void {
    this.stopConsuming(topic, consumer);
    // A streaming consumer's leases go back (its connection closed): in id order, at the head.
    const mine = [...this.owned.values()].filter((o) => o.consumer === consumer && o.topic === topic).sort((a, b) => b.id - a.id);
    for (const lease of mine) {
      this.owned.delete(ownedKey(topic, lease.id));
      this.client.msgbusNack(...this.returnArgs(topic), lease.id, lease.delivery, 0).catch((error: unknown) => {
        redisLog.warn(`could not return message ${lease.id} of ${topic} (it returns when its lease expires): ${redisError(error).message}`);
      });
    }
  }

  stopConsuming(topic: string, consumer: Consumer): void {
    const t = this.local.get(topic);
    if (!t) return;
    t.remove(consumer);
    this.settle(t);
  }

  /** Sends takes for the consumers in line, while the topic may hold something. */
  private dispatch(t: LocalTopic, force = false): void {
    if (force) t.emptyGeneration = -1;
    while (t.waiting.length > 0 && t.inFlight < MAX_IN_FLIGHT && t.generation !== t.emptyGeneration && this.up) {
      const consumer = t.waiting.shift()!;
      if (!t.consumers.has(consumer) || consumer.credit <= 0) continue;
      consumer.credit--;
      t.enqueue(consumer);
      t.inFlight++;
      const generation = t.generation;
      this.take(t.name, { lease: consumer.lease, maxDeliveries: consumer.maxDeliveries }).then(
        (message) => this.taken(t, consumer, generation, message),
        (error: unknown) => {
          redisLog.debug(`take for a waiting consumer failed: ${redisError(error).message}`);
          this.taken(t, consumer, t.generation, undefined);
        },
      );
    }
  }

  private taken(t: LocalTopic, consumer: Consumer, generation: number, message: Message | undefined): void {
    t.inFlight--;
    if (!message) {
      consumer.credit++;
      t.enqueue(consumer, true);
      if (t.generation === generation) t.emptyGeneration = generation;
      // A consumer waiting on several topics (BLPOP a b) may have been skipped there meanwhile.
      for (const other of this.local.values()) {
        if (other === t || !other.consumers.has(consumer)) continue;
        other.enqueue(consumer);
        this.dispatch(other);
      }
      this.dispatch(t);
      this.settle(t);
      return;
    }
    if (!t.consumers.has(consumer)) {
      // It left while the take ran (a timed-out BLPOP, a closed connection): the message goes back.
      this.untake(message, consumer.lease !== undefined);
      this.settle(t);
      return;
    }
    if (consumer.lease !== undefined && consumer.streaming) {
      this.owned.set(ownedKey(t.name, message.id), {
        topic: t.name,
        id: message.id,
        delivery: message.deliveries,
        consumer,
        expires: Date.now() + consumer.lease,
      });
    }
    consumer.deliver(message);
    this.dispatch(t);
  }

  private untake(message: Message, leased: boolean): void {
    const head = `${message.created} ${message.deliveries - 1}${message.origin ? ` ${message.origin.topic} ${message.origin.id} ${message.origin.deliveries}` : ""}`;
    const payload = Buffer.from(message.payload.buffer, message.payload.byteOffset, message.payload.length);
    this.client
      .msgbusUntake(...this.keys(message.topic), message.id, leased ? "1" : "0", head, payload, this.channel(message.topic))
      .catch((error: unknown) => {
        redisLog.error(`message ${message.id} of ${message.topic} was taken for a consumer that left and could not be put back: ${redisError(error).message}`);
      });
  }

  // ---- leases ----

  ack(topic: string, id: number, delivery?: number): Promise<void> {
    checkTopicName(topic);
    return this.client.msgbusAck(...this.keys(topic), id, delivery ?? "", topic).then(
      () => this.leaseEnded(topic, id),
      (error: unknown) => {
        throw redisError(error);
      },
    );
  }

  nack(topic: string, id: number, delay = 0, delivery?: number): Promise<void> {
    checkDelay(delay);
    checkTopicName(topic);
    return this.client.msgbusNack(...this.returnArgs(topic), id, delivery ?? "", delay).then(
      (outcome) => {
        if (String(outcome) === "dead") this.register(topic + DEAD_SUFFIX);
        if (String(outcome) === "delayed") this.markTimed(topic);
        this.leaseEnded(topic, id);
      },
      (error: unknown) => {
        throw redisError(error);
      },
    );
  }

  touch(topic: string, id: number, leaseMs?: number, delivery?: number): Promise<number> {
    if (leaseMs !== undefined) checkLease(leaseMs);
    checkTopicName(topic);
    return this.client.msgbusTouch(...this.keys(topic), id, delivery ?? "", leaseMs ?? "", topic).then(
      (expires) => {
        const owned = this.owned.get(ownedKey(topic, id));
        if (owned) owned.expires = Date.now() + Math.max(0, Number(expires) - Date.now());
        return Number(expires);
      },
      (error: unknown) => {
        throw redisError(error);
      },
    );
  }

  /** A lease ended through this node: its streaming consumer may take one more. */
  private leaseEnded(topic: string, id: number): void {
    const owned = this.owned.get(ownedKey(topic, id));
    if (!owned) return;
    this.owned.delete(ownedKey(topic, id));
    const t = this.local.get(topic);
    if (!t?.consumers.has(owned.consumer)) return;
    owned.consumer.credit++;
    t.enqueue(owned.consumer);
    this.dispatch(t, true);
  }

  // ---- subscribing ----

  /**
   * Live messages come over the node's one pattern subscription, so a subscriber is live at once.
   * With `since`, live messages wait while the queued ones are read; the read ends with a marker
   * on the topic's channel, and once both are here the two are merged in id order, without a
   * duplicate, and the subscriber goes live.
   */
  subscribe(topic: string, subscriber: Subscriber, since?: number): () => void {
    checkTopicName(topic);
    const t = this.topicHere(topic);
    const entry: SubscriberEntry = { subscriber, buffer: since !== undefined ? [] : undefined };
    t.subscribers.add(entry);
    if (since !== undefined) this.replay(t, entry, since);
    return () => {
      t.subscribers.delete(entry);
      this.settle(t);
    };
  }

  private replay(t: LocalTopic, entry: SubscriberEntry, since: number): void {
    const mark = `S ${this.nodeId}:${++this.markCount}`;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const marked = new Promise<void>((resolve) => {
      this.marks.set(mark, resolve);
      timer = setTimeout(resolve, MARK_TIMEOUT_MS);
    });
    const read = this.client.msgbusReplayBuffer(...this.keys(t.name), since, this.channel(t.name), mark).then(
      (reply) => parseReplay(t.name, reply as Reply[]),
      (error: unknown) => {
        redisLog.warn(`replay of ${t.name} since ${since} failed, going on live: ${redisError(error).message}`);
        return [] as Message[];
      },
    );
    Promise.all([read, marked]).then(([queued]) => {
      clearTimeout(timer);
      this.marks.delete(mark);
      const seen = new Set<number>();
      const all = [...queued, ...(entry.buffer ?? [])].filter((m) => !seen.has(m.id) && seen.add(m.id)).sort((a, b) => a.id - b.id);
      entry.buffer = undefined;
      if (!t.subscribers.has(entry)) return;
      for (const message of all) entry.subscriber.send(message);
    });
  }

  /** A notification on a topic's channel: a message (fan-out, wake-up), "R" (one back in the queue), or a replay's marker. */
  private notified(channel: Buffer, body: Buffer): void {
    const topic = channel.toString("latin1", this.channelPrefix.length);
    const t = this.local.get(topic);
    if (!t) return;
    t.generation++;
    const kind = body[0];
    if (kind === 0x53 /* S */) {
      this.marks.get(body.toString("latin1"))?.();
      return;
    }
    if (kind !== 0x52 /* R */ && t.subscribers.size > 0) {
      const message = parseNotice(topic, body);
      for (const entry of t.subscribers) {
        if (entry.buffer) entry.buffer.push(message);
        else entry.subscriber.send(message);
      }
    }
    if (t.waiting.length > 0) this.dispatch(t);
  }

  // ---- administration ----

  purge(topic: string): Promise<number> {
    checkTopicName(topic);
    return this.client.msgbusPurge(...this.keys(topic)).then(Number, (error: unknown) => {
      throw redisError(error);
    });
  }

  deleteTopic(topic: string): Promise<number | undefined> {
    checkTopicName(topic);
    const here = this.local.get(topic);
    if (here && (here.subscribers.size > 0 || here.consumers.size > 0)) {
      throw new BusError("BAD_REQUEST", `topic ${topic} is in use (subscribers or consumers on this server): not deleted`);
    }
    return this.client.msgbusDelete(...this.keys(topic)).then(
      (held) => {
        if (Number(held) < 0) return undefined;
        this.registered.delete(topic);
        this.snapshot.delete(topic);
        this.client.srem(`${this.prefix}topics`, topic).catch(() => {});
        return Number(held);
      },
      (error: unknown) => {
        throw redisError(error);
      },
    );
  }

  async deleteTopics(topics: string[]): Promise<number> {
    for (const topic of topics) checkTopicName(topic);
    let deleted = 0;
    for (const topic of topics) if ((await this.deleteTopic(topic)) !== undefined) deleted++;
    return deleted;
  }

  /** As of the last refresh (at most a second old): counters live in Redis, read for every node. */
  topic(name: string): TopicView | undefined {
    return this.snapshot.get(name);
  }

  topicList(): TopicView[] {
    return [...this.snapshot.values()];
  }

  flush(): null {
    return null;
  }

  // ---- time ----

  /** Sweeps due leases and delayed nacks, refreshes the counters, and polls for waiting consumers. */
  tick(now = Date.now()): void {
    if (this.closed || !this.up) return;
    if (now - this.lastSweep >= SWEEP_EVERY_MS && !this.sweeping) {
      this.lastSweep = now;
      this.sweeping = true;
      this.sweep().finally(() => (this.sweeping = false));
    }
    if (now - this.lastStats >= STATS_EVERY_MS && !this.reading) {
      this.lastStats = now;
      this.reading = true;
      this.refresh()
        .catch(() => {})
        .finally(() => (this.reading = false));
    }
    if (now - this.lastPoll >= POLL_EVERY_MS) {
      this.lastPoll = now;
      for (const t of this.local.values()) if (t.waiting.length > 0) this.dispatch(t, true);
      // A lease of a streaming consumer that expired in Redis (nobody acked it): its credit comes back.
      for (const [key, owned] of this.owned) {
        if (owned.expires + 1000 > now) continue;
        this.owned.delete(key);
        const t = this.local.get(owned.topic);
        if (t?.consumers.has(owned.consumer)) {
          owned.consumer.credit++;
          t.enqueue(owned.consumer);
          this.dispatch(t, true);
        }
      }
    }
  }

  /** Returns due leases and delayed nacks of every topic that has them; any node may do it. */
  private async sweep(): Promise<void> {
    if (this.timedList.length === 0 || this.lastStats === 0) {
      const members = await this.client.smembers(`${this.prefix}timed`).catch(() => [] as string[]);
      for (const topic of members) if (!this.timed.has(topic)) this.timed.add(topic);
      this.timedList = [...this.timed];
    }
    await Promise.all(
      this.timedList.map((topic) =>
        this.client.msgbusSweep(...this.returnArgs(topic)).then(
          (reply) => {
            const [, , dead] = reply as number[];
            if (dead! > 0) this.register(topic + DEAD_SUFFIX);
          },
          (error: unknown) => redisLog.debug(`sweep of ${topic}: ${redisError(error).message}`),
        ),
      ),
    );
  }

  /** Reads every topic's counters (the registry and one STATS script per topic). */
  private async refresh(): Promise<void> {
    const [names, timed] = await Promise.all([this.client.smembers(`${this.prefix}topics`), this.client.smembers(`${this.prefix}timed`)]);
    for (const topic of timed) this.timed.add(topic);
    this.timedList = [...this.timed];
    const views = await Promise.all(names.map((name) => this.client.msgbusStats(...this.keys(name)).then((reply) => this.view(name, reply as Reply[]))));
    const next = new Map<string, TopicView>();
    const totals: BusTotals = { messagesIn: 0, messagesOut: 0, dropped: 0, expired: 0, redelivered: 0, deadLettered: 0, acked: 0 };
    let bytes = 0;
    for (const view of views.sort((a, b) => (a.name < b.name ? -1 : 1))) {
      next.set(view.name, view);
      const c = view.counters;
      totals.messagesIn += c.published;
      totals.messagesOut += c.consumed;
      totals.dropped += c.dropped;
      totals.expired += c.expired;
      totals.redelivered += c.redelivered;
      totals.deadLettered += c.deadLettered;
      totals.acked += c.acked;
      bytes += view.bytes;
    }
    this.snapshot = next;
    this.totals = totals;
    this.bytes = bytes;
  }

  private view(name: string, reply: Reply[]): TopicView {
    const [flat, ready, leased, delayed] = reply as [Buffer[] | string[], number, number, number];
    const meta = new Map<string, number>();
    for (let i = 0; i + 1 < flat.length; i += 2) meta.set(String(flat[i]), Number(String(flat[i + 1])));
    const field = (key: string) => meta.get(key) ?? 0;
    const counters: TopicCounters = {
      published: field("published"),
      consumed: field("consumed"),
      acked: field("acked"),
      redelivered: field("redelivered"),
      dropped: field("dropped"),
      expired: field("expired"),
      deadLettered: field("dead_lettered"),
      bytesIn: field("bytes_in"),
    };
    const before = this.snapshot.get(name);
    const seconds = STATS_EVERY_MS / 1000;
    const here = this.local.get(name);
    return {
      name,
      queue: { length: ready },
      leased: { size: leased },
      delayed,
      bytes: field("bytes"),
      lastId: field("last"),
      subscriberCount: here?.subscriberCount ?? 0,
      consumerCount: here?.consumers.size ?? 0,
      rateIn: before ? Math.max(0, counters.published - before.counters.published) / seconds : 0,
      rateOut: before ? Math.max(0, counters.consumed - before.counters.consumed) / seconds : 0,
      counters,
    };
  }

  private topicHere(topic: string): LocalTopic {
    let t = this.local.get(topic);
    if (!t) {
      t = new LocalTopic(topic);
      this.local.set(topic, t);
    }
    return t;
  }

  private settle(t: LocalTopic): void {
    if (t.idle && this.local.get(t.name) === t) this.local.delete(t.name);
  }

  async close(): Promise<void> {
    this.closed = true;
    await Promise.allSettled([this.client.quit(), this.subscriber.quit()]);
  }
}

function ownedKey(topic: string, id: number): string {
  return `${topic}\u0000${id}`;
}

function num(value: Reply): number {
  return typeof value === "number" ? value : Number((value as Buffer).toString("latin1"));
}

/** "origin-topic origin-id origin-deliveries" of a dead letter, "" for any other message. */
function parseOrigin(rest: Buffer | string | undefined): Origin | undefined {
  const text = rest ? rest.toString() : "";
  if (text === "") return undefined;
  const [topic, id, deliveries] = text.split(" ");
  return { topic: topic!, id: Number(id), deliveries: Number(deliveries) };
}

/** A message notification: "id created deliveries[ origin]\n" and the payload. */
function parseNotice(topic: string, body: Buffer): Message {
  const end = body.indexOf(0x0a);
  const [id, created, deliveries, ...origin] = body.toString("latin1", 0, end).split(" ");
  return {
    id: Number(id),
    topic,
    created: Number(created),
    payload: new Uint8Array(body.subarray(end + 1)),
    deliveries: Number(deliveries),
    origin: parseOrigin(origin.join(" ")),
  };
}

function parseReplay(topic: string, reply: Reply[]): Message[] {
  const messages: Message[] = [];
  for (let i = 1; i + 4 < reply.length; i += 5) {
    messages.push({
      id: num(reply[i]!),
      topic,
      created: num(reply[i + 1]!),
      deliveries: num(reply[i + 2]!),
      payload: new Uint8Array(reply[i + 3] as Buffer),
      origin: parseOrigin(reply[i + 4] as Buffer),
    });
  }
  return messages;
}
