// The WebSocket client: subscribe and put over WebSockets in json mode (one socket per
// subscription, one publishing socket per topic, its writes acknowledged in order); get, ack,
// nack and consume go over HTTP to the same host.

import { BusError } from "../core/errors.ts";
import { checkTopicName } from "../core/topic-name.ts";
import { decodeEnvelope } from "../protocol/envelope.ts";
import { bunTls, type TlsOptions } from "./tls.ts";
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
import { HttpClient, statusError } from "./http.ts";

const OPEN_TIMEOUT_MS = 10000;

/** Why a socket closed, as the error its stream ends with. */
function closeError(code: number, reason: string, topic: string): BusError {
  if (code >= 4000 && code < 5000) return statusError(code - 4000, reason);
  if (code === 1009) return new BusError("TOO_LARGE", reason || "message too large for the server");
  if (code === 1001) return new BusError("UNAVAILABLE", reason || "server shutting down");
  if (code === 1006) return new BusError("UNAVAILABLE", `connection for ${topic} lost (the server may have cut off a slow consumer)`);
  return new BusError("UNAVAILABLE", `connection for ${topic} closed (${code}${reason ? `: ${reason}` : ""})`);
}

interface Frame {
  type?: string;
  id?: number;
  topic?: string;
  error?: string;
  code?: string;
}

class WsClient implements Client {
  private readonly base: string;
  private readonly http: HttpClient;
  private readonly publishers = new Map<string, Promise<Publisher>>();
  private readonly sockets = new Set<WebSocket>();

  private readonly tls: ReturnType<typeof bunTls>;

  constructor(
    url: URL,
    private readonly token: string | undefined,
    tls?: TlsOptions,
  ) {
    this.tls = bunTls(tls);
    this.base = `${url.protocol}//${url.host}${url.pathname.replace(/\/+$/, "")}`;
    const httpUrl = new URL(url.href);
    httpUrl.protocol = url.protocol === "wss:" ? "https:" : "http:";
    this.http = new HttpClient(httpUrl, token, tls);
  }

  /** Opens `/{topic}?query` and waits for the handshake; a refused one is explained over HTTP. */
  async open(topic: string, query: string): Promise<WebSocket> {
    const url = `${this.base}/${encodeURIComponent(topic)}?${query}`;
    const options = {
      ...(this.token ? { headers: { authorization: `Bearer ${this.token}` } } : {}),
      ...(this.tls ? { tls: this.tls } : {}),
    };
    const ws = new WebSocket(url, options as unknown as string[]);
    ws.binaryType = "arraybuffer";
    const opened = await new Promise<boolean>((resolve) => {
      const timer = setTimeout(() => resolve(false), OPEN_TIMEOUT_MS);
      const settle = (opened: boolean) => {
        clearTimeout(timer);
        resolve(opened);
      };
      ws.addEventListener("open", () => settle(true), { once: true });
      ws.addEventListener("close", () => settle(false), { once: true });
    });
    if (!opened) {
      ws.close();
      throw await this.whyRefused(topic);
    }
    this.sockets.add(ws);
    ws.addEventListener("close", () => this.sockets.delete(ws));
    return ws;
  }

  /** The WebSocket API hides the status of a refused upgrade: ask what could be wrong over HTTP. */
  private async whyRefused(topic: string): Promise<BusError> {
    try {
      checkTopicName(topic);
      await this.http.request("GET", `/_/health`);
      await this.http.request("GET", `/_/topics/${encodeURIComponent(topic)}`);
    } catch (error) {
      if (error instanceof BusError && error.code !== "NOT_FOUND") return error;
    }
    return new BusError("UNAVAILABLE", `the server refused a WebSocket on ${this.base}/${topic}`);
  }

  private publisher(topic: string): Promise<Publisher> {
    let publisher = this.publishers.get(topic);
    if (!publisher) {
      publisher = this.open(topic, "json&publish-only").then((ws) => new Publisher(ws, topic, () => this.publishers.delete(topic)));
      publisher.catch(() => this.publishers.delete(topic));
      this.publishers.set(topic, publisher);
    }
    return publisher;
  }

  async put(topic: string, payload: Uint8Array): Promise<WriteResult> {
    return (await this.publisher(topic)).send(payload);
  }

  async putMany(topic: string, payloads: Uint8Array[]): Promise<WriteResult[]> {
    const publisher = await this.publisher(topic);
    return Promise.all(payloads.map((p) => publisher.send(p)));
  }

  get(topic: string, options?: GetOptions): Promise<ReceivedMessage | null> {
    return this.http.get(topic, options);
  }

  ack(topic: string, id: number, delivery?: number): Promise<void> {
    return this.http.ack(topic, id, delivery);
  }

