// The HTTP client over fetch: writes and takes are requests, subscribe is an SSE stream (?json,
// so payloads arrive exact), consume is a loop of long polls with leases. Works through a TLS
// reverse proxy, with or without a path prefix (https://host/msgbus/).

import { BusError, isErrorCode, type ErrorCode } from "../core/errors.ts";
import { codeOfHttpStatus } from "../protocol/http-status.ts";
import { decodeEnvelope } from "../protocol/envelope.ts";
import { SseParser } from "../protocol/sse.ts";
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

/** An error status (HTTP, or 4000 + status as a WebSocket close code) as a BusError. */
export function statusError(status: number, message: string | undefined, code?: string): BusError {
  // The body's code first: several codes share a status.
  const known: ErrorCode = isErrorCode(code) ? code : codeOfHttpStatus(status);
  if (known === "UNAUTHORIZED" && !message) return new BusError(known, "the server requires a token (set --token or MSGBUS_TOKEN)");
  return new BusError(known, message || `the server answered ${status}`);
}

/** "250ms": every duration goes to the server in ms, so nothing is rounded. */
function ms(value: number): string {
  return `${Math.max(0, Math.round(value))}ms`;
}

interface InFlight {
  timer: ReturnType<typeof setTimeout>;
  topic: string;
  id: number;
  delivery: number;
  consumer: Consumer;
  lease: number;
}

export class HttpClient implements Client {
  private readonly base: string;
  private readonly headers: Record<string, string>;
  private readonly controllers = new Set<AbortController>();
  /** Leased messages handed to consume() callbacks and not yet acked or nacked, by topic and id. */
  private readonly held = new Map<string, InFlight>();
  private readonly consumers = new Set<Consumer>();
  private closed = false;
  private readonly tls: ReturnType<typeof bunTls>;

  constructor(url: URL, token: string | undefined, tls?: TlsOptions) {
    this.base = `${url.protocol}//${url.host}${url.pathname.replace(/\/+$/, "")}`;
    this.headers = token ? { authorization: `Bearer ${token}` } : {};
    this.tls = bunTls(tls);
  }

  /** One request; network failures and error replies become BusErrors. */
  async request(method: string, path: string, init: { body?: Uint8Array; headers?: Record<string, string>; signal?: AbortSignal } = {}): Promise<Response> {
    if (this.closed) throw new BusError("UNAVAILABLE", "the client is closed");
    let response: Response;
    try {
      response = await fetch(this.base + path, {
        method,
        body: init.body,
        headers: { ...this.headers, ...init.headers },
        signal: init.signal,
        // Long polls and streams last as long as they need to.
        timeout: false,
        ...(this.tls ? { tls: this.tls } : {}),
      } as RequestInit);
    } catch (error) {
      if (init.signal?.aborted) throw new BusError("UNAVAILABLE", "request cancelled");
      const reason =
        error instanceof Error ? `${error.message}${(error as { code?: string }).code ? ` (${(error as { code?: string }).code})` : ""}` : String(error);
      throw new BusError("UNAVAILABLE", `cannot reach msgbus at ${this.base}: ${certificateHint(reason)}`);
    }
    if (response.status >= 400) throw await errorOf(response);
    return response;
  }

  async put(topic: string, payload: Uint8Array): Promise<WriteResult> {
    const response = await this.request("POST", `/${encodeURIComponent(topic)}`, { body: payload, headers: { "content-type": "application/octet-stream" } });
    const reply = (await response.json()) as { id: number; topic: string };
    return { id: reply.id, topic: reply.topic };
  }

  /** One request after the other: concurrent requests could arrive out of order. */
  async putMany(topic: string, payloads: Uint8Array[]): Promise<WriteResult[]> {
    const results: WriteResult[] = [];
    for (const payload of payloads) results.push(await this.put(topic, payload));
    return results;
  }

