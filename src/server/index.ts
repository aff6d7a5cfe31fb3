// Starts and stops a msgbus server: the store, the bus, the listeners, the clock, and a
// graceful shutdown that finishes in-flight replies and flushes the store.

import { Bus, type DropReason } from "../core/bus.ts";
import { busLimits, type Config, durationText, sizeText } from "../config.ts";
import { BusError } from "../core/errors.ts";
import { logFor } from "../log.ts";
import { MemoryStore, type Store } from "../core/store.ts";
import type { Engine } from "../core/engine.ts";
import { Auth } from "./auth.ts";
import { type ServerContext, ServerStats } from "./context.ts";
import { startHttp } from "./http.ts";
import { startIdleGc } from "./idle-gc.ts";
import { ReadClock } from "./read-clock.ts";
import { startTcp } from "./tcp.ts";

const serverLog = logFor("server");

export interface RunningServer {
  ctx: ServerContext;
  tcpPort: number;
  httpPort: number;
  /** Stops accepting, finishes replies, flushes the store. */
  stop(): Promise<void>;
}

/**
 * Opens the store for `config`: sqlite in `config.data`, else memory. The sqlite store (and
 * bun:sqlite with it) loads only with --data, and the Redis engine (ioredis) only with --redis:
 * a server in memory mode neither loads nor keeps their code (docs/BENCHMARKS.md, idle RSS).
 */
async function openStore(config: Config): Promise<Store> {
  if (!config.data) return new MemoryStore();
  const { openSqliteStore } = await import("../store/sqlite.ts");
  const storeLog = logFor("store");
  return openSqliteStore(config.data, { fsync: config.fsync, onError: (e) => storeLog.error(e.message), onNotice: (m) => storeLog.info(m) });
}

export async function startServer(config: Config): Promise<RunningServer> {
  // A bad --acl file ends the start (exit 2, the line named) before the data directory is touched.
  const auth = await Auth.open({ token: config.token, aclFile: config.acl });
  const store = await openStore(config);
  const drops = new DropLog();
  const readClock = new ReadClock();
  const started = performance.now();
  let bus: Engine;
  /** With --redis, where the bus lives (the log line shows it, password hidden). */
  let redisShown: string | undefined;
  try {
    // --redis: the bus lives in Redis, shared with every server given the same URL and prefix.
    if (config.redis) {
      const [{ parseRedisUrl }, { RedisEngine }] = await Promise.all([import("../store/redis/connect.ts"), import("../store/redis/engine.ts")]);
      const redis = await RedisEngine.open(
        parseRedisUrl(config.redis, config.redisPassword),
        config.redisPrefix,
        newBus(config, store, drops, readClock).limits,
      );
      redisShown = redis.shown;
      bus = redis;
    } else {
      bus = newBus(config, store, drops, readClock);
    }
  } catch (error) {
    store.close(); // release the data directory's lock before exiting
    throw error;
  }
  if (config.data) {
    const queued = bus.topicList().reduce((n, t) => n + t.queue.length, 0);
    serverLog.info(
      `recovered ${queued} queued message${queued === 1 ? "" : "s"} in ${bus.topicList().length} topics from ${config.data} in ${Math.round(performance.now() - started)} ms`,
    );
  }
  const ctx: ServerContext = {
    bus,
    config,
    auth,
    stats: new ServerStats(),
    clock: readClock,
    stopping: false,
  };
  const tcp = listening(`${config.host}:${config.port}`, () => startTcp(ctx));
  const http: HttpListener | undefined = config.httpPort !== 0 ? listening(`${config.host}:${config.httpPort}`, () => startHttp(ctx)) : undefined;
  const clock = setInterval(() => bus.tick(), 100);
  const idleGc = startIdleGc(bus);
  const scheme = config.tlsCert ? "tls" : "tcp";
  serverLog.info(
    `listening on ${scheme}://${config.host}:${tcp.port} (RESP)` +
      (http ? `, ${config.tlsCert ? "https" : "http"}://${config.host}:${http.port} (HTTP, SSE, WebSocket)` : ""),
  );
  serverLog.info(
    redisShown !== undefined
      ? `shared: the bus lives in redis at ${redisShown} (prefix ${config.redisPrefix}); what survives is what Redis keeps (appendonly, replicas)`
      : config.data
        ? `durable: ${config.data} (fsync ${config.fsync})`
        : "in memory: nothing survives a restart (use --data DIR)",
  );
  serverLog.info(configSummary(config, auth));
  if (!auth.required && !isLoopback(config.host)) {
    serverLog.warn(
      `listening on ${config.host}, reachable from other machines, with neither --token nor --acl: anyone who can reach it may read, take, purge and delete every topic`,
    );
  }
  auth.watch();
  const reload = () => auth.reload("SIGHUP");
  process.on("SIGHUP", reload);

  let stopped: Promise<void> | undefined;
  return {
    ctx,
    tcpPort: tcp.port,
    httpPort: http?.port ?? 0,
    stop() {
      stopped ??= (async () => {
        ctx.stopping = true;
        process.off("SIGHUP", reload);
        auth.stop();
        tcp.stop(false);
        await http?.stop();
        clearInterval(clock);
        idleGc.stop();
        await bus.flush();
        drops.flush();
        store.close();
        await bus.close?.();
        tcp.stop(true);
      })();
      return stopped;
    },
  };
}

