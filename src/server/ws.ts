// WebSocket subscriptions and writes on GET /{topic}. Live fan-out: one bus subscriber per (topic,
// frame format) encodes each message once; the frames of an event-loop turn go to every socket of
// the group at its end, corked (one write per socket and turn). A socket replaying `since` catches
// up privately first, then joins.

import { isAscii as nativeIsAscii, isUtf8 } from "node:buffer";
import type { ServerWebSocket, WebSocketHandler } from "bun";
import { BusError, isBusError } from "../core/errors.ts";
import type { Message } from "../core/message.ts";
import type { Subscriber } from "../core/topic.ts";
import { copyBytes } from "../protocol/bytes.ts";
import { encodeEnvelope } from "../protocol/envelope.ts";
import { logFor } from "../log.ts";
import { CatchUp } from "./catch-up.ts";
import type { Principal } from "./auth.ts";
import type { ServerContext } from "./context.ts";
import { wsCloseCode } from "./http-errors.ts";

const wsLog = logFor("ws");
const encoder = new TextEncoder();
const decoder = new TextDecoder();

/**
 * Frame formats: `raw` sends the payload (a text frame when it is UTF-8 and did not arrive as a
 * binary frame, else binary), `binary` always a binary frame, `json` a text frame holding the
 * envelope `{"type":"message",...}`; in json mode writes are answered too.
 */
export type WsFormat = "raw" | "binary" | "json";

export interface WsData {
  topic: string;
  format: WsFormat;
  /** False for `?publish-only`: the socket only writes. */
  subscribe: boolean;
  since: number | undefined;
  /** The token of the upgrade: its right to write is looked up per frame, to read at each --acl reload. */
  who: Principal | undefined;
  catchUp?: CatchUp;
  group?: Group;
  /** Unsent bytes when a backpressured fan-out last looked: tells a backstop close apart (-1: counted). */
  lastBuffered: number;
  /** json mode: replies wait for the store and go out in order. */
  replies: Promise<void> | null;
}

type Socket = ServerWebSocket<WsData>;

/**
 * The live sockets of one (topic, frame format), and their one bus subscriber. A class, as
 * tcp-fanout's groups are: the bus's publish path calls send, sendLent and weight of every
 * group through the same functions. (With an object literal of closures per group, the publish
 * path compiled for the first group's closures was compiled again when a group was made anew,
 * ~25-30 ms of JIT threads, a fifth of a 1,000,000-delivery fan-out to 10 sockets.)
 */
class Group implements Subscriber {
  readonly sockets = new Set<Socket>();
  unsubscribe: () => void = () => {};
  /** The frames of this event-loop turn, written to every socket corked at its end (see WsHub.fanOut). */
  pending: (string | Uint8Array)[] = [];
  /** fanOut encodes the frame at once, copying a payload it would keep as it is. */
  readonly takesLent = true;

  constructor(
    readonly key: string,
    readonly topic: string,
    readonly format: WsFormat,
    private readonly hub: WsHub,
  ) {}

  /** Counted as its sockets: a user counts connections. */
  get weight(): number {
    return this.sockets.size;
  }

  send(message: Message, lent?: boolean): void {
    this.hub.fanOut(this, message, lent);
  }

  sendLent(id: number, created: number, bytes: Uint8Array, start: number, end: number): void {
    this.hub.fanOutLent(this, id, created, bytes, start, end);
  }
}

/** Payloads that arrived as binary frames go out as binary frames, whatever their bytes. */
const binaryPayloads = new WeakSet<Uint8Array>();

function frame(format: WsFormat, message: Message): string | Uint8Array {
  if (format === "json") return encodeEnvelope(message, "message");
  const payload = message.payload;
  if (format === "binary" || binaryPayloads.has(payload) || !isUtf8(payload)) return payload;
  return decoder.decode(payload);
}

export class WsHub {
  private readonly groups = new Map<string, Group>();
  private readonly sockets = new Set<Socket>();

