// SSE subscriptions: one bus subscriber per stream, written into a ReadableStream only as fast as
// the reader takes it. Live messages waiting beyond the stream's own small queue are bounded by
// --send-buffer; past it the reader is cut off as a slow consumer.

import type { Message } from "../core/message.ts";
import { encodeComment, encodeMessageEvent } from "../protocol/sse.ts";
import { logFor } from "../log.ts";
import { CatchUp } from "./catch-up.ts";
import type { Principal } from "./auth.ts";
import type { ServerContext } from "./context.ts";

const sseLog = logFor("sse");
const encoder = new TextEncoder();

/** What the stream itself may hold, encoded; the rest waits as message references. */
const STREAM_QUEUE_BYTES = 256 * 1024;
const HEARTBEAT_MS = 15000;

/** Fan-out calls every subscriber with the same message in turn: encode it once per mode. */
const lastEncoded: [Message | undefined, Uint8Array, Message | undefined, Uint8Array] = [undefined, new Uint8Array(0), undefined, new Uint8Array(0)];

function encodeMessage(message: Message, json: boolean): Uint8Array {
  const slot = json ? 2 : 0;
  if (lastEncoded[slot] === message) return lastEncoded[slot + 1] as Uint8Array;
  const bytes = encoder.encode(encodeMessageEvent(message, json));
  lastEncoded[slot] = message;
  lastEncoded[slot + 1] = bytes;
  return bytes;
}

export interface SseOptions {
  topic: string;
  /** The token that opened the stream: its rights are checked again when --acl is reloaded. */
  who: Principal | undefined;
  json: boolean;
  /** Replay still-queued messages with a greater id first. */
  since: number | undefined;
}

export class SseHub {
  private readonly streams = new Set<SseStream>();
  private readonly heartbeat: ReturnType<typeof setInterval>;

  /** `cors`: the server's CORS headers, on the stream's response. */
  constructor(
    private readonly ctx: ServerContext,
    private readonly cors: Readonly<Record<string, string>>,
  ) {
    this.heartbeat = setInterval(() => {
      for (const stream of this.streams) stream.comment("ping");
    }, HEARTBEAT_MS);
    this.heartbeat.unref?.();
    // A reload that takes away a stream's read right ends it, with a comment saying why.
    ctx.auth.onChange(() => {
      for (const stream of this.streams) {
        if (!ctx.auth.may(stream.who, stream.topic, "read")) stream.finish(`this token may no longer read ${stream.topic} (the --acl file changed)`);
      }
    });
  }

  get size(): number {
    return this.streams.size;
  }

  /** Opens a stream for `options`; the subscription starts now (replay included), synchronously. */
  open(options: SseOptions, signal: AbortSignal): Response {
    const stream = new SseStream(this.ctx, options, (s) => this.streams.delete(s));
    this.streams.add(stream);
    signal.addEventListener("abort", () => stream.end(), { once: true });
    return new Response(stream.readable, {
      headers: {
        ...this.cors,
        "content-type": "text/event-stream; charset=utf-8",
        "cache-control": "no-cache",
        "x-accel-buffering": "no",
      },
    });
  }

  /** Shutdown: every stream ends after what it already queued. */
  closeAll(): void {
    clearInterval(this.heartbeat);
    for (const stream of this.streams) stream.finish("server shutting down");
  }
}

class SseStream {
  readonly readable: ReadableStream<Uint8Array>;
  private controller!: ReadableStreamDefaultController<Uint8Array>;
  /** Messages not yet in the stream's queue (the replay, then live ones the stream had no room for). */
  private readonly catchUp: CatchUp;
  private ended = false;

  constructor(
    private readonly ctx: ServerContext,
    readonly options: SseOptions,
    private readonly forget: (s: SseStream) => void,
  ) {
    this.readable = new ReadableStream<Uint8Array>(
      {
        start: (controller) => {
          this.controller = controller;
          // Sends the headers at once, so a reader knows the subscription is in place.
          controller.enqueue(encoder.encode(encodeComment(`msgbus ${options.topic}`)));
        },
        pull: () => this.pump(),
        cancel: () => this.end(),
      },
      { highWaterMark: STREAM_QUEUE_BYTES, size: (chunk) => chunk?.byteLength ?? 0 },
    );
    this.catchUp = new CatchUp(ctx.bus, options.topic, options.since, ctx.config.sendBuffer, (m) => this.arrived(m));
    ctx.stats.opened("sse");
    this.pump();
  }

  get who(): Principal | undefined {
    return this.options.who;
  }

  get topic(): string {
    return this.options.topic;
  }

  /** A live message: straight into the stream when it has room and nothing waits, else queued. */
  private arrived(message: Message): void {
    if (this.ended) return;
    if (this.catchUp.length === 0 && (this.controller.desiredSize ?? 0) > 0) {
      this.controller.enqueue(encodeMessage(message, this.options.json));
      return;
    }
    if (!this.catchUp.queue(message)) this.cutOff();
  }

  /** Moves waiting messages into the stream while it has room (also the stream's pull). */
  private pump(): void {
    while (!this.ended && this.catchUp.length > 0 && (this.controller.desiredSize ?? 0) > 0) {
      this.controller.enqueue(encodeMessage(this.catchUp.next()!, this.options.json));
    }
  }

  comment(text: string): void {
    // A full stream already has something to send: a heartbeat would only grow it.
    if (this.ended || (this.controller.desiredSize ?? 0) <= 0) return;
    this.controller.enqueue(encoder.encode(encodeComment(text)));
  }

  /** The reader fell too far behind: drop everything queued for it and break the connection. */
  private cutOff(): void {
    this.ctx.stats.slowConsumers++;
    sseLog.warn(`slow consumer on ${this.options.topic}: more than ${this.ctx.config.sendBuffer} bytes waiting (--send-buffer); disconnecting`);
    this.end();
    try {
      this.controller.error(new Error("slow consumer"));
    } catch {
      // Already closed.
    }
  }

  /** Ends the stream after what it queued (shutdown). */
  finish(reason: string): void {
    if (this.ended) return;
    try {
      this.controller.enqueue(encoder.encode(encodeComment(reason)));
      this.controller.close();
    } catch {
      // The reader is gone.
    }
    this.end();
  }

  /** Leaves the bus and the hub; idempotent (abort, cancel, cut-off and shutdown all end here). */
  end(): void {
    if (this.ended) return;
    this.ended = true;
    this.catchUp.close();
    this.forget(this);
    this.ctx.stats.closed("sse");
  }
}