/** One line an operator can check a deployment by: limits, data, auth mode and TLS. */
function configSummary(config: Config, auth: Auth): string {
  const limits = [
    `max-message-size ${sizeText(config.maxMessageSize)}`,
    `max-queue ${config.maxQueue}`,
    `max-queue-bytes ${sizeText(config.maxQueueBytes)}`,
    `max-memory ${sizeText(config.maxMemory)}`,
    `overflow ${config.overflow}`,
    `max-age ${durationText(config.maxAge)}`,
    `max-topics ${config.maxTopics}`,
    `send-buffer ${sizeText(config.sendBuffer)}`,
    `max-connections ${config.maxConnections}`,
  ].join(", ");
  const tls = config.tlsCert ? `on (${config.tlsCert})` : "off";
  return `configuration: limits ${limits}; data ${config.data ?? "none (memory)"}; auth ${auth.describe()}; tls ${tls}`;
}

/** 127.0.0.0/8, ::1 and localhost: only this machine can connect. */
export function isLoopback(host: string): boolean {
  return host === "localhost" || host === "::1" || host === "[::1]" || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host);
}

/** Runs a listener's start, turning "address in use" and the like into one clear line. */
export function listening<T>(address: string, start: () => T): T {
  try {
    return start();
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    throw new BusError("UNAVAILABLE", `cannot listen on ${address}: ${reason}`);
  }
}

function newBus(config: Config, store: Store, drops: DropLog, clock: ReadClock): Bus {
  return new Bus({
    store,
    now: clock.now,
    limits: busLimits(config),
    events: { dropped: (topic, reason, count) => drops.add(topic, reason, count) },
  });
}

interface HttpListener {
  port: number;
  stop(): Promise<void>;
}

/** Drops are never silent, but a topic dropping thousands a second must not flood the log. */
class DropLog {
  private pending = new Map<string, number>();
  private timer: ReturnType<typeof setTimeout> | undefined;

  /**
   * The last topic and reason counted, and their count not yet in `pending`: a topic dropping on
   * every write costs two comparisons and an addition per drop, no string and no map lookup.
   */
  private lastTopic = "";
  private lastReason: DropReason | "" = "";
  private lastCount = 0;

  add(topic: string, reason: DropReason, count: number): void {
    if (topic !== this.lastTopic || reason !== this.lastReason) {
      this.settleLast();
      this.lastTopic = topic;
      this.lastReason = reason;
    }
    this.lastCount += count;
    this.timer ??= setTimeout(() => this.flush(), 10000);
  }

  private settleLast(): void {
    if (this.lastCount === 0) return;
    const key = `${this.lastTopic}\u0000${this.lastReason}`;
    this.pending.set(key, (this.pending.get(key) ?? 0) + this.lastCount);
    this.lastCount = 0;
  }

  flush(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    this.settleLast();
    for (const [key, count] of this.pending) {
      const [topic, reason] = key.split("\u0000");
      const why =
        reason === "age"
          ? "expired (older than --max-age)"
          : reason === "purge"
            ? "purged"
            : reason === "delete"
              ? "dropped (topic deleted)"
              : reason === "memory"
                ? "dropped (memory budget --max-memory reached)"
                : "dropped (topic full, --overflow drop-oldest)";
      serverLog.warn(`${topic}: ${count} message${count === 1 ? "" : "s"} ${why}`);
    }
    this.pending.clear();
  }
}