  async get(topic: string, options: GetOptions = {}): Promise<ReceivedMessage | null> {
    const query: string[] = [];
    if (options.wait !== undefined) query.push(`wait=${ms(options.wait)}`);
    if (options.lease !== undefined) query.push(`lease=${ms(Math.max(1, options.lease))}`);
    if (options.maxDeliveries !== undefined) query.push(`max-deliveries=${options.maxDeliveries}`);
    return this.take(topic, query);
  }

  /** GET /{topic} with these query parameters: the message from its raw body and headers. */
  async take(topic: string, query: string[], signal?: AbortSignal): Promise<ReceivedMessage | null> {
    const path = `/${encodeURIComponent(topic)}${query.length ? "?" + query.join("&") : ""}`;
    const response = await this.request("GET", path, { signal });
    if (response.status === 204) return null;
    const payload = new Uint8Array(await response.arrayBuffer());
    const h = response.headers;
    const originTopic = h.get("msgbus-origin-topic");
    return {
      id: Number(h.get("msgbus-id")),
      topic: h.get("msgbus-topic") ?? topic,
      created: Number(h.get("msgbus-created")),
      deliveries: Number(h.get("msgbus-deliveries")),
      payload,
      ...(originTopic
        ? { origin: { topic: originTopic, id: Number(h.get("msgbus-origin-id")), deliveries: Number(h.get("msgbus-origin-deliveries") ?? 0) } }
        : {}),
    };
  }

  async ack(topic: string, id: number, delivery?: number): Promise<void> {
    this.release(topic, id);
    await this.request("POST", `/${encodeURIComponent(topic)}/${id}/ack${delivery !== undefined ? `?delivery=${delivery}` : ""}`);
  }

  async nack(topic: string, id: number, options: { delay?: number; delivery?: number } = {}): Promise<void> {
    this.release(topic, id);
    const query: string[] = [];
    if (options.delay !== undefined && options.delay > 0) query.push(`delay=${ms(options.delay)}`);
    if (options.delivery !== undefined) query.push(`delivery=${options.delivery}`);
    await this.request("POST", `/${encodeURIComponent(topic)}/${id}/nack${query.length ? "?" + query.join("&") : ""}`);
  }

  async touch(topic: string, id: number, options: { lease?: number; delivery?: number } = {}): Promise<number> {
    const query: string[] = [];
    if (options.lease !== undefined) query.push(`lease=${ms(Math.max(1, options.lease))}`);
    if (options.delivery !== undefined) query.push(`delivery=${options.delivery}`);
    const response = await this.request("POST", `/${encodeURIComponent(topic)}/${id}/touch${query.length ? "?" + query.join("&") : ""}`);
    const reply = (await response.json()) as { leaseExpires: number };
    this.renewHold(topic, id, options.lease);
    return reply.leaseExpires;
  }

  /** SSE with ?json: resolves once the server has subscribed (its first bytes arrived). */
  async subscribe(topic: string, options: SubscribeOptions, onMessage: (m: ReceivedMessage) => void): Promise<Stream> {
    const controller = new AbortController();
    this.controllers.add(controller);
    const since = options.since !== undefined ? `&since=${options.since}` : "";
    let response: Response;
    try {
      response = await this.request("GET", `/${encodeURIComponent(topic)}?sse&json${since}`, {
        headers: { accept: "text/event-stream" },
        signal: controller.signal,
      });
    } catch (error) {
      this.controllers.delete(controller);
      throw error;
    }
    const reader = response.body!.getReader();
    const done = (async () => {
      const parser = new SseParser();
      try {
        for (;;) {
          const { done: ended, value } = await reader.read();
          if (ended) break;
          for (const event of parser.feed(value)) {
            if (event.type === "message") onMessage(decodeEnvelope(JSON.parse(event.data)) as ReceivedMessage);
          }
        }
      } catch (error) {
        if (controller.signal.aborted) return;
        if (error instanceof BusError) throw error;
        throw new BusError("UNAVAILABLE", `subscription to ${topic} ended: ${error instanceof Error ? error.message : String(error)}`);
      } finally {
        this.controllers.delete(controller);
        controller.abort();
      }
      if (!controller.signal.aborted) throw new BusError("UNAVAILABLE", `the server ended the subscription to ${topic}`);
    })();
    done.catch(() => {});
    return { done, close: () => controller.abort() };
  }

