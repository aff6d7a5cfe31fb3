// What every subcommand shares: the client settings' arguments, the exit-code table, and the
// one place a failure becomes one line on stderr and an exit code.

import { createReadStream, readFileSync } from "node:fs";
import { setLongTimeout } from "../long-timeout.ts";
import { concatBytes } from "../protocol/bytes.ts";
import { encodeEnvelope } from "../protocol/envelope.ts";
import { BusError, isBusError, type ErrorCode } from "../core/errors.ts";
import { SETTINGS, clientUrl, parseDuration, resolveConfig, settingArgs, type Config, type Flags } from "../config.ts";
import { connect, type Client, type ReceivedMessage, type TlsOptions } from "../client/client.ts";

/** The CLI side of the error table (documented in the README). */
export const EXIT_CODES: Record<ErrorCode | "OK" | "INTERNAL", number> = {
  OK: 0,
  INTERNAL: 1,
  BAD_REQUEST: 2,
  BAD_TOPIC: 2,
  NOT_FOUND: 2,
  NO_MESSAGE: 3,
  UNAVAILABLE: 4,
  UNAUTHORIZED: 5,
  FORBIDDEN: 5,
  TOO_LARGE: 6,
  TOPIC_FULL: 7,
  BUS_FULL: 7,
  NO_LEASE: 8,
  STORAGE: 9,
  SLOW_CONSUMER: 10,
};

export const clientArgs = settingArgs("client");
export const serverArgs = settingArgs("server");

export const outputArgs = {
  json: {
    type: "boolean" as const,
    description: "one JSON object per line: id, topic, created, deliveries, payload (base64 with \"encoding\":\"base64\" when not UTF-8)",
  },
};

/** Prints one line for a failure and exits with its code. Never a stack trace for a user's mistake. */
export function fail(error: unknown): never {
  if (isBusError(error)) {
    process.stderr.write(`msgbus: ${error.message}\n`);
    process.exit(EXIT_CODES[error.code]);
  }
  const message = error instanceof Error ? error.message : String(error);
  // A system error (a file or pipe we could not write, a handler we could not start) is not ours.
  const systemError = typeof (error as { code?: unknown })?.code === "string" && /^E[A-Z]+$/.test((error as { code: string }).code);
  process.stderr.write(systemError ? `msgbus: ${message}\n` : `msgbus: internal error: ${message}\n`);
  if (process.env.MSGBUS_DEBUG && error instanceof Error) process.stderr.write(`${error.stack}\n`);
  process.exit(EXIT_CODES.INTERNAL);
}

/** Runs a command body, turning every failure into fail(). */
export async function guarded(body: () => Promise<void> | void): Promise<void> {
  try {
    await body();
  } catch (error) {
    fail(error);
  }
}

export function usage(message: string): BusError {
  return new BusError("BAD_REQUEST", message);
}

// ---- client commands: connecting, arguments, output, handlers ----

/**
 * The connection flags of every client command (--host, --port, --url, --token, --cacert,
 * --insecure). The other client-side settings (--max-deliveries, --max-message-size) are declared
 * by the commands they make sense for.
 */
export const connectionArgs = Object.fromEntries(Object.entries(clientArgs).filter(([flag]) => flag !== "max-deliveries" && flag !== "max-message-size"));

/** The client's connection, and what it was told (for messages and for handlers' environment). */
export interface Connected {
  client: Client;
  url: string;
  token: string | undefined;
  /** Only when set for the client too (MSGBUS_MAX_MESSAGE_SIZE, BMAXMESSAGESIZE): larger payloads are refused before sending. */
  maxMessageSize: number | undefined;
  /** Only when set (--max-deliveries, MSGBUS_MAX_DELIVERIES): otherwise the server's default applies. */
  maxDeliveries: number | undefined;
}

