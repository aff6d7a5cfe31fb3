// The TCP client: RESP2 over Bun.connect (tls:// for TLS). One connection for requests, pipelined
// (a FIFO of waiting replies), plus one connection per subscription or consumer, so that pushed
// message frames never mix with the replies of other requests.

import type { Socket } from "bun";
import { BusError } from "../core/errors.ts";
import { isMessageFrame, readMessage } from "../protocol/frame.ts";
import { RespErrorValue, RespPush, RespReader, type RespValue } from "../protocol/resp-reader.ts";
import { encodeCommand } from "../protocol/resp-writer.ts";
import { MAX_MESSAGE_SIZE_COMMAND, connectWithin, lostConnection, maxMessageSizeOf, readReplies, replyError, tcpAddress } from "./tcp-basics.ts";
import { bunTls, certificateHint, type TlsOptions } from "./tls.ts";
import type {
  Client,
  ConnectOptions,
  ConsumeOptions,
  GetOptions,
  PeekOptions,
  PingResult,
  ReceivedMessage,
  ServerStats,
  Stream,
  SubscribeOptions,
  TopicStats,
  WriteResult,
} from "./client.ts";

export { replyError } from "./tcp-basics.ts";

/** putMany keeps at most this many writes (and bytes) unacknowledged at once. */
const MAX_IN_FLIGHT = 1000;
const MAX_IN_FLIGHT_BYTES = 8 * 1048576;

interface Target {
  hostname: string;
  port: number;
  tls: boolean;
  /** tcp://host:port, for messages. */
  label: string;
  token?: string;
  tlsOptions?: TlsOptions;
}

interface Waiting {
  resolve(value: RespValue): void;
  reject(error: BusError): void;
}

/**
 * One RESP connection: commands are written at once (batched per tick, the rest kept for the
 * drain event when the kernel takes only part), replies resolve the oldest waiting command.
 * With `onPush` set, message frames are handed to it instead (a SUB or ON connection).
 */
class RespConnection {
  private socket!: Socket<undefined>;
  private readonly reader = new RespReader();
  private readonly waiting: Waiting[] = [];
  private waitingHead = 0;
  private outgoing: Uint8Array[] = [];
  private unsent: Uint8Array[] = [];
  private flushScheduled = false;
  private closing = false;
  private ended: BusError | null | undefined; // undefined: open; null: closed by us
  private endedResolve!: () => void;
  private endedReject!: (error: BusError) => void;
  /** Resolves when we close it, rejects with a BusError when the server or network does. */
  readonly ended$: Promise<void>;
  onPush: ((frame: RespValue[]) => void) | undefined;
  /** Whether a reply came back, and when the first command went: a TLS port closes at once, unanswered. */
  private answered = false;
  private firstSent = 0;

  private constructor(readonly target: Target) {
    this.ended$ = new Promise<void>((resolve, reject) => {
      this.endedResolve = resolve;
      this.endedReject = reject;
    });
    this.ended$.catch(() => {}); // whoever cares awaits it; nobody else should see a rejection
  }

  static async open(target: Target): Promise<RespConnection> {
    const connection = new RespConnection(target);
    await connection.connect();
    if (target.token !== undefined) {
      try {
        await connection.send(["AUTH", target.token]);
      } catch (error) {
        // A server without auth needs no token (it answers AUTH with -ERR, as Redis does; a wrong
        // token is -WRONGPASS): a token set in the environment does no harm.
        if (!(error instanceof BusError && error.code === "BAD_REQUEST")) {
          connection.close();
          throw error;
        }
      }
    }
    return connection;
  }

