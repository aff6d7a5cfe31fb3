// The start-up fast path of `put` and `pub` (docs/BENCHMARKS.md, start-up): the common forms
// `msgbus put <topic> [message…]`, with --url and --token as flags or from the environment, to a
// tcp:// server; without message words, stdin (a pipe or a file) is the message. It is the same
// write as _write.ts's (the same settings and checks, the same commands on the wire, the same error
// lines and exit codes) with less loaded: no citty, no node:* module, no Node stream (Bun.stdin
// reads the message), none of --lines and --reconnect, and one plain connection rather than the
// pipelining TCP client (its wording shared through client/tcp-basics.ts). Anything else returns
// false and goes the full way (src/cli.ts); test/e2e/cli.test.ts compares the two.

import type { Socket } from "bun";
import { MAX_MESSAGE_SIZE_COMMAND, connectWithin, lostConnection, maxMessageSizeOf, readReplies, replyError, tcpAddress } from "../client/tcp-basics.ts";
import { type Config, SETTINGS, clientUrl, isSetIn, resolveSettings } from "../config.ts";
import { BusError } from "../core/errors.ts";
import { RespErrorValue, RespReader, type RespValue } from "../protocol/resp-reader.ts";
import { guarded } from "./_exit.ts";
import { messageLimitOf, readLimited, tooLarge } from "./_limit.ts";

/** The flags this path reads (each once, with a value); any other option goes the full way. */
const FLAGS = new Set(["url", "token"]);
/** The settings a write reads (_connect.ts): where to connect, the token, TLS, the client's limit. */
const CLIENT = new Set<keyof Config>(["url", "host", "port", "token", "cacert", "insecure", "maxMessageSize"]);
const CLIENT_SETTINGS = SETTINGS.filter((s) => CLIENT.has(s.key));

/**
 * Writes the message that `args` (what follows `put` or `pub`) give, when they are one of the
 * forms above; false, having done nothing, when they are not.
 */
export async function fastWrite(args: string[]): Promise<boolean> {
  const parsed = parse(args);
  if (!parsed) return false;
  const { flags, words } = parsed;
  const [topic, ...message] = words;
  if (topic === undefined || topic === "") return false; // the full path's usage error
  // No message words: the whole of stdin is the message. Read the full way on Windows (where a
  // pending Bun.stdin read does not keep the process alive) and from a terminal or other device
  // (the full path says it is reading; asking whether stdin is a terminal loads Node's streams).
  if (message.length === 0 && (process.platform === "win32" || (await stdinIsDevice()))) return false;
  // The same settings as the full path, checked the same way (a bad variable is the same usage
  // error); anything that is not plain TCP (tls://, http(s)://, ws(s)://, --cacert, --insecure)
  // goes the full way. Only the client's settings are read: a variable of another one set (which
  // the full path would check too) sends the write the full way.
  if (SETTINGS.some((s) => !CLIENT.has(s.key) && isSetIn(s))) return false;
  let url: URL;
  let config: Partial<Config>;
  try {
    config = resolveSettings(CLIENT_SETTINGS, flags);
    url = new URL(clientUrl(config as Config));
  } catch {
    return false; // the full path reports it
  }
  if (url.protocol !== "tcp:" || config.cacert !== undefined || config.insecure) return false;
  const maxMessageSize = isSetIn(SETTINGS.find((s) => s.key === "maxMessageSize")!) ? config.maxMessageSize! : undefined;

  await guarded(async () => {
    const connection = await Connection.open(url, config.token || undefined);
    let payload: Uint8Array;
    if (message.length > 0) {
      payload = new TextEncoder().encode(message.join(" "));
      // The client's own limit applies only when set (_connect.ts: isExplicit); there is no flag for it here.
      if (maxMessageSize !== undefined && payload.length > maxMessageSize) {
        throw tooLarge(`message of ${payload.length} bytes`, { bytes: maxMessageSize, source: "--max-message-size" });
      }
    } else {
      // As _io.ts's messageLimit and TcpClient.maxMessageSize: the server's limit, unless it does not say.
      const limit = await messageLimitOf(maxMessageSize, async () => {
        try {
          return maxMessageSizeOf(await connection.send(MAX_MESSAGE_SIZE_COMMAND));
        } catch (error) {
          if (error instanceof BusError && error.code === "UNAVAILABLE") throw error;
          return undefined; // an older server, or a token without the right: the default applies
        }
      });
      payload = await readLimited(Bun.stdin.stream(), limit);
    }
    const id = await connection.send(["PUT", topic, payload]);
    if (typeof id !== "number") throw new BusError("BAD_REQUEST", `unexpected reply to PUT: ${String(id)}`);
    connection.close();
  });
  return true;
}

/** Whether stdin is a terminal or another character device (/dev/null), or cannot be looked at. */
async function stdinIsDevice(): Promise<boolean> {
  try {
    return (await Bun.stdin.stat()).isCharacterDevice();
  } catch {
    return true;
  }
}

/**
 * Splits the arguments into --url/--token values and words; undefined for anything else (another
 * option, `--`, a flag given twice or without a value, a value that starts with "-").
 */
