// Configuration: flags > MSGBUS_* environment > beuss's old variables > defaults, resolved once
// into a typed Config. The SETTINGS table is the one place a setting is named and described.

import { BusError } from "./core/errors.ts";
import { type BusLimits, DEFAULT_LIMITS } from "./core/limits.ts";
import { parseWholeNumber } from "./core/numbers.ts";

type Kind = "string" | "port" | "size" | "count" | "duration" | "choice" | "boolean";

export interface Setting {
  key: keyof Config;
  flag: string;
  env: string;
  /** Older variable names still honoured (the beuss tool's). */
  fallbackEnv?: string[];
  kind: Kind;
  default: string | undefined;
  choices?: string[];
  description: string;
  /** Which side reads it: the server, the client, or both. */
  side: "server" | "client" | "both";
}

/**
 * The bus's limits take their defaults from core/limits.ts (DEFAULT_LIMITS), written here as a
 * user writes them (64MiB, 30s); the server's own settings have theirs here.
 */
export const SETTINGS: Setting[] = [
  { key: "host", flag: "host", env: "MSGBUS_HOST", fallbackEnv: ["BHOST"], kind: "string", default: "127.0.0.1", side: "both", description: "address the server binds, or the client's server" },
  { key: "port", flag: "port", env: "MSGBUS_PORT", fallbackEnv: ["BPORT"], kind: "port", default: "6552", side: "both", description: "TCP (RESP) port" },
  { key: "httpPort", flag: "http-port", env: "MSGBUS_HTTP_PORT", kind: "port", default: "6553", side: "server", description: "HTTP/SSE/WebSocket port (0 turns HTTP off)" },
  { key: "url", flag: "url", env: "MSGBUS_URL", kind: "string", default: undefined, side: "client", description: "where a client connects: tcp://, tls://, http(s)://, ws(s):// (default tcp://HOST:PORT)" },
  { key: "token", flag: "token", env: "MSGBUS_TOKEN", kind: "string", default: undefined, side: "both", description: "auth token (server: required of clients; client: sent)" },
  { key: "acl", flag: "acl", env: "MSGBUS_ACL", kind: "string", default: undefined, side: "server", description: "file of rights per token: TOKEN RIGHTS TOPIC-GLOB… per line (rights r, w, rw, admin), re-read on SIGHUP and when it changes; --token is then one more admin" },
  { key: "data", flag: "data", env: "MSGBUS_DATA", kind: "string", default: undefined, side: "server", description: "directory for durable storage (default: memory only)" },
  { key: "redis", flag: "redis", env: "MSGBUS_REDIS", kind: "string", default: undefined, side: "server", description: "keep the bus in Redis, shared by every server given the same URL: redis://[:password@]host:port[/db], rediss:// (TLS), redis+cluster://host:port,host:port (a Redis Cluster); not with --data" },
  { key: "redisPrefix", flag: "redis-prefix", env: "MSGBUS_REDIS_PREFIX", kind: "string", default: "msgbus:", side: "server", description: "prefix of every Redis key and channel: several buses can share one Redis" },
  { key: "redisPassword", flag: "redis-password", env: "MSGBUS_REDIS_PASSWORD", kind: "string", default: undefined, side: "server", description: "Redis password when the URL has none (prefer the variable: flags show in ps)" },
  { key: "fsync", flag: "fsync", env: "MSGBUS_FSYNC", kind: "choice", choices: ["process", "always"], default: "process", side: "server", description: "durable mode: survive a process crash (process) or a power cut too (always)" },
  { key: "maxMessageSize", flag: "max-message-size", env: "MSGBUS_MAX_MESSAGE_SIZE", fallbackEnv: ["BMAXMESSAGESIZE"], kind: "size", default: String(DEFAULT_LIMITS.maxMessageSize), side: "both", description: "largest payload in bytes (client: put/pub refuse larger ones before sending; default: the server's)" },
  { key: "maxQueue", flag: "max-queue", env: "MSGBUS_MAX_QUEUE", kind: "count", default: String(DEFAULT_LIMITS.maxQueue), side: "server", description: "most messages queued per topic" },
  { key: "maxQueueBytes", flag: "max-queue-bytes", env: "MSGBUS_MAX_QUEUE_BYTES", kind: "size", default: sizeText(DEFAULT_LIMITS.maxQueueBytes), side: "server", description: "most bytes held per topic (payload + 96 bytes per message, + 500 while leased or nacked)" },
  { key: "maxMemory", flag: "max-memory", env: "MSGBUS_MAX_MEMORY", kind: "size", default: sizeText(DEFAULT_LIMITS.maxMemory), side: "server", description: "most bytes queued over all topics (same measure)" },
  { key: "overflow", flag: "overflow", env: "MSGBUS_OVERFLOW", kind: "choice", choices: ["drop-oldest", "reject"], default: DEFAULT_LIMITS.overflow, side: "server", description: "full topic: drop-oldest or reject" },
  { key: "maxAge", flag: "max-age", env: "MSGBUS_MAX_AGE", kind: "duration", default: durationText(DEFAULT_LIMITS.maxAge), side: "server", description: "queued messages older than this expire (0: never)" },
  { key: "maxTopics", flag: "max-topics", env: "MSGBUS_MAX_TOPICS", kind: "count", default: String(DEFAULT_LIMITS.maxTopics), side: "server", description: "most topics" },
  { key: "leaseTime", flag: "lease-time", env: "MSGBUS_LEASE_TIME", kind: "duration", default: durationText(DEFAULT_LIMITS.defaultLease), side: "server", description: "lease time when a consumer does not say" },
  { key: "maxDeliveries", flag: "max-deliveries", env: "MSGBUS_MAX_DELIVERIES", kind: "count", default: String(DEFAULT_LIMITS.maxDeliveries), side: "both", description: "deliveries before a message goes to <topic>.dead" },
  { key: "sendBuffer", flag: "send-buffer", env: "MSGBUS_SEND_BUFFER", kind: "size", default: "8MiB", side: "server", description: "most bytes of live messages waiting for a subscriber that does not read before it is cut off as a slow consumer (replies, SUB SINCE replays and ON deliveries do not count)" },
  { key: "maxInput", flag: "max-input", env: "MSGBUS_MAX_INPUT", kind: "size", default: "64MiB", side: "server", description: "most bytes of received, not yet run RESP input (half-sent commands, input behind a blocked command) over all connections; the connection that goes over is closed" },
  { key: "inputTimeout", flag: "input-timeout", env: "MSGBUS_INPUT_TIMEOUT", kind: "duration", default: "30s", side: "server", description: "a RESP connection whose half-sent command gets no new byte for this long is closed (0: never)" },
  { key: "maxConnections", flag: "max-connections", env: "MSGBUS_MAX_CONNECTIONS", kind: "count", default: "10000", side: "server", description: "most client connections over all transports" },
  { key: "allowOrigin", flag: "allow-origin", env: "MSGBUS_ALLOW_ORIGIN", kind: "string", default: "*", side: "server", description: "browser pages that may use the HTTP API and WebSockets: * (any), one origin (https://app.example), or none (same origin only)" },
  { key: "tlsCert", flag: "tls-cert", env: "MSGBUS_TLS_CERT", kind: "string", default: undefined, side: "server", description: "PEM certificate: TLS on every listener" },
  { key: "tlsKey", flag: "tls-key", env: "MSGBUS_TLS_KEY", kind: "string", default: undefined, side: "server", description: "PEM private key for --tls-cert" },
  { key: "cacert", flag: "cacert", env: "MSGBUS_CACERT", kind: "string", default: undefined, side: "client", description: "PEM file of the certificate (or its CA) to trust for tls://, https://, wss://, e.g. a self-signed server's --tls-cert" },
  { key: "insecure", flag: "insecure", env: "MSGBUS_INSECURE", kind: "boolean", default: "false", side: "client", description: "tls://, https://, wss:// without checking the server's certificate (tests only: anyone in between can read and change everything)" },
  { key: "console", flag: "console", env: "MSGBUS_CONSOLE", kind: "boolean", default: "true", side: "server", description: "serve the web console at / to browsers (--no-console: off)" },
  { key: "logLevel", flag: "log-level", env: "MSGBUS_LOG_LEVEL", kind: "choice", choices: ["error", "warn", "info", "debug"], default: "info", side: "server", description: "log level" },
  { key: "logFormat", flag: "log-format", env: "MSGBUS_LOG_FORMAT", kind: "choice", choices: ["text", "json"], default: "text", side: "server", description: "log format (json: one object per line)" },
];

