// The HTTP transport on Bun.serve: topics at the root (write, take, lease, purge, delete), SSE and
// WebSocket on GET /{topic}, server endpoints under /_/. Requests translate to the bus here;
// SSE streams live in sse.ts, sockets in ws.ts, statuses in http-errors.ts, CORS in cors.ts.

import type { Server } from "bun";
import { isUtf8 } from "node:buffer";
import { DEFAULT_PEEK } from "../core/bus.ts";
import { then } from "../core/engine.ts";
import { checkDelay, checkLease, checkWait } from "../core/durations.ts";
import { BusError, isBusError } from "../core/errors.ts";
import type { Message } from "../core/message.ts";
import type { Consumer } from "../core/topic.ts";
import { checkTopicName } from "../core/topic-name.ts";
import { setLongTimeout } from "../long-timeout.ts";
import { toEnvelope } from "../protocol/envelope.ts";
import type { Need, Principal } from "./auth.ts";
import { VERSION } from "./command-helpers.ts";
import type { ServerContext } from "./context.ts";
import { consoleResponse, wantsConsole } from "./console.ts";
import { type Cors, corsFor } from "./cors.ts";
import { errorResponse, json, methodNotAllowed } from "./http-errors.ts";
import { Query, readBody, requestTarget } from "./http-request.ts";
import { prometheus, topicJson, topicsJson } from "./metrics.ts";
import { SseHub } from "./sse.ts";
import { type WsData, WsHub } from "./ws.ts";

export interface HttpListener {
  port: number;
  /** Stops accepting; long polls get 503, SSE streams end, WebSockets close with 1001. */
  stop(): Promise<void>;
}

const ROUTES_HINT =
  "topics are /{topic}, leases /{topic}/{id}/ack, /{topic}/{id}/nack and /{topic}/{id}/touch, server endpoints /_/topics, /_/health, /_/metrics";
/** OPTIONS's Allow: the methods of the route `path` names; `*` (and `/`) the server's. */
function allowedMethods(path: string): string {
  const parts = path.split("/");
  if (parts[1] === "_") return "GET, HEAD, OPTIONS";
  if (parts.length === 4) return "POST, OPTIONS";
  if (parts.length === 2 && parts[1] !== "") return "GET, POST, PUT, DELETE, OPTIONS";
  return "GET, HEAD, POST, PUT, DELETE, OPTIONS";
}

export function startHttp(ctx: ServerContext): HttpListener {
  const { config } = ctx;
  const cors = corsFor(config.allowOrigin);
  const routes = new HttpRoutes(ctx, cors);
  const tls = config.tlsCert && config.tlsKey ? { cert: Bun.file(config.tlsCert), key: Bun.file(config.tlsKey) } : undefined;
  const server = Bun.serve<WsData>({
    hostname: config.host,
    port: config.httpPort,
    ...(tls ? { tls } : {}),
    development: false,
    idleTimeout: 30,
    // Writes refuse oversized bodies themselves (Content-Length first, chunked bodies counted) so
    // that every refusal is our JSON 413; Bun's own cap only backs that up for bodies nobody reads.
    maxRequestBodySize: Math.max(config.maxMessageSize + 1, 1 << 30),
    fetch: (req, srv) => routes.handle(req, srv),
    websocket: routes.ws.handler(),
    error: (error) => errorResponse(error, cors.headers),
  });
  return {
    port: server.port!,
    async stop() {
      const closed = server.stop(false);
      routes.shutdown();
      let timer: ReturnType<typeof setTimeout> | undefined;
      const late = new Promise<void>((resolve) => (timer = setTimeout(resolve, 3000)));
      await Promise.race([closed, late]);
      clearTimeout(timer);
      await server.stop(true);
    },
  };
}

class HttpRoutes {
  readonly ws: WsHub;
  private readonly sse: SseHub;
  /** Long polls in flight: shutdown answers each with 503. */
  private readonly polls = new Set<() => void>();

  constructor(
    private readonly ctx: ServerContext,
    private readonly cors: Cors,
  ) {
    this.ws = new WsHub(ctx);
    this.sse = new SseHub(ctx, cors.headers);
  }

  /** A JSON reply with this server's CORS headers. */
  private jsonReply(body: unknown, status = 200): Response {
    return json(body, status, this.cors.headers);
  }