  private async connect(): Promise<void> {
    const { hostname, port, tls, label } = this.target;
    // With TLS the socket opens before the handshake: wait for it, so a bad certificate is a
    // failure to connect rather than a lost connection.
    let handshaken: (error?: Error) => void = () => {};
    const handshake = new Promise<void>((resolve, reject) => {
      handshaken = (error) => (error ? reject(error) : resolve());
    });
    handshake.catch(() => {});
    const self = this;
    const connecting = Bun.connect({
      hostname,
      port,
      ...(tls ? { tls: bunTls(this.target.tlsOptions) ?? true } : {}),
      socket: {
        data(_socket, chunk) {
          self.received(chunk);
        },
        drain() {
          self.drained();
        },
        close(_socket, error) {
          self.lost(error);
        },
        end() {
          self.lost(undefined);
        },
        error(_socket, error) {
          self.lost(error);
        },
        connectError() {
          // The promise rejects with the same error.
        },
        handshake(socket, success, authorizationError) {
          const insecure = self.target.tlsOptions?.rejectUnauthorized === false;
          if (!success || (authorizationError && !insecure)) {
            const error = new Error(`TLS handshake failed: ${certificateHint(authorizationError?.message ?? "unknown reason")}`);
            handshaken(error);
            self.lost(error);
            socket.end();
          } else {
            handshaken();
          }
        },
      },
    });
    const opened = (socket: Socket) => {
      this.socket = socket;
      return handshake;
    };
    this.socket = await connectWithin(label, connecting, tls ? opened : undefined);
    this.socket.setNoDelay?.(true);
  }

  /** Sends one command; resolves with its reply, rejects with a BusError for an error reply. */
  send(args: (string | number | Uint8Array)[]): Promise<RespValue> {
    if (this.ended !== undefined || this.closing) return Promise.reject(this.endedError());
    if (this.firstSent === 0) this.firstSent = Date.now();
    return new Promise<RespValue>((resolve, reject) => {
      this.waiting.push({ resolve, reject });
      this.write(encodeCommand(args));
    });
  }

  /** Commands issued in one tick go out in one write (pipelining costs one syscall). */
  private write(bytes: Uint8Array): void {
    this.outgoing.push(bytes);
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    queueMicrotask(() => this.flush());
  }

  private flush(): void {
    this.flushScheduled = false;
    if (this.outgoing.length === 0 || this.ended !== undefined) return;
    const bytes = this.outgoing.length === 1 ? this.outgoing[0]! : Buffer.concat(this.outgoing);
    this.outgoing = [];
    if (this.unsent.length > 0) {
      this.unsent.push(bytes);
      return;
    }
    this.writeSome(bytes);
  }

  /** Writes what the socket takes now; keeps the rest for drain. */
  private writeSome(bytes: Uint8Array): boolean {
    const written = this.socket.write(bytes);
    if (written < 0) return false;
    if (written < bytes.length) {
      this.unsent.unshift(bytes.subarray(written));
      return false;
    }
    return true;
  }

  private drained(): void {
    while (this.unsent.length > 0 && this.ended === undefined) {
      const bytes = this.unsent.shift()!;
      if (!this.writeSome(bytes)) return;
    }
  }

  private received(chunk: Uint8Array): void {
    readReplies(
      this.reader,
      chunk,
      this.target.label,
      this.socket,
      (error) => this.lost(error),
      (value) => {
        this.dispatch(value);
        return this.ended === undefined;
      },
    );
  }

  private dispatch(value: RespValue): void {
    if (this.onPush) {
      if (value instanceof RespPush) {
        this.onPush(value.items);
        return;
      }
      if (isMessageFrame(value)) {
        this.onPush(value);
        return;
      }
    }
    if (this.waitingHead >= this.waiting.length) {
      // Unasked-for: the server speaks first only to say why it closes.
      if (value instanceof RespErrorValue) this.lost(replyError(value));
      return;
    }
    this.answered = true;
    const waiting = this.waiting[this.waitingHead]!;
    this.waiting[this.waitingHead++] = undefined as unknown as Waiting;
    if (this.waitingHead > 1024 && this.waitingHead * 2 > this.waiting.length) {
      this.waiting.splice(0, this.waitingHead);
      this.waitingHead = 0;
    }
    if (value instanceof RespErrorValue) waiting.reject(replyError(value));
    else waiting.resolve(value);
  }