  constructor(private readonly ctx: ServerContext) {
    // A reload that takes away a subscribed socket's read right closes it (4403, or 4401 for a token removed).
    ctx.auth.onChange(() => {
      for (const ws of this.sockets) {
        const { who, topic, subscribe } = ws.data;
        if (!subscribe) continue;
        try {
          ctx.auth.rights(who, topic, "read");
        } catch (error) {
          if (isBusError(error)) {
            wsLog.info(`closing a WebSocket on ${topic}: ${error.message} (the --acl file changed)`);
            this.leave(ws);
            this.fail(ws, new BusError(error.code, error.code === "FORBIDDEN" ? `this token may no longer read ${topic}` : error.message));
          }
        }
      }
    });
  }

  get size(): number {
    return this.sockets.size;
  }

  closeAll(): void {
    for (const ws of this.sockets) ws.close(1001, "server shutting down");
  }

  handler(): WebSocketHandler<WsData> {
    const { config } = this.ctx;
    return {
      maxPayloadLength: config.maxMessageSize,
      // We cut a reader off past --send-buffer ourselves (and say why); uWS closes past this. Our
      // check leaves a socket up to --send-buffer plus the frame in progress, and the next frame is
      // added before we look again: room for two of the largest frames (a json envelope is base64,
      // 4/3 of the payload) keeps this backstop from cutting off a reader that keeps up.
      backpressureLimit: config.sendBuffer + 3 * Math.max(config.maxMessageSize, 1048576),
      closeOnBackpressureLimit: true,
      idleTimeout: 120,
      sendPings: true,
      perMessageDeflate: false,
      open: (ws) => this.opened(ws),
      message: (ws, data) => this.received(ws, data),
      drain: (ws) => {
        ws.data.lastBuffered = 0;
        if (ws.data.catchUp) this.pump(ws);
      },
      close: (ws, code, reason) => this.closed(ws, code, reason),
    };
  }

  private opened(ws: Socket): void {
    ws.binaryType = "uint8array";
    this.sockets.add(ws);
    this.ctx.stats.opened("ws");
    const data = ws.data;
    if (!data.subscribe) return;
    try {
      if (data.since === undefined) {
        this.join(ws);
        return;
      }
      data.catchUp = new CatchUp(this.ctx.bus, data.topic, data.since, this.ctx.config.sendBuffer, (m) => this.arrived(ws, m));
      this.pump(ws);
    } catch (error) {
      this.fail(ws, error);
    }
  }

  /** A live message for a socket still catching up: queue it behind the replay. */
  private arrived(ws: Socket, message: Message): void {
    const catchUp = ws.data.catchUp;
    if (!catchUp) return;
    if (!catchUp.queue(message)) {
      this.slow(ws, `more than ${this.ctx.config.sendBuffer} bytes waiting while catching up`);
      return;
    }
    // Not inside the bus's fan-out: joining a group there would hand this message out twice. With
    // more than this message waiting, a pump is already due (this microtask, or drain).
    if (catchUp.length === 1) {
      queueMicrotask(() => {
        if (ws.data.catchUp === catchUp) this.pump(ws);
      });
    }
  }

  /** Sends the catch-up queue while the socket has room; once empty, joins the live group. */
  private pump(ws: Socket): void {
    const catchUp = ws.data.catchUp!;
    const room = this.ctx.config.sendBuffer / 2;
    while (catchUp.length > 0) {
      if (ws.readyState !== 1) return;
      if (ws.getBufferedAmount() > room) return; // drain() carries on
      ws.send(frame(ws.data.format, catchUp.next()!), false);
    }
    catchUp.close();
    ws.data.catchUp = undefined;
    this.join(ws);
  }

  /** Live from now on through the shared group of this topic and format. */
  private join(ws: Socket): void {
    const { topic, format } = ws.data;
    const key = `${format}:${topic}`;
    let group = this.groups.get(key);
    if (!group) {
      const created = new Group(key, topic, format, this);
      created.unsubscribe = this.ctx.bus.subscribe(topic, created);
      this.groups.set(key, (group = created));
    }
    this.flush(group); // frames due before this socket joined are not its own
    group.sockets.add(ws);
    ws.data.group = group;
  }

  /**
   * A group's frames wait for the end of this turn and go to each socket corked, in one write, as
   * the TCP transport's pushes do. (Bun's server.publish per message, through uWS's topic tree,
   * cost about a third more CPU per delivery for 10 and 100 sockets, and wrote ~30 frames per
   * syscall where this writes a turn's worth.) Called by the group's send (Group is the bus subscriber).
   */
  fanOut(group: Group, message: Message, lent = false): void {
    if (group.pending.length === 0) queueMicrotask(() => this.flush(group));
    const sent = frame(group.format, message);
    // A binary frame is the payload itself: a lent one is valid only during this call.
    group.pending.push(lent && sent === message.payload ? copyBytes(message.payload) : sent);
  }