  nack(topic: string, id: number, options?: { delay?: number; delivery?: number }): Promise<void> {
    return this.http.nack(topic, id, options);
  }

  touch(topic: string, id: number, options?: { lease?: number; delivery?: number }): Promise<number> {
    return this.http.touch(topic, id, options);
  }

  consume(topic: string, options: ConsumeOptions, onMessage: (m: ReceivedMessage) => void): Promise<Stream> {
    return this.http.consume(topic, options, onMessage);
  }

  async subscribe(topic: string, options: SubscribeOptions, onMessage: (m: ReceivedMessage) => void): Promise<Stream> {
    const ws = await this.open(topic, `json${options.since !== undefined ? `&since=${options.since}` : ""}`);
    let closing = false;
    let failure: BusError | undefined;
    const done = new Promise<void>((resolve, reject) => {
      ws.addEventListener("message", (event) => {
        if (failure || typeof event.data !== "string") return;
        try {
          const frame = JSON.parse(event.data) as Frame;
          if (frame.type === "message") onMessage(decodeEnvelope(frame) as ReceivedMessage);
          else if (frame.type === "error") failure = statusError(0, frame.error, frame.code);
        } catch (error) {
          // The handler's own error ends the stream: done rejects with it.
          failure = error instanceof BusError ? error : new BusError("BAD_REQUEST", error instanceof Error ? error.message : String(error));
        }
        if (failure) ws.close();
      });
      ws.addEventListener("close", (event) => {
        if (failure) reject(failure);
        else if (closing) resolve();
        else reject(closeError(event.code, event.reason, topic));
      });
    });
    done.catch(() => {});
    return {
      done,
      close: () => {
        closing = true;
        ws.close(1000);
      },
    };
  }

  peek(topic: string, options?: PeekOptions): Promise<ReceivedMessage[]> {
    return this.http.peek(topic, options);
  }

  topics(): Promise<TopicStats[]> {
    return this.http.topics();
  }

  topicStats(topic: string): Promise<TopicStats> {
    return this.http.topicStats(topic);
  }

  serverStats(): Promise<ServerStats> {
    return this.http.serverStats();
  }

  purge(topic: string): Promise<number> {
    return this.http.purge(topic);
  }

  deleteTopic(topic: string): Promise<number> {
    return this.http.deleteTopic(topic);
  }

  ping(): Promise<PingResult> {
    return this.http.ping();
  }

  maxMessageSize(): Promise<number | undefined> {
    return this.http.maxMessageSize();
  }

  async close(): Promise<void> {
    const settled = [...this.publishers.values()].map((p) =>
      p.then(
        (publisher) => publisher.close(),
        () => {},
      ),
    );
    await Promise.all(settled);
    for (const ws of this.sockets) ws.close(1000);
    await this.http.close();
  }
}

/** A publishing socket (?json&publish-only): the server answers each frame in order. */
class Publisher {
  private readonly waiting: { resolve(r: WriteResult): void; reject(e: BusError): void }[] = [];
  /** close() waiting for the last answers. */
  private readonly idle: (() => void)[] = [];
  private ended: BusError | undefined;

  constructor(
    private readonly ws: WebSocket,
    private readonly topic: string,
    forget: () => void,
  ) {
    ws.addEventListener("message", (event) => {
      if (typeof event.data !== "string") return;
      const frame = JSON.parse(event.data) as Frame;
      const next = this.waiting.shift();
      if (!next) return;
      if (frame.type === "published") next.resolve({ id: frame.id!, topic: frame.topic ?? topic });
      else next.reject(statusError(0, frame.error, frame.code));
      if (this.waiting.length === 0) for (const resolve of this.idle.splice(0)) resolve();
    });
    ws.addEventListener("close", (event) => {
      forget();
      this.ended = closeError(event.code, event.reason, topic);
      for (const w of this.waiting.splice(0)) w.reject(this.ended);
      for (const resolve of this.idle.splice(0)) resolve();
    });
  }

  send(payload: Uint8Array): Promise<WriteResult> {
    if (this.ended) return Promise.reject(this.ended);
    return new Promise<WriteResult>((resolve, reject) => {
      this.waiting.push({ resolve, reject });
      this.ws.send(payload);
    });
  }

  /** Closes once every write sent has its answer. */
  async close(): Promise<void> {
    if (this.waiting.length > 0 && !this.ended) await new Promise<void>((resolve) => this.idle.push(resolve));
    this.ws.close(1000);
  }
}

/** Connects to msgbus over WebSocket: ws://host:6553, or wss://proxy/prefix. */
export async function connectWs(url: URL, options: ConnectOptions = {}): Promise<Client> {
  return new WsClient(url, options.token, options.tls);
}