  private endedError(): BusError {
    return this.ended ?? new BusError("UNAVAILABLE", `connection to msgbus at ${this.target.label} is closed`);
  }

  /** The socket is gone: fail what waits, settle ended$. */
  private lost(error: unknown): void {
    if (this.ended !== undefined) return;
    if (this.closing) {
      this.ended = null;
    } else {
      const refusedAtOnce = !this.answered && this.firstSent > 0 && Date.now() - this.firstSent < 2000 && !this.target.tls;
      this.ended = lostConnection(this.target.label, error, refusedAtOnce);
    }
    const failure = this.endedError();
    for (let i = this.waitingHead; i < this.waiting.length; i++) this.waiting[i]!.reject(failure);
    this.waiting.length = 0;
    this.waitingHead = 0;
    this.outgoing = [];
    this.unsent = [];
    if (this.ended === null) this.endedResolve();
    else this.endedReject(this.ended);
  }

  /** Closes it; what is still waiting for a reply fails. */
  close(): void {
    if (this.ended !== undefined || this.closing) return;
    this.closing = true;
    this.socket.end();
    // end() reports close later; settle at once so close() is final for the caller.
    this.lost(undefined);
  }
}

const decoder = new TextDecoder();

function expectOk(reply: RespValue, what: string): void {
  if (reply !== "OK") throw new BusError("BAD_REQUEST", `unexpected reply to ${what}: ${String(reply)}`);
}

function expectInteger(reply: RespValue, what: string): number {
  if (typeof reply !== "number") throw new BusError("BAD_REQUEST", `unexpected reply to ${what}: ${String(reply)}`);
  return reply;
}

/** A STATS map (a flat array in RESP2) as an object: snake_case keys in camelCase, numbers as numbers (rates come as text). */
function fieldsOf(reply: RespValue, what: string): Record<string, string | number> {
  const items = reply;
  if (!Array.isArray(items) || items.length % 2 !== 0) throw new BusError("BAD_REQUEST", `unexpected reply to ${what}`);
  const fields: Record<string, string | number> = {};
  for (let i = 0; i < items.length; i += 2) {
    const key = textOf(items[i]).replace(/_([a-z])/g, (_, letter: string) => letter.toUpperCase());
    const value = items[i + 1];
    const text = typeof value === "number" ? value : textOf(value);
    fields[key] = key !== "name" && typeof text === "string" && text !== "" && Number.isFinite(Number(text)) ? Number(text) : text;
  }
  return fields;
}

function textOf(value: RespValue | undefined): string {
  if (value instanceof Uint8Array) return decoder.decode(value);
  return String(value);
}

const ms = (n: number) => `${Math.max(0, Math.round(n))}ms`;

class TcpClient implements Client {
  /** Consumer connections by topic: a consumer's acks go over its own connection. */
  private readonly consumers = new Map<string, RespConnection>();
  private readonly streams = new Set<RespConnection>();

  constructor(
    private readonly main: RespConnection,
    private readonly target: Target,
  ) {}

  async put(topic: string, payload: Uint8Array): Promise<WriteResult> {
    const id = expectInteger(await this.main.send(["PUT", topic, payload]), "PUT");
    return { id, topic };
  }

  async putMany(topic: string, payloads: Uint8Array[]): Promise<WriteResult[]> {
    const results: WriteResult[] = [];
    let start = 0;
    while (start < payloads.length) {
      let end = start;
      let bytes = 0;
      while (end < payloads.length && end - start < MAX_IN_FLIGHT && (bytes === 0 || bytes + payloads[end]!.length <= MAX_IN_FLIGHT_BYTES)) {
        bytes += payloads[end]!.length;
        end++;
      }
      const settled = await Promise.allSettled(payloads.slice(start, end).map((p) => this.put(topic, p)));
      for (const outcome of settled) {
        if (outcome.status === "rejected") throw outcome.reason;
        results.push(outcome.value);
      }
      start = end;
    }
    return results;
  }