  /** Not async: a request answered at once costs no promise (writes are the hot path). */
  handle(req: Request, server: Server<WsData>): Response | undefined | Promise<Response | undefined> {
    const stats = this.ctx.stats;
    stats.opened("http");
    let answer: Response | undefined | Promise<Response | undefined>;
    try {
      answer = this.route(req, server);
    } catch (error) {
      stats.closed("http");
      return this.failed(error);
    }
    if (!(answer instanceof Promise)) {
      stats.closed("http");
      return answer;
    }
    return answer.then(
      (response) => {
        stats.closed("http");
        return response;
      },
      (error: unknown) => {
        stats.closed("http");
        return this.failed(error);
      },
    );
  }

  private failed(error: unknown): Response {
    if (isBusError(error) && error.code === "BAD_REQUEST") this.ctx.stats.protocolErrors++;
    return errorResponse(error, this.cors.headers);
  }

  shutdown(): void {
    for (const stop of [...this.polls]) stop();
    this.sse.closeAll();
    this.ws.closeAll();
  }

  private route(req: Request, server: Server<WsData>): Response | undefined | Promise<Response | undefined> {
    const target = requestTarget(req.url);
    const path = target.path;
    const query = new Query(target.query);
    const method = req.method;
    if (method === "OPTIONS") return new Response(null, { status: 204, headers: { ...this.cors.preflight, allow: allowedMethods(path) } });
    // The web console: a browser asking for a page at the root (JSON clients and curl are not).
    if (path === "/" && (method === "GET" || method === "HEAD") && this.ctx.config.console && wantsConsole(req)) return consoleResponse(req);
    const parts = path.split("/");
    if (parts[1] === "_") return this.serverRoute(req, server, method, parts, query);
    if (this.ctx.stopping) throw new BusError("UNAVAILABLE", "server shutting down");
    if (this.ctx.stats.openConnections > this.ctx.config.maxConnections) {
      throw new BusError("UNAVAILABLE", `too many connections (--max-connections ${this.ctx.config.maxConnections})`);
    }
    // prologic's msgbus listed its topics at `GET /` for JSON clients (a browser asking for HTML gets the console).
    if (path === "/" && (method === "GET" || method === "HEAD") && (req.headers.get("accept") ?? "").includes("application/json")) {
      const who = this.identify(req, server, query);
      query.only([]);
      return this.jsonReply(topicsJson(this.ctx, (topic) => this.ctx.auth.may(who, topic, "read")));
    }
    if (parts.length === 2 && parts[1] !== "") return this.topicRoute(req, server, method, path, parts[1]!, query);
    if (parts.length === 4 && (parts[3] === "ack" || parts[3] === "nack" || parts[3] === "touch"))
      return this.leaseRoute(req, server, method, path, parts, query);
    throw new BusError("NOT_FOUND", `no route ${method} ${path.slice(0, 200)}: ${ROUTES_HINT}`);
  }

  // ---- /{topic} ----

  private topicRoute(req: Request, server: Server<WsData>, method: string, path: string, segment: string, query: Query) {
    switch (method) {
      case "POST":
      case "PUT": {
        const { topic } = this.authorize(req, server, query, "write", segment);
        query.only(["json"]); // the reply is JSON anyway
        return this.write(req, topic);
      }
      case "GET": {
        if ((req.headers.get("upgrade") ?? "").toLowerCase() === "websocket") return this.upgrade(req, server, segment, query);
        if (query.flag("peek")) {
          const { topic } = this.authorize(req, server, query, "read", segment);
          return this.peek(topic, query);
        }
        // Last-Event-ID only ever means "resume this event stream" (curl -H 'Last-Event-ID: 41' sends Accept: */*).
        if (query.has("sse") || req.headers.has("last-event-id") || (req.headers.get("accept") ?? "").includes("text/event-stream")) {
          const { topic, who } = this.authorize(req, server, query, "read", segment);
          return this.subscribe(req, server, topic, who, query);
        }
        const { topic } = this.authorize(req, server, query, "take", segment);
        return this.take(req, server, topic, query);
      }
      case "DELETE": {
        const { topic } = this.authorize(req, server, query, "admin", segment);
        query.only(["purge"]);
        return query.flag("purge") ? this.purge(topic) : this.deleteTopic(topic);
      }
      default:
        return methodNotAllowed(method, path, ["GET", "POST", "PUT", "DELETE"], this.cors.headers);
    }
  }

