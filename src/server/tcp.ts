// The TCP transport: RESP over Bun.listen. Owns connections, their input parsing, their output
// buffering (one write per read, backpressure on drain) and blocking; commands live in tcp-commands.

import type { Socket, TCPSocketListener } from "bun";
import { RespParser, RespWriter, isProblem } from "../protocol/resp.ts";
import type { Consumer } from "../core/topic.ts";
import type { Message } from "../core/message.ts";
import { logFor } from "../log.ts";
import type { ServerContext } from "./context.ts";
import { runCommand } from "./tcp-commands.ts";
import { HeldReplies } from "./held-replies.ts";

const tcpLog = logFor("tcp");

/** A command waiting for a message (BLPOP, GET WAIT): the connection reads nothing else meanwhile. */
export interface Blocked {
  consumer: Consumer;
  topics: string[];
  timer: ReturnType<typeof setTimeout> | undefined;
}

export type Mode = "normal" | "subscribed" | "consuming";

export class Connection {
  readonly parser: RespParser;
  readonly out = new RespWriter();
  authenticated: boolean;
  mode: Mode = "normal";
  blocked: Blocked | undefined;
  /** Topic -> unsubscribe, for SUBSCRIBE (redis frames) and SUB (native frames). */
  readonly subscriptions = new Map<string, () => void>();
  /** Topic -> streaming consumer, for ON. */
  readonly consumers = new Map<string, Consumer>();
  /** Consumers stopped with OFF that may still hold leases, returned when the connection closes. */
  readonly stoppedConsumers: [string, Consumer][] = [];
  closed = false;
  quitting = false;
  private unsent: Uint8Array[] = [];
  private unsentBytes = 0;
  /** Replies held until the store has committed the writes they acknowledge. */
  private readonly held = new HeldReplies(
    (bytes) => this.send(bytes),
    () => this.quitting && this.close(),
  );
  /** Replies written to `out` since the last endBatch (pushes not counted). */
  private replies = 0;
  /** How many blocked commands have replied: a command that blocked and woke at once replied once. */
  private woken = 0;
  private flushScheduled = false;

  constructor(
    readonly socket: Socket<Connection>,
    readonly ctx: ServerContext,
  ) {
    const max = ctx.config.maxMessageSize;
    this.parser = new RespParser({
      maxBulk: max,
      maxCommandBytes: max + 65536,
      maxArgs: 1048576,
      maxInline: 65536,
    });
    this.authenticated = !ctx.auth.required;
  }

  /** Bytes received: parse and run commands until input runs out or a command blocks. */
  received(chunk: Uint8Array): void {
    this.parser.feed(chunk);
    this.runPending();
    if (this.blocked) this.parser.detach();
    // A blocked client that keeps sending is buffered, but not without bound.
    if (this.parser.buffered > this.ctx.config.maxMessageSize + 1048576) {
      this.fail("too much input while a command is blocked");
    }
  }

  runPending(): void {
    while (!this.blocked && !this.closed && !this.quitting) {
      const item = this.parser.nextCommand();
      if (item === undefined) break;
      if (isProblem(item)) {
        this.ctx.stats.protocolErrors++;
        this.out.error(item.code === "TOO_LARGE" ? `TOOLARGE ${item.error}` : `ERR ${item.error}`);
        this.replies++;
        if (item.fatal) {
          this.quitting = true;
          break;
        }
        continue;
      }
      const woken = this.woken;
      runCommand(this, item);
      if (!this.blocked && this.woken === woken) this.replies++;
    }
    this.endBatch();
  }

  /**
   * Sends what the batch produced, after the store commits when there was a write. A batch the
   * store could not write answers -STORAGE to each of its commands instead (HeldReplies), and
   * the connection carries on.
   */
  endBatch(): void {
    const durable = this.ctx.bus.flush();
    const replies = this.replies;
    this.replies = 0;
    if (!durable && this.held.empty) {
      if (this.out.length > 0) this.sendOut();
      if (this.quitting) this.close();
    } else {
      this.held.hold(durable, this.out.take(), replies);
    }
  }

  /** Output produced outside a read (a push, a woken blocked command): write it soon, batched. */
  scheduleFlush(): void {
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    queueMicrotask(() => {
      this.flushScheduled = false;
      if (!this.closed) this.endBatch();
    });
  }

  /** Writes the reply buffer straight to the socket: no copy unless the socket takes only part. */
  private sendOut(): void {
    const { bytes, length } = this.out;
    if (this.closed) return this.out.reset();
    if (this.unsentBytes > 0) {
      this.queueUnsent(bytes.slice(0, length));
    } else {
      const written = this.socket.write(bytes, 0, length);
      if (written >= 0 && written < length) this.queueUnsent(bytes.slice(written, length));
    }
    this.out.reset();
  }

  send(bytes: Uint8Array): void {
    if (this.closed || bytes.length === 0) return;
    if (this.unsentBytes > 0) {
      this.queueUnsent(bytes.slice());
      return;
    }
    const written = this.socket.write(bytes);
    if (written < 0) return; // closing
    if (written < bytes.length) this.queueUnsent(bytes.slice(written));
  }