export interface Config {
  host: string;
  port: number;
  httpPort: number;
  url: string | undefined;
  token: string | undefined;
  acl: string | undefined;
  data: string | undefined;
  redis: string | undefined;
  redisPrefix: string;
  redisPassword: string | undefined;
  fsync: "process" | "always";
  maxMessageSize: number;
  maxQueue: number;
  maxQueueBytes: number;
  maxMemory: number;
  overflow: "drop-oldest" | "reject";
  maxAge: number;
  maxTopics: number;
  leaseTime: number;
  maxDeliveries: number;
  sendBuffer: number;
  maxInput: number;
  inputTimeout: number;
  maxConnections: number;
  allowOrigin: string;
  tlsCert: string | undefined;
  tlsKey: string | undefined;
  cacert: string | undefined;
  insecure: boolean;
  console: boolean;
  logLevel: "error" | "warn" | "info" | "debug";
  logFormat: "text" | "json";
}

export type Flags = Record<string, unknown>;
export type Environment = Record<string, string | undefined>;

/** Resolves every setting: flags (citty's parsed args, by flag name) > environment > defaults. */
export function resolveConfig(flags: Flags = {}, env: Environment = process.env): Config {
  return resolveSettings(SETTINGS, flags, env) as Config;
}

/**
 * Resolves the settings given, as resolveConfig does every one: a client's fast path
 * (commands/_write-fast.ts) reads the few it needs without parsing all the others.
 */