  private write(req: Request, topic: string): Promise<Response> {
    return readBody(req, this.ctx.config.maxMessageSize).then((payload) => {
      const written = this.ctx.bus.publish(topic, payload);
      if (written instanceof Promise) return written.then((message) => this.jsonReply({ id: message.id, topic, created: message.created }));
      const reply = () => this.jsonReply({ id: written.id, topic, created: written.created });
      const flushed = this.ctx.bus.flush();
      return flushed ? this.committed(flushed).then(reply) : reply();
    });
  }

  private async take(req: Request, server: Server<WsData>, topic: string, query: Query): Promise<Response> {
    query.only(["wait", "lease", "max-deliveries", "json"]);
    const asJson = query.flag("json") || (req.headers.get("accept") ?? "").includes("application/json");
    const lease = query.has("lease") ? checkLease(query.duration("lease", this.ctx.config.leaseTime), "?lease") : undefined;
    const maxDeliveries = query.has("max-deliveries") ? query.integer("max-deliveries", 1) : undefined;
    const wait = query.has("wait") ? checkWait(query.duration("wait", 0), "?wait") : undefined;
    // A remote engine's waiting consumer tries a take as it registers: one round trip, not two.
    let message = wait !== undefined && this.ctx.bus.remote ? undefined : await this.ctx.bus.take(topic, { lease, maxDeliveries });
    if (!message && wait !== undefined) message = await this.waitFor(req, server, topic, wait, { lease, maxDeliveries });
    if (!message) return new Response(null, { status: 204, headers: this.cors.headers });
    await this.committed();
    const leaseExpires = lease !== undefined ? Date.now() + lease : undefined;
    if (asJson) return this.jsonReply({ ...toEnvelope(message), ...(leaseExpires ? { leaseExpires } : {}) });
    return new Response(message.payload, { headers: messageHeaders(message, leaseExpires, this.cors.headers) });
  }

  /** GET /{topic}?peek[&n=10][&since=ID]: the queued messages as envelopes, in id order; nothing is taken. */
  private peek(topic: string, query: Query): Response | Promise<Response> {
    query.only(["peek", "n", "since"]);
    const count = query.has("n") ? query.integer("n", 1) : DEFAULT_PEEK;
    const since = query.has("since") ? query.integer("since", 0) : 0;
    return then(this.ctx.bus.peek(topic, count, since), (messages) => this.jsonReply(messages.map((m) => toEnvelope(m))));
  }

  /** A long poll: a one-shot consumer until a message comes, the wait ends or the client leaves. */
  private waitFor(req: Request, server: Server<WsData>, topic: string, ms: number, take: { lease?: number; maxDeliveries?: number }) {
    server.timeout(req, 0);
    return new Promise<Message | undefined>((resolve, reject) => {
      let settled = false;
      const consumer: Consumer = { credit: 1, lease: take.lease, maxDeliveries: take.maxDeliveries, deliver: (m) => finish(m) };
      const finish = (message?: Message, error?: BusError) => {
        if (settled) return;
        settled = true;
        timer?.clear();
        req.signal.removeEventListener("abort", left);
        this.polls.delete(stopping);
        // Safe inside the bus's dispatch: with its credit spent this consumer waits nowhere.
        this.ctx.bus.cancel(topic, consumer);
        if (error) reject(error);
        else resolve(message);
      };
      const left = () => finish();
      const stopping = () => finish(undefined, new BusError("UNAVAILABLE", "server shutting down"));
      // Waits past 2^31-1 ms (about 24.8 days) would fire at once with a plain setTimeout.
      const timer = ms > 0 ? setLongTimeout(() => finish(), ms) : undefined;
      req.signal.addEventListener("abort", left, { once: true });
      this.polls.add(stopping);
      try {
        this.ctx.bus.consume(topic, consumer);
      } catch (error) {
        finish(undefined, isBusError(error) ? error : new BusError("BAD_REQUEST", String(error)));
      }
    });
  }

  private subscribe(req: Request, server: Server<WsData>, topic: string, who: Principal | undefined, query: Query): Response {
    query.only(["sse", "json", "since"]);
    const lastEventId = req.headers.get("last-event-id");
    const since =
      lastEventId !== null && lastEventId !== ""
        ? Query.integerValue(lastEventId, "Last-Event-ID", 0)
        : query.has("since")
          ? query.integer("since", 0)
          : undefined;
    server.timeout(req, 0);
    return this.sse.open({ topic, who, json: query.flag("json"), since }, req.signal);
  }

