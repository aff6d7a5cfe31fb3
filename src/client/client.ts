// The one Client interface the commands use; tcp, http and ws implementations sit behind it.
// connect() picks one from the URL scheme.

import { BusError } from "../core/errors.ts";
import type { TopicStats } from "../protocol/topic-stats.ts";
import type { TlsOptions } from "./tls.ts";

export type { TopicStats };

export { bunTls, certificateHint, type TlsOptions } from "./tls.ts";

/** A message as a client receives it. */
export interface ReceivedMessage {
  id: number;
  topic: string;
  created: number;
  deliveries: number;
  payload: Uint8Array;
  /** For a dead-letter message: where it came from and how often it was delivered there. */
  origin?: { topic: string; id: number; deliveries: number };
}

export interface WriteResult {
  id: number;
  topic: string;
}

export interface GetOptions {
  /** Wait up to this many ms for a message; 0 waits forever; undefined does not wait. */
  wait?: number;
  /** Lease time in ms: at-least-once (ack or nack it); undefined: at-most-once. */
  lease?: number;
  maxDeliveries?: number;
}

export interface ConsumeOptions {
  /** Lease time in ms (server default when undefined). */
  lease?: number;
  /** How many messages the server may hand this consumer before it acks one. */
  prefetch?: number;
  maxDeliveries?: number;
}

export interface SubscribeOptions {
  /** Replay still-queued messages with a greater id first, then live. */
  since?: number;
}

export interface PeekOptions {
  /** At most this many messages (1..1000; the server's default: 10). */
  count?: number;
  /** Only messages with a greater id. */
  since?: number;
}

/** The bus's totals, as `STATS` reports them. */
export interface ServerStats {
  messagesIn: number;
  messagesOut: number;
  dropped: number;
  expired: number;
  redelivered: number;
  deadLettered: number;
  acked: number;
  bytes: number;
  maxMemory: number;
  topics: number;
  connections: number;
  /** Seconds since the server started. */
  uptime: number;
}

export interface PingResult {
  /** The round trip, in ms. */
  ms: number;
  /** The server's version ("dev" for a build without one); undefined when it does not say. */
  version: string | undefined;
}

/** A running subscription or consumer stream. */
export interface Stream {
  /** Resolves when the stream ends: closed by us (resolves) or by the server/network (rejects with a BusError). */
  readonly done: Promise<void>;
  /**
   * A consumer only: asks for no more messages while keeping the ones already received, so they
   * can still be acked or nacked before close() (which gives back whatever is left).
   */
  stop?(): Promise<void>;
  close(): void;
}

export interface Client {
  /** Writes one message (put and pub are the same write). */
  put(topic: string, payload: Uint8Array): Promise<WriteResult>;
  /** Writes many messages in order, pipelined; resolves when all are acknowledged. */
  putMany(topic: string, payloads: Uint8Array[]): Promise<WriteResult[]>;
  /** Takes one message, or null when there is none (after waiting, if asked to). */
  get(topic: string, options?: GetOptions): Promise<ReceivedMessage | null>;
  ack(topic: string, id: number, delivery?: number): Promise<void>;
  nack(topic: string, id: number, options?: { delay?: number; delivery?: number }): Promise<void>;
  /** Renews a lease still being worked on: it runs `lease` ms from now (default: its own length). Resolves with the new expiry (server ms). */
  touch(topic: string, id: number, options?: { lease?: number; delivery?: number }): Promise<number>;
  /** Every message written from now on (fan-out, at-most-once). */
  subscribe(topic: string, options: SubscribeOptions, onMessage: (m: ReceivedMessage) => void): Promise<Stream>;
  /** Competing consumer with leases: ack or nack each message through this client. */
  consume(topic: string, options: ConsumeOptions, onMessage: (m: ReceivedMessage) => void): Promise<Stream>;
  /** Up to `count` queued messages in id order, without taking them. */
  peek(topic: string, options?: PeekOptions): Promise<ReceivedMessage[]>;
  /** Every topic's counters, by name. */
  topics(): Promise<TopicStats[]>;
  /** One topic's counters; NOT_FOUND when there is no such topic. */
  topicStats(topic: string): Promise<TopicStats>;
  /** The bus's totals. */
  serverStats(): Promise<ServerStats>;
  /** Drops the queued (and delayed) messages of a topic; resolves with how many. */
  purge(topic: string): Promise<number>;
  /** Deletes a topic; resolves with how many messages it dropped. NOT_FOUND when there is no such topic. */
  deleteTopic(topic: string): Promise<number>;
  /** One round trip, timed, and the server's version. */
  ping(): Promise<PingResult>;
  /** The server's largest payload in bytes, when it says (RESP CONFIG GET proto-max-bulk-len, HTTP /_/health). */
  maxMessageSize(): Promise<number | undefined>;
  close(): Promise<void>;
}

export interface ConnectOptions {
  token?: string;
  /** For tls://, https://, wss://: extra certificates to trust (PEM), or no check at all. */
  tls?: TlsOptions;
}

/** Connects to `url` (tcp://, tls://, http://, https://, ws://, wss://). */
export async function connect(url: string, options: ConnectOptions = {}): Promise<Client> {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new BusError("BAD_REQUEST", `not a URL: "${url}" (expected tcp://host:port, http://host:port or ws://host:port)`);
  }
  switch (parsed.protocol) {
    case "tcp:":
    case "tls:": {
      const { connectTcp } = await import("./tcp.ts");
      return connectTcp(parsed, options);
    }
    case "http:":
    case "https:": {
      const { connectHttp } = await import("./http.ts");
      return connectHttp(parsed, options);
    }
    case "ws:":
    case "wss:": {
      const { connectWs } = await import("./ws.ts");
      return connectWs(parsed, options);
    }
    default:
      throw new BusError("BAD_REQUEST", `unsupported URL scheme "${parsed.protocol}" (use tcp://, tls://, http(s):// or ws(s)://)`);
  }
}