/** Resolves the client settings (flags > MSGBUS_* > BHOST/BPORT > defaults) and connects. */
export async function connectFromArgs(args: Flags): Promise<Connected> {
  const config = resolveConfig(args);
  const url = clientUrl(config);
  const client = await connect(url, { token: config.token, tls: tlsFrom(config) });
  return {
    client,
    url,
    token: config.token,
    maxMessageSize: isExplicit(args, "maxMessageSize") ? config.maxMessageSize : undefined,
    maxDeliveries: isExplicit(args, "maxDeliveries") ? config.maxDeliveries : undefined,
  };
}

/** --cacert (read here, so a missing file is a usage error) and --insecure. */
function tlsFrom(config: Config): TlsOptions | undefined {
  if (config.cacert === undefined && !config.insecure) return undefined;
  let ca: string | undefined;
  if (config.cacert !== undefined) {
    try {
      ca = readFileSync(config.cacert, "utf8");
    } catch (error) {
      throw usage(`--cacert: cannot read ${config.cacert}: ${(error as Error).message}`);
    }
    if (!ca.includes("-----BEGIN CERTIFICATE-----")) throw usage(`--cacert: ${config.cacert} holds no PEM certificate ("-----BEGIN CERTIFICATE-----")`);
  }
  return { ...(ca !== undefined ? { ca } : {}), ...(config.insecure ? { rejectUnauthorized: false } : {}) };
}

/** Whether a setting was given by its flag or a variable, rather than left to its default. */
function isExplicit(args: Flags, key: keyof Config): boolean {
  const setting = SETTINGS.find((s) => s.key === key)!;
  const flag = args[setting.flag];
  if (flag !== undefined && flag !== "") return true;
  return [setting.env, ...(setting.fallbackEnv ?? [])].some((name) => Boolean(process.env[name]));
}

/** The topic positional, required (citty's own check would exit 1 with the whole help text). */
export function topicArg(args: Record<string, unknown>, command: string, usageLine: string): string {
  const topic = args.topic;
  if (typeof topic !== "string" || topic === "") throw usage(`${command} needs a topic (usage: ${usageLine})`);
  return topic;
}

/** A duration option ("500ms", "30s", "5m", a plain number is seconds) in ms, or undefined when absent. */
export function durationOption(value: unknown, flag: string): number | undefined {
  if (value === undefined) return undefined;
  const ms = parseDuration(String(value));
  if (ms === undefined) throw usage(`--${flag}: expected a duration, e.g. 500ms, 30s, 5m, 1h; a plain number is seconds (got "${String(value)}")`);
  return ms;
}

/** A whole-number option of at least `min`, or undefined when absent. */
export function countOption(value: unknown, flag: string, min = 1): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (String(value).trim() === "" || !Number.isInteger(n) || n < min) throw usage(`--${flag}: expected a whole number of at least ${min} (got "${String(value)}")`);
  return n;
}

/** The command after `--` (`msgbus on jobs -- ./handle.sh arg`), or undefined. */
export function commandAfterDashes(rawArgs: string[]): string[] | undefined {
  const at = rawArgs.indexOf("--");
  if (at < 0) return undefined;
  const command = rawArgs.slice(at + 1);
  if (command.length === 0) throw usage("nothing after --: give the command to run per message");
  return command;
}

/** Fails early, before connecting, when the handler cannot be run at all. */
export function checkRunnable(command: string[]): void {
  const program = command[0]!;
  if (Bun.which(program) === null) throw usage(`cannot run "${program}": not found or not executable`);
}

const encoder = new TextEncoder();

/** The --json form of a message: the envelope of src/protocol/envelope.ts, one line. */
export function messageJson(m: ReceivedMessage): string {
  return encodeEnvelope(m);
}

/**
 * What `sub` and `on` print for one message: the --json line, or the payload followed by a
 * newline unless it already ends with one (so text messages come out one per line).
 */
export function messageOutput(m: ReceivedMessage, json: boolean): Uint8Array {
  if (json) return encoder.encode(messageJson(m) + "\n");
  const p = m.payload;
  if (p.length > 0 && p[p.length - 1] === 10) return p;
  const out = new Uint8Array(p.length + 1);
  out.set(p);
  out[p.length] = 10;
  return out;
}