  private upgrade(req: Request, server: Server<WsData>, segment: string, query: Query): undefined {
    query.only(["json", "binary", "since", "publish-only"]);
    if (!this.cors.allowsWebSocket(req.headers.get("origin"))) {
      throw new BusError("FORBIDDEN", `WebSocket from origin ${req.headers.get("origin")} refused (--allow-origin ${this.ctx.config.allowOrigin})`);
    }
    const publishOnly = query.flag("publish-only");
    const { topic, who } = this.authorize(req, server, query, publishOnly ? "write" : "read", segment);
    if (query.flag("json") && query.flag("binary")) throw new BusError("BAD_REQUEST", "?json and ?binary exclude each other");
    const data: WsData = {
      topic,
      format: query.flag("json") ? "json" : query.flag("binary") ? "binary" : "raw",
      subscribe: !publishOnly,
      since: query.has("since") ? query.integer("since", 0) : undefined,
      who,
      lastBuffered: 0,
      replies: null,
    };
    if (server.upgrade(req, { data })) return undefined;
    throw new BusError("BAD_REQUEST", "WebSocket upgrade failed: expected Connection: Upgrade, Sec-WebSocket-Key and Sec-WebSocket-Version: 13");
  }

  private async purge(topic: string): Promise<Response> {
    const purged = await this.ctx.bus.purge(topic);
    await this.committed();
    return this.jsonReply({ topic, purged });
  }

  /** DELETE /{topic}: the topic goes, with every message it held; its ids do not restart. */
  private async deleteTopic(topic: string): Promise<Response> {
    const dropped = await this.ctx.bus.deleteTopic(topic);
    if (dropped === undefined) throw new BusError("NOT_FOUND", `no topic ${topic}`);
    await this.committed();
    return this.jsonReply({ topic, deleted: true, dropped });
  }

  // ---- /{topic}/{id}/ack|nack|touch ----

  private async leaseRoute(req: Request, server: Server<WsData>, method: string, path: string, parts: string[], query: Query): Promise<Response> {
    if (method !== "POST") return methodNotAllowed(method, path, ["POST"], this.cors.headers);
    const { topic } = this.authorize(req, server, query, "take", parts[1]!);
    const id = Query.integerValue(parts[2]!, "message id", 1);
    if (parts[3] === "ack") {
      query.only(["delivery"]);
      await this.ctx.bus.ack(topic, id, query.has("delivery") ? query.integer("delivery", 1) : undefined);
      await this.committed();
      return this.jsonReply({ topic, id, acked: true });
    }
    if (parts[3] === "touch") {
      query.only(["lease", "delivery"]);
      const lease = query.has("lease") && query.get("lease") !== "" ? query.duration("lease", 0) : undefined;
      const leaseExpires = await this.ctx.bus.touch(topic, id, lease, query.has("delivery") ? query.integer("delivery", 1) : undefined);
      return this.jsonReply({ topic, id, leaseExpires });
    }
    query.only(["delay", "delivery"]);
    const delay = query.has("delay") ? checkDelay(query.duration("delay", 0), "?delay") : 0;
    await this.ctx.bus.nack(topic, id, delay, query.has("delivery") ? query.integer("delivery", 1) : undefined);
    await this.committed();
    return this.jsonReply({ topic, id, nacked: true, delay });
  }

  // ---- /_/ ----