  /** Long polls with a lease, at most `prefetch` messages held at once; close() returns those held. */
  async consume(topic: string, options: ConsumeOptions, onMessage: (m: ReceivedMessage) => void): Promise<Stream> {
    const consumer = new Consumer(this, topic, options, onMessage);
    this.consumers.add(consumer);
    consumer.done.finally(() => this.consumers.delete(consumer)).catch(() => {});
    consumer.fill();
    return { done: consumer.done, close: () => consumer.close() };
  }

  /** A message a consumer took: held until acked, nacked or its lease runs out. */
  hold(consumer: Consumer, message: ReceivedMessage, lease: number): void {
    const key = `${message.topic}\u0000${message.id}`;
    const timer = setTimeout(() => this.release(message.topic, message.id), lease);
    this.held.set(key, { timer, topic: message.topic, id: message.id, delivery: message.deliveries, consumer, lease });
  }

  /** A renewed lease keeps its consumer slot for another lease time. */
  private renewHold(topic: string, id: number, lease: number | undefined): void {
    const entry = this.held.get(`${topic}\u0000${id}`);
    if (!entry) return;
    clearTimeout(entry.timer);
    entry.timer = setTimeout(() => this.release(topic, id), lease ?? entry.lease);
  }

  private release(topic: string, id: number): InFlight | undefined {
    const key = `${topic}\u0000${id}`;
    const entry = this.held.get(key);
    if (!entry) return undefined;
    clearTimeout(entry.timer);
    this.held.delete(key);
    entry.consumer.released();
    return entry;
  }

  /** Gives back (nack) what a closing consumer still holds, as a closing TCP consumer does. */
  returnHeld(consumer: Consumer): Promise<unknown> {
    const returns: Promise<void>[] = [];
    for (const entry of [...this.held.values()]) {
      if (entry.consumer !== consumer) continue;
      returns.push(this.nack(entry.topic, entry.id, { delivery: entry.delivery }).catch(() => {}));
    }
    return Promise.all(returns);
  }

  track(controller: AbortController): () => void {
    this.controllers.add(controller);
    return () => this.controllers.delete(controller);
  }

  async peek(topic: string, options: PeekOptions = {}): Promise<ReceivedMessage[]> {
    const query = ["peek"];
    if (options.count !== undefined) query.push(`n=${options.count}`);
    if (options.since !== undefined) query.push(`since=${options.since}`);
    const response = await this.request("GET", `/${encodeURIComponent(topic)}?${query.join("&")}`);
    return ((await response.json()) as unknown[]).map((envelope) => decodeEnvelope(envelope) as ReceivedMessage);
  }

  async topics(): Promise<TopicStats[]> {
    return (await this.topicsDocument()).topics;
  }

  async topicStats(topic: string): Promise<TopicStats> {
    const response = await this.request("GET", `/_/topics/${encodeURIComponent(topic)}`);
    return (await response.json()) as TopicStats;
  }

  /** The totals of /_/topics, with its connections summed as STATS counts them. */
  async serverStats(): Promise<ServerStats> {
    const document = await this.topicsDocument();
    const connections = Object.values(document.connections).reduce((sum, n) => sum + n, 0);
    return { ...document.totals, connections, uptime: document.uptime };
  }

  private async topicsDocument(): Promise<{
    topics: TopicStats[];
    totals: Omit<ServerStats, "connections" | "uptime">;
    connections: Record<string, number>;
    uptime: number;
  }> {
    const response = await this.request("GET", "/_/topics");
    return (await response.json()) as Awaited<ReturnType<HttpClient["topicsDocument"]>>;
  }

  async purge(topic: string): Promise<number> {
    const response = await this.request("DELETE", `/${encodeURIComponent(topic)}?purge`);
    return ((await response.json()) as { purged: number }).purged;
  }

  async deleteTopic(topic: string): Promise<number> {
    const response = await this.request("DELETE", `/${encodeURIComponent(topic)}`);
    return ((await response.json()) as { dropped: number }).dropped;
  }