  /**
   * fanOut of a lent write given as a range of its queue (the group's sendLent). A `?binary` frame
   * (a copy of the range), or a raw frame of an ASCII payload (valid UTF-8, whose text is its bytes
   * as Latin-1), is made from the range at once: no Message, no view, no UTF-8 decoder. Anything
   * else is a lent Message for fanOut. (A range is
   * never a payload that arrived as a binary frame: those are written through Bus.publish.)
   */
  fanOutLent(group: Group, id: number, created: number, bytes: Uint8Array, start: number, end: number): void {
    const format = group.format;
    if (format === "binary" || (format === "raw" && isAscii(bytes, start, end))) {
      if (group.pending.length === 0) queueMicrotask(() => this.flush(group));
      // `?binary`: the frame is a copy of the range (the range is only lent), made at once.
      group.pending.push(format === "binary" ? uint8Slice.call(bytes, start, end) : latin1Slice.call(bytes, start, end));
      return;
    }
    this.fanOut(group, { id, topic: group.topic, created, payload: bytes.subarray(start, end), deliveries: 0, origin: undefined }, true);
  }

  /** Writes the group's pending frames to each of its sockets corked, then looks at the backlog of those that queued them. */
  private flush(group: Group): void {
    const frames = group.pending;
    if (frames.length === 0) return;
    group.pending = [];
    let backedUp = false;
    const sendAll = (ws: Socket): void => {
      for (const sent of frames) if (ws.send(sent, false) <= 0) backedUp = true;
    };
    let inProgress = -1;
    for (const ws of group.sockets) {
      backedUp = false;
      ws.cork(sendAll);
      if (!backedUp) continue;
      if (inProgress < 0) inProgress = frames.reduce((n, sent) => n + byteLength(sent), 0);
      this.checkBacklog(ws, inProgress);
    }
  }

  /**
   * A socket is backed up: past --send-buffer it is cut off with a reason; uWS's own limit
   * (higher) is the backstop. `inProgress`: bytes just handed over, which are not backlog: a
   * reader that keeps up is never cut off for one message bigger than --send-buffer, only for
   * what it left unread before it.
   */
  private checkBacklog(ws: Socket, inProgress: number): void {
    const limit = this.ctx.config.sendBuffer;
    const buffered = ws.getBufferedAmount();
    ws.data.lastBuffered = buffered;
    if (buffered - inProgress > limit) this.slow(ws, `more than ${limit} bytes unsent`);
  }

  private received(ws: Socket, data: string | Uint8Array): void {
    const payload = typeof data === "string" ? encoder.encode(data) : data;
    if (typeof data !== "string") binaryPayloads.add(payload);
    const { topic, format } = ws.data;
    try {
      this.ctx.auth.rights(ws.data.who, topic, "write");
      const written = this.ctx.bus.publish(topic, payload);
      if (written instanceof Promise) {
        // The Redis engine: the reply (or the failure) once Redis has answered, in order.
        const outcome = written.then(
          (message) => ({ type: "published", id: message.id, topic, created: message.created }),
          (error: unknown): object => (isBusError(error) ? error : new BusError("UNAVAILABLE", String(error))),
        );
        if (format === "json") this.reply(ws, () => ({}), outcome);
        else
          outcome.then((result) => {
            if (result instanceof Error) this.fail(ws, result);
          });
        return;
      }
      const message = written;
      if (format === "json") this.reply(ws, () => ({ type: "published", id: message.id, topic, created: message.created }));
    } catch (error) {
      if (format === "json" && isBusError(error)) this.reply(ws, () => ({ type: "error", error: error.message, code: error.code }));
      else this.fail(ws, error);
    }
  }