  async get(topic: string, options: GetOptions = {}): Promise<ReceivedMessage | null> {
    const args: (string | number)[] = ["GET", topic];
    if (options.wait !== undefined) args.push("WAIT", ms(options.wait));
    if (options.lease !== undefined) args.push("LEASE", ms(Math.max(1, options.lease)));
    if (options.maxDeliveries !== undefined) args.push("MAXDELIVERIES", options.maxDeliveries);
    const reply = await this.main.send(args);
    if (reply === null) return null;
    if (!isMessageFrame(reply)) throw new BusError("BAD_REQUEST", "unexpected reply to GET");
    return readMessage(reply);
  }

  async ack(topic: string, id: number, delivery?: number): Promise<void> {
    const args: (string | number)[] = ["ACK", topic, id];
    if (delivery !== undefined) args.push("DELIVERY", delivery);
    expectOk(await this.connectionFor(topic).send(args), "ACK");
  }

  async nack(topic: string, id: number, options: { delay?: number; delivery?: number } = {}): Promise<void> {
    const args: (string | number)[] = ["NACK", topic, id];
    if (options.delay !== undefined && options.delay > 0) args.push("DELAY", ms(options.delay));
    if (options.delivery !== undefined) args.push("DELIVERY", options.delivery);
    expectOk(await this.connectionFor(topic).send(args), "NACK");
  }

  async touch(topic: string, id: number, options: { lease?: number; delivery?: number } = {}): Promise<number> {
    const args: (string | number)[] = ["TOUCH", topic, id];
    if (options.lease !== undefined) args.push("LEASE", ms(Math.max(1, options.lease)));
    if (options.delivery !== undefined) args.push("DELIVERY", options.delivery);
    return expectInteger(await this.connectionFor(topic).send(args), "TOUCH");
  }

  private connectionFor(topic: string): RespConnection {
    return this.consumers.get(topic) ?? this.main;
  }

  subscribe(topic: string, options: SubscribeOptions, onMessage: (m: ReceivedMessage) => void): Promise<Stream> {
    const args: (string | number)[] = ["SUB", topic];
    if (options.since !== undefined) args.push("SINCE", options.since);
    return this.stream(args, onMessage);
  }

  async consume(topic: string, options: ConsumeOptions, onMessage: (m: ReceivedMessage) => void): Promise<Stream> {
    const args: (string | number)[] = ["ON", topic];
    if (options.lease !== undefined) args.push("LEASE", ms(Math.max(1, options.lease)));
    if (options.prefetch !== undefined) args.push("PREFETCH", options.prefetch);
    if (options.maxDeliveries !== undefined) args.push("MAXDELIVERIES", options.maxDeliveries);
    return this.stream(args, onMessage, topic);
  }

  /** Opens a connection of its own for SUB or ON; message frames go to onMessage. */
  private async stream(args: (string | number)[], onMessage: (m: ReceivedMessage) => void, consumerTopic?: string): Promise<Stream> {
    const connection = await RespConnection.open(this.target);
    this.streams.add(connection);
    let failure: BusError | undefined;
    connection.onPush = (frame) => {
      if (failure) return;
      try {
        onMessage(readMessage(frame));
      } catch (error) {
        // The handler's own error ends the stream: done rejects with it.
        failure = error instanceof BusError ? error : new BusError("BAD_REQUEST", error instanceof Error ? error.message : String(error));
        connection.close();
      }
    };
    const forget = () => {
      this.streams.delete(connection);
      if (consumerTopic !== undefined && this.consumers.get(consumerTopic) === connection) this.consumers.delete(consumerTopic);
    };
    try {
      expectOk(await connection.send(args), String(args[0]));
    } catch (error) {
      forget();
      connection.close();
      throw error;
    }
    if (consumerTopic !== undefined) this.consumers.set(consumerTopic, connection);
    const done = connection.ended$.then(
      () => {
        forget();
        if (failure) throw failure;
      },
      (error: unknown) => {
        forget();
        throw failure ?? error;
      },
    );
    done.catch(() => {});
    const stream: Stream = { done, close: () => connection.close() };
    if (consumerTopic !== undefined) {
      stream.stop = async () => expectOk(await connection.send(["OFF", consumerTopic]), "OFF");
    }
    return stream;
  }