  private queueUnsent(bytes: Uint8Array): void {
    this.unsent.push(bytes);
    this.unsentBytes += bytes.length;
    if (this.unsentBytes > this.ctx.config.sendBuffer) {
      this.ctx.stats.slowConsumers++;
      tcpLog.warn(`slow consumer: ${this.unsentBytes} bytes unsent (limit ${this.ctx.config.sendBuffer}); disconnecting`);
      this.unsent = [];
      this.unsentBytes = 0;
      this.close(true);
    }
  }

  drained(): void {
    while (this.unsent.length > 0) {
      const bytes = this.unsent[0]!;
      const written = this.socket.write(bytes);
      if (written < 0) return;
      if (written < bytes.length) {
        this.unsent[0] = bytes.subarray(written);
        this.unsentBytes -= written;
        return;
      }
      this.unsent.shift();
      this.unsentBytes -= bytes.length;
    }
    if (this.quitting && this.held.empty) this.socket.end();
  }

  /** Wakes a blocked command (message delivered or timed out) and carries on with the input. */
  unblock(): void {
    const blocked = this.blocked;
    if (!blocked) return;
    this.blocked = undefined;
    this.woken++;
    this.replies++;
    if (blocked.timer) clearTimeout(blocked.timer);
    for (const topic of blocked.topics) this.ctx.bus.cancel(topic, blocked.consumer);
    // Not inside the bus's delivery: carry on once the current call returns.
    queueMicrotask(() => {
      if (!this.closed) this.runPending();
    });
  }

  /** A message arrived for a subscription: a native frame (SUB) or a Redis one (SUBSCRIBE). */
  pushMessage(message: Message, redisFrame: boolean): void {
    if (redisFrame) {
      this.out.push(3).bulkString("message").bulkString(message.topic).bulk(message.payload);
    } else {
      writeMessage(this.out, message, true);
    }
    this.scheduleFlush();
  }

  private fail(reason: string): void {
    tcpLog.warn(`closing a client connection: ${reason}`);
    this.out.error(`ERR ${reason}`);
    this.send(this.out.take());
    this.close();
  }

  /** Ends the connection after what is unsent has gone (or at once when `now`). */
  close(now = false): void {
    if (this.closed) return;
    if (now || this.unsentBytes === 0) {
      this.socket.end();
    } else {
      this.quitting = true;
    }
  }

  /** Ends every ON of this connection; the leases they hold go back to their queues. */
  releaseConsumers(): void {
    for (const [topic, consumer] of this.consumers) this.ctx.bus.cancel(topic, consumer);
    for (const [topic, consumer] of this.stoppedConsumers) this.ctx.bus.cancel(topic, consumer);
    this.consumers.clear();
    this.stoppedConsumers.length = 0;
    if (this.mode === "consuming") this.mode = "normal";
  }

  /** The socket closed: give back everything the connection held in the bus. */
  released(): void {
    if (this.closed) return;
    this.closed = true;
    const bus = this.ctx.bus;
    if (this.blocked) {
      if (this.blocked.timer) clearTimeout(this.blocked.timer);
      for (const topic of this.blocked.topics) bus.cancel(topic, this.blocked.consumer);
      this.blocked = undefined;
    }
    for (const unsubscribe of this.subscriptions.values()) unsubscribe();
    this.subscriptions.clear();
    this.releaseConsumers();
    this.unsent = [];
    this.held.clear();
  }
}

/** The native message frame, for GET replies and SUB/ON pushes: one shape everywhere. */
export function writeMessage(out: RespWriter, message: Message, push: boolean): void {
  if (push) out.push(9);
  else out.array(9);
  out.bulkString("message").bulkString(message.topic).bulk(message.payload);
  out.integer(message.id).integer(message.created).integer(message.deliveries);
  const origin = message.origin;
  if (origin) out.bulkString(origin.topic).integer(origin.id).integer(origin.deliveries);
  else out.nullBulk().nullBulk().nullBulk();
}

export function startTcp(ctx: ServerContext): TCPSocketListener<Connection> {
  const { config, stats } = ctx;
  const tls = config.tlsCert && config.tlsKey ? { cert: Bun.file(config.tlsCert), key: Bun.file(config.tlsKey) } : undefined;
  return Bun.listen<Connection>({
    hostname: config.host,
    port: config.port,
    ...(tls ? { tls } : {}),
    socket: {
      open(socket) {
        if (ctx.stopping || stats.openConnections >= config.maxConnections) {
          socket.end(ctx.stopping ? "-UNAVAILABLE server is shutting down\r\n" : "-UNAVAILABLE max number of clients reached\r\n");
          return;
        }
        socket.data = new Connection(socket, ctx);
        stats.opened("tcp");
      },
      data(socket, data) {
        socket.data?.received(data);
      },
      drain(socket) {
        socket.data?.drained();
      },
      close(socket) {
        if (!socket.data || socket.data.closed) return;
        socket.data.released();
        stats.closed("tcp");
      },
      error(socket, error) {
        tcpLog.debug(`socket error: ${error.message}`);
      },
    },
  });
}