let stdoutError: Error | undefined;
const stdoutWaiting = new Set<(error: Error) => void>();

/** Writes to stdout and resolves once the bytes are handed on; rejects when stdout is closed (EPIPE). */
export function writeStdout(bytes: Uint8Array | string): Promise<void> {
  if (stdoutWaiting.size === 0 && process.stdout.listenerCount("error") === 0) {
    // A reader that went away (`msgbus sub t | head -1`) is an ordinary end, not a crash.
    process.stdout.on("error", (error: Error) => {
      stdoutError = error;
      for (const reject of stdoutWaiting) reject(error);
      stdoutWaiting.clear();
    });
  }
  if (stdoutError) return Promise.reject(stdoutError);
  return new Promise((resolve, reject) => {
    stdoutWaiting.add(reject);
    const settle = (error?: Error | null) => {
      stdoutWaiting.delete(reject);
      if (error) {
        stdoutError = error;
        reject(error);
      } else {
        resolve();
      }
    };
    try {
      process.stdout.write(bytes, settle);
    } catch (error) {
      settle(error instanceof Error ? error : new Error(String(error)));
    }
  });
}

export interface HandlerOptions {
  /** Kill the handler (SIGTERM, then SIGKILL after a grace period) when it runs longer. */
  timeoutMs?: number;
  /** Extra environment (the message's variables come on top). */
  env?: Record<string, string>;
}

export interface HandlerRun {
  /** Exit code; 128 + signal number when a signal ended it; -1 when it could not start. */
  readonly exited: Promise<{ code: number; timedOut: boolean; error?: string }>;
  /** Signals the handler's whole process group. */
  kill(signal: NodeJS.Signals): void;
}

const POSIX = process.platform !== "win32";
const KILL_GRACE_MS = 5000;

/**
 * Runs `command` for one message: payload on stdin, MSGBUS_ID / MSGBUS_TOPIC / MSGBUS_DELIVERY /
 * MSGBUS_CREATED in the environment, stdout and stderr inherited. It runs in a process group of its
 * own so that a terminal's Ctrl-C reaches msgbus only (which lets running handlers finish) and so
 * that a timeout kills everything the handler started.
 */
export function runHandler(command: string[], m: ReceivedMessage, options: HandlerOptions = {}): HandlerRun {
  const env: Record<string, string | undefined> = {
    ...process.env,
    ...options.env,
    MSGBUS_ID: String(m.id),
    MSGBUS_TOPIC: m.topic,
    MSGBUS_DELIVERY: String(m.deliveries),
    MSGBUS_CREATED: String(m.created),
  };
  if (m.origin) {
    env.MSGBUS_ORIGIN_TOPIC = m.origin.topic;
    env.MSGBUS_ORIGIN_ID = String(m.origin.id);
    env.MSGBUS_ORIGIN_DELIVERIES = String(m.origin.deliveries);
  }
  let proc: ReturnType<typeof Bun.spawn>;
  try {
    proc = Bun.spawn(command, { stdin: m.payload, stdout: "inherit", stderr: "inherit", env, detached: POSIX });
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    return { exited: Promise.resolve({ code: -1, timedOut: false, error: `cannot run "${command[0]}": ${reason}` }), kill() {} };
  }
  const kill = (signal: NodeJS.Signals) => {
    try {
      if (POSIX) process.kill(-proc.pid, signal);
      else proc.kill(signal);
    } catch {
      // Already gone.
    }
  };
  let timedOut = false;
  let graceTimer: ReturnType<typeof setTimeout> | undefined;
  // A long --timeout (25d) would overflow setTimeout and fire at once: setLongTimeout re-arms.
  const timer =
    options.timeoutMs !== undefined
      ? setLongTimeout(() => {
          timedOut = true;
          kill("SIGTERM");
          graceTimer = setTimeout(() => kill("SIGKILL"), Math.min(KILL_GRACE_MS, Math.max(100, options.timeoutMs!)));
        }, options.timeoutMs)
      : undefined;
  const exited = proc.exited.then((code) => {
    timer?.clear();
    clearTimeout(graceTimer);
    // What the handler left running in its group goes with it.
    if (POSIX && timedOut) kill("SIGKILL");
    return { code, timedOut };
  });
  return { exited, kill };
}