export function resolveSettings(settings: readonly Setting[], flags: Flags = {}, env: Environment = process.env): Partial<Config> {
  const config: Record<string, unknown> = {};
  for (const setting of settings) {
    const { raw, source } = pick(setting, flags, env);
    config[setting.key] = raw === undefined ? undefined : parseSetting(setting, raw, source);
  }
  return config as Partial<Config>;
}

/** Whether a setting's variable (or an older name of it) is set, non-empty, in `env`. */
export function isSetIn(setting: Setting, env: Environment = process.env): boolean {
  return [setting.env, ...(setting.fallbackEnv ?? [])].some((name) => Boolean(env[name]));
}

function pick(setting: Setting, flags: Flags, env: Environment): { raw: string | undefined; source: string } {
  const flag = flags[setting.flag] ?? flags[camel(setting.flag)];
  if (flag !== undefined && flag !== "") return { raw: String(flag), source: `--${setting.flag}` };
  for (const name of [setting.env, ...(setting.fallbackEnv ?? [])]) {
    const value = env[name];
    if (value !== undefined && value !== "") return { raw: value, source: name };
  }
  return { raw: setting.default, source: "default" };
}

function camel(flag: string): string {
  return flag.replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());
}

function parseSetting(setting: Setting, raw: string, source: string): unknown {
  const bad = (why: string) => new BusError("BAD_REQUEST", `${source}: ${why} (got "${raw}")`);
  switch (setting.kind) {
    case "string":
      return raw;
    case "port": {
      const n = parseWholeNumber(raw.trim());
      if (n === undefined || n > 65535) throw bad("a port is a whole number from 0 to 65535");
      return n;
    }
    case "count": {
      const n = parseWholeNumber(raw.trim());
      if (n === undefined || n < 1) throw bad("expected a whole number of at least 1");
      return n;
    }
    case "size": {
      const n = parseSize(raw);
      if (n === undefined) throw bad("expected a size in bytes, e.g. 1048576, 64KiB, 1MiB, 2GB");
      return n;
    }
    case "duration": {
      const n = parseDuration(raw);
      if (n === undefined) throw bad("expected a duration, e.g. 500ms, 30s, 5m, 1h (a plain number is seconds)");
      return n;
    }
    case "boolean": {
      const value = raw.trim().toLowerCase();
      if (["1", "true", "yes", "on"].includes(value)) return true;
      if (["0", "false", "no", "off"].includes(value)) return false;
      throw bad("expected true or false (1 or 0)");
    }
    case "choice":
      if (!setting.choices!.includes(raw)) throw bad(`expected one of ${setting.choices!.join(", ")}`);
      return raw;
  }
}

