// Opening Redis for the engine: the URL (redis://, rediss://, redis+cluster://), two clients (one
// for commands and scripts, one subscribed), the scripts loaded, and Redis's failures as BusErrors.

import { Cluster, Redis, type RedisOptions } from "ioredis";
import { BusError, isBusError, isErrorCode } from "../../core/errors.ts";
import { SCRIPTS } from "./scripts.ts";

/** A client with the engine's scripts defined (EVALSHA, loading a script Redis does not know yet). */
export type RedisClient = (Redis | Cluster) & ScriptCommands;

type Args = (string | number | Uint8Array)[];
type ScriptCommands = {
  [name in keyof typeof SCRIPTS]: (...args: Args) => Promise<unknown>;
} & {
  [name in `${keyof typeof SCRIPTS}Buffer`]: (...args: Args) => Promise<unknown>;
};

export interface RedisTarget {
  cluster: boolean;
  nodes: { host: string; port: number }[];
  options: RedisOptions;
  /** For logs: the URL without its password. */
  shown: string;
}

/** Reads a --redis URL. The password comes from the URL, else from `password` (MSGBUS_REDIS_PASSWORD). */
export function parseRedisUrl(url: string, password?: string): RedisTarget {
  const m = /^(redis|rediss|redis\+cluster|rediss\+cluster):\/\/(?:([^:@/]*)(?::([^@/]*))?@)?([^/?#]+)(?:\/(\d+))?\/?$/.exec(url.trim());
  if (!m) {
    throw new BusError(
      "BAD_REQUEST",
      `--redis: expected redis://[user:password@]host:port[/db], rediss://… or redis+cluster://host:port,host:port (got "${url.replace(/:[^:@/]*@/, ":***@")}")`,
    );
  }
  const [, scheme, user, secret, hosts, db] = m;
  const nodes = hosts!.split(",").map((hostPort) => {
    const at = hostPort.lastIndexOf(":");
    const host = at > 0 ? hostPort.slice(0, at).replace(/^\[|\]$/g, "") : hostPort;
    const port = at > 0 ? Number(hostPort.slice(at + 1)) : 6379;
    if (!host || !Number.isInteger(port) || port < 1 || port > 65535) throw new BusError("BAD_REQUEST", `--redis: bad host:port "${hostPort}"`);
    return { host, port };
  });
  const cluster = scheme!.endsWith("+cluster");
  if (!cluster && nodes.length > 1) throw new BusError("BAD_REQUEST", "--redis: several hosts need redis+cluster:// (a Redis Cluster)");
  const options: RedisOptions = {
    username: user ? decodeURIComponent(user) : undefined,
    password: secret !== undefined ? decodeURIComponent(secret) : password,
    db: db !== undefined ? Number(db) : undefined,
    tls: scheme!.startsWith("rediss") ? {} : undefined,
  };
  return { cluster, nodes, options, shown: `${scheme}://${hosts}${db !== undefined ? `/${db}` : ""}` };
}

/**
 * Fail fast, reconnect forever: a command while Redis is away is refused at once (no offline
 * queue, no retry: the caller answers UNAVAILABLE), one that gets no answer fails after 5 s, and
 * the client keeps reconnecting with backoff (100 ms up to 2 s).
 */
const FAIL_FAST: RedisOptions = {
  enableOfflineQueue: false,
  maxRetriesPerRequest: 0,
  commandTimeout: 5000,
  connectTimeout: 3000,
  retryStrategy: (times: number) => Math.min(100 * times, 2000),
  lazyConnect: true,
  // Commands issued in one turn of the event loop (a pipelined batch) go out in one write.
  enableAutoPipelining: true,
};

export function createClient(target: RedisTarget, subscriber: boolean): RedisClient {
  const options: RedisOptions = { ...FAIL_FAST, ...target.options, ...(subscriber ? { commandTimeout: undefined } : {}) };
  const client = target.cluster
    ? new Cluster(target.nodes, {
        redisOptions: options,
        enableOfflineQueue: false,
        clusterRetryStrategy: (times: number) => Math.min(100 * times, 2000),
        lazyConnect: true,
        enableAutoPipelining: true,
        // A cluster topology refresh now and then: a slot that moved is found without a failure.
        slotsRefreshInterval: 5000,
      })
    : new Redis({ ...options, host: target.nodes[0]!.host, port: target.nodes[0]!.port });
  for (const [name, [lua, numberOfKeys]] of Object.entries(SCRIPTS)) client.defineCommand(name, { lua, numberOfKeys });
  return client as RedisClient;
}

/** Redis's answer as a BusError: our scripts' own codes as they are, the rest UNAVAILABLE or STORAGE. */
export function redisError(error: unknown): BusError {
  if (isBusError(error)) return error;
  const message = error instanceof Error ? error.message : String(error);
  const code = message.slice(0, message.indexOf(" "));
  if (isErrorCode(code)) return new BusError(code, message.slice(code.length + 1));
  // Redis answered but will not write: out of memory, a replica, a failed disk. Nothing was done.
  if (/^(OOM|READONLY|MISCONF|NOREPLICAS|EXECABORT|BUSY)/.test(message)) return new BusError("STORAGE", `redis refused: ${message}`);
  return new BusError("UNAVAILABLE", `redis unavailable: ${message}`);
}