function parse(args: string[]): { flags: Record<string, string>; words: string[] } | undefined {
  const flags: Record<string, string> = {};
  const words: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    if (!arg.startsWith("-")) {
      words.push(arg);
      continue;
    }
    if (!arg.startsWith("--")) return undefined;
    const equals = arg.indexOf("=");
    const name = arg.slice(2, equals < 0 ? undefined : equals);
    const value = equals < 0 ? args[++i] : arg.slice(equals + 1);
    if (!FLAGS.has(name) || name in flags || value === undefined || value === "" || value.startsWith("-")) return undefined;
    flags[name] = value;
  }
  return { flags, words };
}

const encoder = new TextEncoder();

/** A RESP command as the server reads it: an array of bulk strings. */
function encodeCommand(args: (string | Uint8Array)[]): Uint8Array {
  const parts = args.map((arg) => (typeof arg === "string" ? encoder.encode(arg) : arg));
  const heads = parts.map((part) => encoder.encode(`$${part.length}\r\n`));
  const out = new Uint8Array(parts.reduce((n, part, i) => n + heads[i]!.length + part.length + 2, 0) + 16);
  let at = encoder.encodeInto(`*${parts.length}\r\n`, out).written;
  for (let i = 0; i < parts.length; i++) {
    out.set(heads[i]!, at);
    out.set(parts[i]!, at + heads[i]!.length);
    at += heads[i]!.length + parts[i]!.length;
    out[at++] = 13;
    out[at++] = 10;
  }
  return out.subarray(0, at);
}

/**
 * One connection, one command at a time: the TCP client's RespConnection (client/tcp.ts) without
 * pipelining, pushes or TLS, with the same failures in the same words (client/tcp-basics.ts).
 */
class Connection {
  private socket!: Socket<undefined>;
  private readonly reader = new RespReader();
  private waiting: { resolve(value: RespValue): void; reject(error: BusError): void } | undefined;
  private unsent: Uint8Array | undefined;
  private ended: BusError | undefined;
  private closing = false;
  /** Whether a reply came back, and when the first command went: a TLS port closes at once, unanswered. */
  private answered = false;
  private firstSent = 0;

  private constructor(private readonly label: string) {}

  /** Connects (at most CONNECT_TIMEOUT_MS), then AUTH when given a token, as RespConnection.open does. */
  static async open(url: URL, token: string | undefined): Promise<Connection> {
    const { hostname, port, label } = tcpAddress(url);
    const connection = new Connection(label);
    const connecting = Bun.connect({
      hostname,
      port,
      socket: {
        data: (_socket, chunk) => connection.received(chunk),
        drain: () => connection.drained(),
        close: (_socket, error) => connection.lost(error),
        end: () => connection.lost(undefined),
        error: (_socket, error) => connection.lost(error),
        connectError() {
          // The promise rejects with the same error.
        },
      },
    });
    connection.socket = await connectWithin(label, connecting);
    connection.socket.setNoDelay?.(true);
    if (token !== undefined) {
      try {
        await connection.send(["AUTH", token]);
      } catch (error) {
        // A server without auth answers AUTH with -ERR: a token set in the environment does no harm.
        if (!(error instanceof BusError && error.code === "BAD_REQUEST")) {
          connection.close();
          throw error;
        }
      }
    }
    return connection;
  }

  /** Sends one command; resolves with its reply, rejects with a BusError for an error reply or a lost connection. */
  send(args: (string | Uint8Array)[]): Promise<RespValue> {
    if (this.ended || this.closing) return Promise.reject(this.ended ?? new BusError("UNAVAILABLE", `connection to msgbus at ${this.label} is closed`));
    if (this.firstSent === 0) this.firstSent = Date.now();
    return new Promise<RespValue>((resolve, reject) => {
      this.waiting = { resolve, reject };
      this.write(encodeCommand(args));
    });
  }

  private write(bytes: Uint8Array): void {
    const written = this.socket.write(bytes);
    // What the kernel did not take goes on drain (a long message).
    this.unsent = written >= 0 && written < bytes.length ? bytes.subarray(written) : undefined;
  }

  private drained(): void {
    if (this.unsent && !this.ended) this.write(this.unsent);
  }

  private received(chunk: Uint8Array): void {
    readReplies(
      this.reader,
      chunk,
      this.label,
      this.socket,
      (error) => this.lost(error),
      (value) => this.reply(value),
    );
  }

  /** One reply: to the request waiting for it; false once the connection has ended. */
  private reply(value: RespValue): boolean {
    if (this.ended) return false;
    const waiting = this.waiting;
    this.waiting = undefined;
    if (!waiting) {
      // Unasked-for: the server speaks first only to say why it closes.
      if (value instanceof RespErrorValue) this.lost(replyError(value));
      return true;
    }
    this.answered = true;
    if (value instanceof RespErrorValue) waiting.reject(replyError(value));
    else waiting.resolve(value);
    return true;
  }

  /** The socket is gone: what waits fails. */
  private lost(error: unknown): void {
    if (this.ended || this.closing) return;
    const refusedAtOnce = !this.answered && this.firstSent > 0 && Date.now() - this.firstSent < 2000;
    this.ended = lostConnection(this.label, error, refusedAtOnce);
    this.waiting?.reject(this.ended);
    this.waiting = undefined;
    this.unsent = undefined;
  }

  close(): void {
    if (this.ended || this.closing) return;
    this.closing = true;
    this.socket.end();
  }
}