const SIZE_UNITS: Record<string, number> = {
  "": 1,
  b: 1,
  k: 1024,
  kb: 1000,
  kib: 1024,
  m: 1048576,
  mb: 1000000,
  mib: 1048576,
  g: 1073741824,
  gb: 1000000000,
  gib: 1073741824,
};

/** "1048576", "64KiB", "1MiB", "2GB" -> bytes; undefined when not a size. */
export function parseSize(text: string): number | undefined {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*$/.exec(text);
  if (!m) return undefined;
  const unit = SIZE_UNITS[m[2]!.toLowerCase()];
  if (unit === undefined) return undefined;
  return Math.floor(Number(m[1]) * unit);
}

/** Bytes as --help shows them: whole GiB, MiB or KiB by name ("64MiB"), else plain bytes. */
export function sizeText(bytes: number): string {
  for (const [unit, size] of [
    ["GiB", 1073741824],
    ["MiB", 1048576],
    ["KiB", 1024],
  ] as const) {
    if (bytes > 0 && bytes % size === 0) return `${bytes / size}${unit}`;
  }
  return String(bytes);
}

/** Milliseconds as --help shows them, in the largest whole unit ("30s"); 0 is "0". */
export function durationText(ms: number): string {
  for (const [unit, size] of [
    ["d", 86400000],
    ["h", 3600000],
    ["m", 60000],
    ["s", 1000],
  ] as const) {
    if (ms > 0 && ms % size === 0) return `${ms / size}${unit}`;
  }
  return ms === 0 ? "0" : `${ms}ms`;
}

const DURATION_UNITS: Record<string, number> = { ms: 1, s: 1000, "": 1000, m: 60000, h: 3600000, d: 86400000 };

/**
 * "500ms", "30s", "5m", "1h", "2d", or a plain number of seconds -> whole milliseconds; undefined
 * when not a duration or too large to count exactly. A positive duration is never less than 1 ms:
 * "0.0004" must not become 0, which the waits read as "forever".
 */
export function parseDuration(text: string): number | undefined {
  const m = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|)\s*$/.exec(text);
  if (!m) return undefined;
  const exact = Number(m[1]) * DURATION_UNITS[m[2]!]!;
  if (!Number.isFinite(exact) || exact > Number.MAX_SAFE_INTEGER) return undefined;
  return exact > 0 ? Math.max(1, Math.round(exact)) : 0;
}

/** The client's server address: --url, else tcp://host:port. */
/** The bus's limits as the server's settings give them (--lease-time is the bus's default lease). */
export function busLimits(config: Config): Partial<BusLimits> {
  return {
    maxMessageSize: config.maxMessageSize,
    maxQueue: config.maxQueue,
    maxQueueBytes: config.maxQueueBytes,
    maxMemory: config.maxMemory,
    overflow: config.overflow,
    maxAge: config.maxAge,
    defaultLease: config.leaseTime,
    maxDeliveries: config.maxDeliveries,
    maxTopics: config.maxTopics,
  };
}

export function clientUrl(config: Config): string {
  if (config.url) return config.url;
  const host = config.host.includes(":") ? `[${config.host}]` : config.host;
  return `tcp://${host}:${config.port}`;
}

/** citty argument definitions for the settings one side reads, shared by every command. */
export function settingArgs(side: "server" | "client"): Record<string, { type: "string" | "boolean"; description: string; valueHint?: string }> {
  const args: Record<string, { type: "string" | "boolean"; description: string; valueHint?: string }> = {};
  for (const s of SETTINGS) {
    if (s.side !== side && s.side !== "both") continue;
    const fallback = s.fallbackEnv ? `, ${s.fallbackEnv.join(", ")}` : "";
    const dflt = s.default !== undefined ? `; default ${s.default}` : "";
    args[s.flag] = { type: s.kind === "boolean" ? "boolean" : "string", description: `${s.description} (${s.env}${fallback}${dflt})` };
  }
  return args;
}