  /** GET /_/health timed (no token needed); its msgbus-version header says the version. */
  async ping(): Promise<PingResult> {
    const start = performance.now();
    const response = await this.request("GET", "/_/health");
    await response.arrayBuffer();
    return { ms: performance.now() - start, version: response.headers.get("msgbus-version") ?? undefined };
  }

  async maxMessageSize(): Promise<number | undefined> {
    try {
      const response = await this.request("GET", "/_/health");
      await response.body?.cancel();
      const n = Number(response.headers.get("msgbus-max-message-size") ?? NaN);
      return Number.isSafeInteger(n) && n >= 0 ? n : undefined;
    } catch (error) {
      if (error instanceof BusError && error.code === "UNAVAILABLE") throw error;
      return undefined;
    }
  }

  async close(): Promise<void> {
    await Promise.all([...this.consumers].map((c) => c.close()));
    for (const controller of this.controllers) controller.abort();
    this.controllers.clear();
    this.closed = true;
  }
}

/** consume() over HTTP: keeps `prefetch` long polls or held messages going. */
class Consumer {
  readonly done: Promise<void>;
  private finish!: (error?: BusError) => void;
  private polling = 0;
  private holding = 0;
  private stopped = false;
  private readonly controller = new AbortController();
  private readonly untrack: () => void;
  private readonly prefetch: number;
  private readonly lease: number;
  /** Bounded waits: a proxy between us and the server may cut a request that stays silent. */
  private readonly query: string[];

  constructor(
    private readonly client: HttpClient,
    private readonly topic: string,
    options: ConsumeOptions,
    private readonly onMessage: (m: ReceivedMessage) => void,
  ) {
    this.prefetch = Math.max(1, options.prefetch ?? 1);
    // Without a lease time the server's default applies; ours only frees the slot of a message
    // never acked, so a guess is enough.
    this.lease = Math.max(1, options.lease ?? 30000);
    this.query = ["wait=25s", options.lease !== undefined ? `lease=${ms(this.lease)}` : "lease"];
    if (options.maxDeliveries !== undefined) this.query.push(`max-deliveries=${options.maxDeliveries}`);
    this.untrack = client.track(this.controller);
    this.done = new Promise<void>((resolve, reject) => {
      this.finish = (error) => (error ? reject(error) : resolve());
    });
    this.done.catch(() => {});
  }

  fill(): void {
    while (!this.stopped && this.polling + this.holding < this.prefetch) this.poll();
  }

  private async poll(): Promise<void> {
    this.polling++;
    try {
      const message = await this.client.take(this.topic, this.query, this.controller.signal);
      this.polling--;
      if (message) {
        this.holding++;
        this.client.hold(this, message, this.lease);
        if (this.stopped) {
          await this.client.nack(this.topic, message.id, { delivery: message.deliveries }).catch(() => {});
          return;
        }
        this.onMessage(message);
      }
      this.fill();
    } catch (error) {
      this.polling--;
      if (this.stopped) return;
      await this.close(error instanceof BusError ? error : new BusError("BAD_REQUEST", error instanceof Error ? error.message : String(error)));
    }
  }

  released(): void {
    this.holding--;
    this.fill();
  }

  /** Stops polling and gives back what it holds; `failure` makes done reject with it. */
  async close(failure?: BusError): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    this.controller.abort();
    this.untrack();
    await this.client.returnHeld(this);
    this.finish(failure);
  }
}

async function errorOf(response: Response): Promise<BusError> {
  let body: { error?: string; code?: string } = {};
  try {
    body = (await response.json()) as typeof body;
  } catch {
    // Not ours (a proxy's page): the status decides.
  }
  return statusError(response.status, body.error, body.code);
}

/** Connects to msgbus over HTTP(S): http://host:6553, or https://proxy/prefix. */
export async function connectHttp(url: URL, options: ConnectOptions = {}): Promise<Client> {
  return new HttpClient(url, options.token, options.tls);
}