  async peek(topic: string, options: PeekOptions = {}): Promise<ReceivedMessage[]> {
    const args: (string | number)[] = ["PEEK", topic];
    if (options.count !== undefined) args.push("COUNT", options.count);
    if (options.since !== undefined) args.push("SINCE", options.since);
    const reply = await this.main.send(args);
    if (!Array.isArray(reply)) throw new BusError("BAD_REQUEST", "unexpected reply to PEEK");
    return reply.map((frame) => {
      if (!isMessageFrame(frame)) throw new BusError("BAD_REQUEST", "unexpected reply to PEEK");
      return readMessage(frame);
    });
  }

  /** TOPICS, then every topic's STATS pipelined; a topic deleted meanwhile is left out. */
  async topics(): Promise<TopicStats[]> {
    const names = await this.main.send(["TOPICS"]);
    if (!Array.isArray(names)) throw new BusError("BAD_REQUEST", "unexpected reply to TOPICS");
    const settled = await Promise.allSettled(names.map((name) => this.topicStats(textOf(name))));
    const found: TopicStats[] = [];
    for (const outcome of settled) {
      if (outcome.status === "fulfilled") found.push(outcome.value);
      else if (!(outcome.reason instanceof BusError && outcome.reason.code === "NOT_FOUND")) throw outcome.reason;
    }
    return found.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  }

  async topicStats(topic: string): Promise<TopicStats> {
    return fieldsOf(await this.main.send(["STATS", topic]), "STATS") as unknown as TopicStats;
  }

  async serverStats(): Promise<ServerStats> {
    return fieldsOf(await this.main.send(["STATS"]), "STATS") as unknown as ServerStats;
  }

  async purge(topic: string): Promise<number> {
    return expectInteger(await this.main.send(["PURGE", topic]), "PURGE");
  }

  async deleteTopic(topic: string): Promise<number> {
    return expectInteger(await this.main.send(["RM", topic]), "RM");
  }

  /** PING timed; HELLO (which keeps the protocol when given none) says the version. */
  async ping(): Promise<PingResult> {
    const start = performance.now();
    const pong = await this.main.send(["PING"]);
    const elapsed = performance.now() - start;
    if (pong !== "PONG") throw new BusError("BAD_REQUEST", `unexpected reply to PING: ${String(pong)}`);
    let version: string | undefined;
    try {
      const info = fieldsOf(await this.main.send(["HELLO"]), "HELLO");
      version = info.server === "msgbus" ? String(info.version) : undefined;
    } catch (error) {
      if (error instanceof BusError && error.code === "UNAVAILABLE") throw error;
    }
    return { ms: elapsed, version };
  }

  async maxMessageSize(): Promise<number | undefined> {
    try {
      return maxMessageSizeOf(await this.main.send(MAX_MESSAGE_SIZE_COMMAND));
    } catch (error) {
      if (error instanceof BusError && error.code === "UNAVAILABLE") throw error;
      return undefined; // an older server, or a token without the right: the caller's default applies
    }
  }

  async close(): Promise<void> {
    for (const connection of this.streams) connection.close();
    this.streams.clear();
    this.consumers.clear();
    this.main.close();
  }
}

/** Connects to msgbus at tcp://host:port (tls://host:port for TLS) and authenticates when given a token. */
export async function connectTcp(url: URL, options: ConnectOptions = {}): Promise<Client> {
  const target: Target = {
    ...tcpAddress(url),
    ...(options.token ? { token: options.token } : {}),
    ...(options.tls ? { tlsOptions: options.tls } : {}),
  };
  const main = await RespConnection.open(target);
  return new TcpClient(main, target);
}