  /** A json-mode reply, sent once the store has committed what came before it, in order. */
  private reply(ws: Socket, build: () => object, later?: Promise<object>): void {
    const data = ws.data;
    const durable = this.ctx.bus.flush();
    if (later) {
      const next: Promise<void> = (data.replies ?? Promise.resolve())
        .then(() => later)
        .then((result) => {
          const reply = isBusError(result) ? { type: "error", error: result.message, code: result.code } : result;
          ws.send(JSON.stringify(reply), false);
        })
        .finally(() => {
          if (data.replies === next) data.replies = null;
        });
      data.replies = next;
      return;
    }
    if (!durable && !data.replies) {
      ws.send(JSON.stringify(build()), false);
      return;
    }
    const next: Promise<void> = (data.replies ?? Promise.resolve())
      .then(() => durable)
      .then(
        () => {
          ws.send(JSON.stringify(build()), false);
        },
        (error: unknown) => {
          ws.send(JSON.stringify({ type: "error", error: `storage failed: ${String(error)}`, code: "STORAGE" }), false);
        },
      )
      .finally(() => {
        if (data.replies === next) data.replies = null;
      });
    data.replies = next;
  }

  /** An error ends the socket: close code 4000 + HTTP status, the message as the reason. */
  private fail(ws: Socket, error: unknown): void {
    if (isBusError(error)) {
      ws.close(wsCloseCode(error), truncate(error.message));
      return;
    }
    wsLog.error(`internal error: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
    ws.close(1011, "internal error");
  }

  private slow(ws: Socket, why: string): void {
    if (ws.data.lastBuffered === -1) return;
    this.ctx.stats.slowConsumers++;
    wsLog.warn(`slow consumer on ${ws.data.topic}: ${why} (--send-buffer); disconnecting`);
    ws.data.lastBuffered = -1; // counted here, not again on close
    this.leave(ws);
    ws.terminate();
  }

  private leave(ws: Socket): void {
    const data = ws.data;
    if (data.catchUp) {
      data.catchUp.close();
      data.catchUp = undefined;
    }
    const group = data.group;
    if (group) {
      data.group = undefined;
      group.sockets.delete(ws);
      if (group.sockets.size === 0) {
        group.unsubscribe();
        this.groups.delete(group.key);
      }
    }
  }

  private closed(ws: Socket, code: number, _reason: string): void {
    if (!this.sockets.delete(ws)) return;
    this.ctx.stats.closed("ws");
    this.leave(ws);
    // The backstop (closeOnBackpressureLimit) closes with 1006, as does a vanished peer: the backlog tells them apart.
    if (code === 1006 && ws.data.lastBuffered >= this.ctx.config.sendBuffer / 2) {
      this.ctx.stats.slowConsumers++;
      wsLog.warn(`slow consumer on ${ws.data.topic}: more than ${this.ctx.config.sendBuffer} bytes unsent (--send-buffer); disconnected`);
    }
  }
}

/** Buffer's Latin-1 decoder takes any Uint8Array and a range of it: a string with no view made. */
const latin1Slice = Buffer.prototype.latin1Slice as (this: Uint8Array, start: number, end: number) => string;
/** A copy of a range (Uint8Array's slice: on a Buffer, slice() would be a view). */
const uint8Slice = Uint8Array.prototype.slice as (this: Uint8Array, start: number, end: number) => Uint8Array;

/** Above this many bytes the native (SIMD) check pays for its call and the view it needs. */
const ASCII_LOOP_MAX = 256;

/**
 * Whether bytes[start, end) are all ASCII. A short range is ORed together four bytes a step, with
 * no branch per byte (100 bytes: ~20 ns, where a loop that stops at the first high byte took
 * ~28-49 ns and node:buffer's isAscii ~31 ns with its view); a long one goes to isAscii.
 */
function isAscii(bytes: Uint8Array, start: number, end: number): boolean {
  if (end - start > ASCII_LOOP_MAX) return nativeIsAscii(bytes.subarray(start, end));
  let bits = 0;
  let i = start;
  for (; i + 4 <= end; i += 4) bits |= bytes[i]! | bytes[i + 1]! | bytes[i + 2]! | bytes[i + 3]!;
  for (; i < end; i++) bits |= bytes[i]!;
  return bits < 128;
}

function byteLength(sent: string | Uint8Array): number {
  return typeof sent === "string" ? Buffer.byteLength(sent) : sent.byteLength;
}

/** A close reason is at most 123 bytes. */
function truncate(reason: string): string {
  return encoder.encode(reason).length <= 123 ? reason : reason.slice(0, 100) + "…";
}