  private serverRoute(req: Request, server: Server<WsData>, method: string, parts: string[], query: Query): Response {
    const name = parts[2] ?? "";
    const known = name === "health" || name === "metrics" || name === "topics";
    if (!known || (name !== "topics" && parts.length > 3) || parts.length > 4) {
      throw new BusError(
        "NOT_FOUND",
        `no server endpoint /_/${parts.slice(2).join("/").slice(0, 100)} (known: /_/topics, /_/topics/{topic}, /_/health, /_/metrics)`,
      );
    }
    if (method !== "GET" && method !== "HEAD") return methodNotAllowed(method, `/_/${name}`, ["GET", "HEAD"], this.cors.headers);
    if (name === "health") {
      const backend = this.ctx.bus.health?.();
      const health = this.ctx.stopping
        ? this.jsonReply({ status: "stopping" }, 503)
        : backend && !backend.up
          ? this.jsonReply({ status: "degraded", [backend.name]: "down" }, 503)
          : this.jsonReply(backend ? { status: "ok", [backend.name]: "up" } : { status: "ok" });
      // Clients read their limit here, so that `msgbus put` stops reading stdin at it.
      health.headers.set("msgbus-max-message-size", String(this.ctx.config.maxMessageSize));
      health.headers.set("msgbus-version", VERSION); // `msgbus ping` shows it
      return health;
    }
    const who = this.identify(req, server, query);
    query.only([]);
    // Any accepted token; per-topic figures only for the topics it may read.
    const visible = (topic: string) => this.ctx.auth.may(who, topic, "read");
    if (name === "metrics") {
      return new Response(prometheus(this.ctx, visible), { headers: { ...this.cors.headers, "content-type": "text/plain; version=0.0.4; charset=utf-8" } });
    }
    if (parts.length === 4) {
      const topicName = decodeSegment(parts[3]!);
      this.ctx.auth.rights(who, topicName, "read");
      const topic = this.ctx.bus.topic(topicName);
      if (!topic) throw new BusError("NOT_FOUND", `no topic ${decodeSegment(parts[3]!).slice(0, 128)}`);
      return this.jsonReply(topicJson(topic));
    }
    return this.jsonReply(topicsJson(this.ctx, visible));
  }

  // ---- shared ----

  /**
   * The token of a request (`Authorization: Bearer <token>`, or `?token=` for EventSource and
   * WebSocket in browsers), checked: 401 when auth is on and there is none or a wrong one.
   */
  private identify(req: Request, server: Server<WsData>, query: Query): Principal | undefined {
    const auth = this.ctx.auth;
    if (!auth.required) return undefined;
    const header = req.headers.get("authorization");
    let token: string | null;
    if (header !== null) {
      const bearer = /^\s*Bearer\s+(\S+)\s*$/i.exec(header);
      if (!bearer) throw new BusError("UNAUTHORIZED", "the Authorization header must be 'Bearer <token>'");
      token = bearer[1]!;
    } else {
      token = query.get("token");
    }
    if (token === null) throw new BusError("UNAUTHORIZED", "authentication required: send 'Authorization: Bearer <token>' or ?token=<token>");
    const who = auth.identify(token);
    if (!who) {
      auth.refused(server.requestIP(req)?.address ?? "unknown", "http", token);
      throw new BusError("UNAUTHORIZED", "wrong token");
    }
    return who;
  }

  /** The token, then the topic's name, then the token's right on it (auth.ts decides). */
  private authorize(req: Request, server: Server<WsData>, query: Query, need: Need, segment: string): { topic: string; who: Principal | undefined } {
    const who = this.identify(req, server, query);
    const topic = checkTopicName(decodeSegment(segment));
    this.ctx.auth.rights(who, topic, need);
    return { topic, who };
  }

  /** Durable mode: answer only once the store has committed what this request changed. */
  private async committed(flushed = this.ctx.bus.flush()): Promise<void> {
    if (!flushed) return;
    try {
      await flushed;
    } catch (error) {
      throw new BusError("STORAGE", `storage failed: ${error instanceof Error ? error.message : String(error)}`);
    }
  }
}

function decodeSegment(segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    throw new BusError("BAD_REQUEST", `malformed percent-encoding in "${segment.slice(0, 64)}"`);
  }
}

/** A taken message's metadata as headers, beside its raw payload. */
function messageHeaders(message: Message, leaseExpires: number | undefined, cors: Readonly<Record<string, string>>): Record<string, string> {
  const headers: Record<string, string> = {
    ...cors,
    "content-type": isUtf8(message.payload) ? "text/plain; charset=utf-8" : "application/octet-stream",
    "msgbus-id": String(message.id),
    "msgbus-topic": message.topic,
    "msgbus-created": String(message.created),
    "msgbus-deliveries": String(message.deliveries),
  };
  if (message.origin) {
    headers["msgbus-origin-topic"] = message.origin.topic;
    headers["msgbus-origin-id"] = String(message.origin.id);
    headers["msgbus-origin-deliveries"] = String(message.origin.deliveries);
  }
  if (leaseExpires !== undefined) headers["msgbus-lease-expires"] = String(leaseExpires);
  return headers;
}