/** Stops the process on the first SIGTERM/SIGINT via `graceful`; a second one runs `force`. */
export function onStopSignals(graceful: (signal: string) => void, force: (signal: string) => void): void {
  let signalled = false;
  for (const signal of ["SIGTERM", "SIGINT"] as const) {
    process.on(signal, () => {
      if (signalled) return force(signal);
      signalled = true;
      graceful(signal);
    });
  }
}

/** `--reconnect`: the waits between attempts, 1 s doubling up to 30 s; interrupt() ends a wait early. */
export class Backoff {
  private delay = 1000;
  private wake: (() => void) | undefined;

  get nextDelay(): number {
    return this.delay;
  }

  reset(): void {
    this.delay = 1000;
  }

  async wait(): Promise<void> {
    const ms = this.delay;
    this.delay = Math.min(this.delay * 2, 30000);
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, ms);
      this.wake = () => {
        clearTimeout(timer);
        resolve();
      };
    });
    this.wake = undefined;
  }

  interrupt(): void {
    this.wake?.();
  }
}

/** Whether a failure is worth another attempt under --reconnect: the server is away, not refusing us. */
export function isUnavailable(error: unknown): boolean {
  return isBusError(error) && error.code === "UNAVAILABLE";
}

export const reconnectArg = {
  reconnect: {
    type: "boolean" as const,
    description: "when the server cannot be reached or goes away, try again (after 1 s, doubling up to 30 s) instead of exiting with code 4",
  },
};

/**
 * Stdin, chunk by chunk. Not Bun.stdin: on Windows a pending Bun.stdin read does not keep the
 * process alive (oven-sh/bun#41850), so `put` exited 0 having written nothing.
 */
export async function* stdinChunks(): AsyncGenerator<Uint8Array> {
  const stream = createReadStream("", { fd: 0, autoClose: false });
  for await (const chunk of stream) yield chunk as Buffer;
}

/** All of stdin, refused with TOO_LARGE as soon as it passes `limit` bytes: never read further than that. */
export async function readStdin(limit: MessageLimit): Promise<Uint8Array> {
  const chunks: Uint8Array[] = [];
  let size = 0;
  for await (const chunk of stdinChunks()) {
    size += chunk.length;
    if (size > limit.bytes) throw tooLarge(`stdin holds more than ${limit.bytes} bytes`, limit);
    chunks.push(chunk);
  }
  return chunks.length === 0 ? new Uint8Array(0) : concatBytes(chunks, size);
}

/** The largest payload a write may have, and where that number came from (for the error line). */
export interface MessageLimit {
  bytes: number;
  source: string;
}

export function tooLarge(what: string, limit: MessageLimit): BusError {
  return new BusError("TOO_LARGE", `${what}: larger than the limit of ${limit.bytes} bytes (${limit.source})`);
}

/**
 * The limit a client write is held to before anything is sent: the client's own
 * --max-message-size when given, else what the server says, else the default (1 MiB).
 */
export async function messageLimit(connected: Connected): Promise<MessageLimit> {
  if (connected.maxMessageSize !== undefined) return { bytes: connected.maxMessageSize, source: "--max-message-size" };
  const server = await connected.client.maxMessageSize();
  if (server !== undefined) return { bytes: server, source: "the server's --max-message-size" };
  const fallback = Number(SETTINGS.find((s) => s.key === "maxMessageSize")!.default);
  return { bytes: fallback, source: "the default; the server did not say its own, set --max-message-size to raise it" };
}
