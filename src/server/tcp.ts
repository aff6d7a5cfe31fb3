// The TCP transport: RESP over Bun.listen. Owns connections, their input parsing and its limits,
// their output buffering (one write per read, backpressure on drain) and blocking; commands run
// through the table in tcp-commands (native-commands, redis-commands). Limits: docs/PROTOCOL.md.

import type { Socket, TCPSocketListener } from "bun";
import { Deque } from "../core/deque.ts";
import { RespParser, isProblem, type RespLimits } from "../protocol/resp-parser.ts";
import { RespWriter } from "../protocol/resp-writer.ts";
import { copyBytes } from "../protocol/bytes.ts";
import { writePush } from "../protocol/frame.ts";
import { RESP_PREFIX, respError } from "../protocol/resp-errors.ts";
import { isBusError } from "../core/errors.ts";
import type { Consumer } from "../core/topic.ts";
import type { Message } from "../core/message.ts";
import { logFor } from "../log.ts";
import type { LongTimeout } from "../long-timeout.ts";
import type { Principal } from "./auth.ts";
import type { ServerContext } from "./context.ts";
import { runCommand } from "./tcp-commands.ts";
import { HeldReplies } from "./held-replies.ts";
import type { PushGroup } from "./tcp-fanout.ts";

const tcpLog = logFor("tcp");

/** A command waiting for a message (BLPOP, GET WAIT): the connection reads nothing else meanwhile. */
export interface Blocked {
  consumer: Consumer;
  topics: string[];
  timer: LongTimeout | undefined;
}

export type Mode = "normal" | "subscribed" | "consuming";

/** Input held over every TCP connection of a server, bounded by --max-input. */
export class InputBudget {
  held = 0;
}

/** Before AUTH a connection may send small commands only; past these it is closed. */
export const BEFORE_AUTH_LIMITS: RespLimits = { maxBulk: 4096, maxCommandBytes: 4096, maxArgs: 16, maxInline: 4096, overLimitFatal: true };
/** What an unauthenticated connection may hold as pending input. */
const BEFORE_AUTH_HELD = 16384;
/** Pushes are written straight into the reply buffer while it holds less than this. */
const PUSH_CHUNK = 65536;

/** A push (or a woken blocked command's reply) waiting until the socket takes what came before it. */
type Waiting = { message: Message; frame: "native" | "redis"; counted: boolean; bytes?: undefined } | { bytes: Uint8Array; message?: undefined };

export class Connection {
  readonly parser: RespParser;
  readonly out = new RespWriter();
  mode: Mode = "normal";
  blocked: Blocked | undefined;
  /** Topic -> unsubscribe, for SUBSCRIBE (redis frames) and SUB (native frames). */
  readonly subscriptions = new Map<string, () => void>();
  /** Topic -> streaming consumer, for ON. */
  readonly consumers = new Map<string, Consumer>();
  /** Consumers stopped with OFF that may still hold leases, returned when the connection closes. */
  readonly stoppedConsumers: [string, Consumer][] = [];
  /** The token AUTH accepted; its rights are looked up per command (auth.ts). */
  principal: Principal | undefined;
  closed = false;
  quitting = false;
  /** Set while SUB replays queued messages: those pushes are not a slow reader's backlog. */
  replaying = false;
  /**
   * The fan-out group whose frames of this turn this connection writes as they are, from
   * `sharedStart` on (tcp-fanout.ts). Any other output first copies them (settleShared): order.
   */
  sharing: PushGroup | undefined;
  sharedStart = 0;
  /** Set while commands run: their replies go to `out` directly, so pushes must too. */
  private running = false;
  private unsent: Uint8Array[] = [];
  private unsentBytes = 0;
  /** Output that waits until the socket has taken what came before it, in order. */
  private readonly waiting = new Deque<Waiting>();
  /** Payload bytes of the live pushes in `waiting`: what --send-buffer bounds. */
  private waitingBytes = 0;
  /** Commands stopped running because the client has not read its earlier replies yet. */
  private stalled = false;
  private pumping = false;
  private auth: boolean;
  private readonly fullLimits: RespLimits;
  /** Bytes this connection counts in the server's InputBudget. */
  private inputHeld = 0;
  /**
   * When the server last waited for the rest of a half-sent command (set only when input is left
   * partial), or the socket last took output.
   */
  private inputSince = Date.now();
  private outputSince = Date.now();
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
    readonly input: InputBudget = new InputBudget(),
  ) {
    const max = ctx.config.maxMessageSize;
    this.fullLimits = {
      maxBulk: max,
      maxCommandBytes: max + 65536,
      maxArgs: 1048576,
      maxInline: 65536,
    };
    this.auth = !ctx.auth.required;
    this.parser = new RespParser(this.auth ? this.fullLimits : BEFORE_AUTH_LIMITS);
  }

  /** The client's address, for logs. */
  get remote(): string {
    return this.socket.remoteAddress ?? "unknown";
  }

  get authenticated(): boolean {
    return this.auth;
  }

  /** AUTH, HELLO AUTH and RESET: the input limits follow from the next argument on. */
  set authenticated(value: boolean) {
    this.auth = value;
    this.parser.setLimits(value ? this.fullLimits : BEFORE_AUTH_LIMITS);
  }

  /** The most pending input this connection may hold: one largest command and then some. */
  get maxHeld(): number {
    if (!this.auth) return BEFORE_AUTH_HELD;
    return Math.min(this.ctx.config.maxMessageSize + 1048576, this.ctx.config.maxInput);
  }

  /** Bytes received: parse and run commands until input runs out, a command blocks or output backs up. */
  received(chunk: Uint8Array): void {
    // The writes of one read share one clock read (read-clock.ts).
    const clock = this.ctx.clock;
    const began = clock.begin();
    try {
      this.parser.feed(chunk);
      this.runPending();
    } finally {
      if (began) clock.end();
    }
    // Input kept across reads must not be a view of the socket's read buffer.
    if ((this.blocked || this.stalled) && !this.closed) this.parser.detach();
  }

  /**
   * Output the client has not taken yet stops further commands: their replies would only pile up.
   * Replies are never a reason to cut a reader off; pushes are (see pushMessage).
   */
  private get backedUp(): boolean {
    return this.waiting.length > 0 || this.unsentBytes + this.out.length > this.ctx.config.sendBuffer;
  }

  runPending(): void {
    this.settleShared();
    this.running = true;
    while (!this.blocked && !this.closed && !this.quitting) {
      if (this.backedUp) {
        this.stalled = true;
        break;
      }
      const item = this.parser.nextCommand();
      if (item === undefined) break;
      if (isProblem(item)) {
        this.ctx.stats.protocolErrors++;
        this.out.error(`${RESP_PREFIX[item.code === "TOO_LARGE" ? "TOO_LARGE" : "BAD_REQUEST"]} ${item.error}`);
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
    this.running = false;
    // Only a half-sent command is timed (checkIdle): no clock read per read otherwise.
    if (this.parser.partial) this.inputSince = Date.now();
    this.endBatch();
    this.countInput();
  }

  /** Keeps the server's InputBudget up to date and enforces the per-connection and total limits. */
  private countInput(): void {
    if (this.closed) return;
    const held = this.parser.held;
    const grew = held > this.inputHeld;
    this.input.held += held - this.inputHeld;
    this.inputHeld = held;
    if (!grew) return;
    if (held > this.maxHeld) {
      this.failInput(`too much pending input: ${held} bytes (limit ${this.maxHeld}${this.auth ? "" : " before AUTH"})`);
    } else if (this.input.held > this.ctx.config.maxInput) {
      this.failInput(`the server holds too much pending input (--max-input ${this.ctx.config.maxInput} bytes)`);
    }
  }

  /** Closes for an input limit, letting go of the input at once. */
  private failInput(reason: string): void {
    this.ctx.stats.protocolErrors++;
    this.parser.discard();
    this.input.held -= this.inputHeld;
    this.inputHeld = 0;
    this.fail(reason);
  }

  /**
   * Called by the server's sweep: a half-sent command that gets no byte for `timeoutMs` is closed,
   * and so is a closing connection whose client has not read its last output for that long.
   */
  checkIdle(now: number, timeoutMs: number): void {
    if (this.closed) return;
    if (this.quitting) {
      if (now - this.outputSince > timeoutMs) this.close(true);
      return;
    }
    if (this.blocked || this.stalled || !this.parser.partial) return;
    if (now - this.inputSince > timeoutMs) this.failInput(`incomplete command idle for more than ${timeoutMs} ms (--input-timeout)`);
  }

  /**
   * Sends what the batch produced, after the store commits when there was a write. A batch the
   * store could not write answers -STORAGE to each of its commands instead (HeldReplies), and
   * the connection carries on.
   */
  endBatch(): void {
    this.settleShared();
    const durable = this.ctx.bus.flush();
    const replies = this.replies;
    this.replies = 0;
    if (!durable && this.held.empty) {
      if (this.out.length > 0) this.sendOut();
      if (this.quitting) this.close();
    } else {
      this.held.hold(durable, this.out.take(), replies);
    }
    if (this.held.empty) this.caughtUp();
  }

  /**
   * Moves waiting output to the socket while it takes everything (a SUB SINCE replay goes out
   * PUSH_CHUNK at a time, paced by the client's reading), then resumes stalled commands.
   */
  private caughtUp(): void {
    if (this.pumping || this.closed) return;
    this.pumping = true;
    try {
      while (this.waiting.length > 0 && this.unsentBytes === 0 && this.held.empty && !this.closed) {
        while (this.waiting.length > 0 && this.out.length < PUSH_CHUNK) this.writeWaiting(this.waiting.shift()!);
        this.endBatch();
      }
    } finally {
      this.pumping = false;
    }
    if (this.closed) return;
    if (this.quitting && this.held.empty && this.unsentBytes === 0 && this.waiting.length === 0) this.socket.end();
    if (this.stalled && !this.backedUp && !this.quitting) {
      this.stalled = false;
      queueMicrotask(() => {
        if (!this.closed) this.runPending();
      });
    }
  }

  private writeWaiting(item: Waiting): void {
    if (item.message === undefined) {
      this.out.raw(item.bytes);
      return;
    }
    if (item.counted) this.waitingBytes -= item.message.payload.length;
    this.writePush(item.message, item.frame === "redis");
  }

  private writePush(message: Message, redisFrame: boolean): void {
    writePush(this.out, message, redisFrame);
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

  /**
   * Writes the reply buffer straight to the socket: no copy unless the socket takes only part.
   * Replies go out from the read's own callback. Holding them to the end of the event-loop turn
   * and writing every connection's then (as Redis does before it sleeps) was measured: the same
   * writes, rate and CPU (redis-benchmark PING -P 16, 19 paired rounds: 1.007x the rate).
   */
  private sendOut(): void {
    const { bytes, length } = this.out;
    if (this.closed) {
      this.out.reset();
      return;
    }
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
    if (this.sharing) {
      this.settleShared();
      this.sendOut();
    }
    if (this.unsentBytes > 0) {
      this.queueUnsent(bytes.slice());
      return;
    }
    const written = this.socket.write(bytes);
    if (written < 0) return; // closing
    if (written < bytes.length) this.queueUnsent(bytes.slice(written));
    // Replies held for a commit went out: what waited behind them may follow.
    if (this.waiting.length > 0 || this.stalled) this.scheduleFlush();
  }

  /** What the socket did not take. Bounded by stalling commands (replies) and by pushMessage (pushes). */
  private queueUnsent(bytes: Uint8Array): void {
    this.unsent.push(bytes);
    this.unsentBytes += bytes.length;
  }

  drained(): void {
    this.outputSince = Date.now();
    while (this.unsent.length > 0) {
      const bytes = this.unsent[0]!;
      const written = this.socket.write(bytes);
      if (written < 0) return;
      if (written < bytes.length) {
        this.unsent[0] = bytes.subarray(written);
        this.unsentBytes -= written;
        break;
      }
      this.unsent.shift();
      this.unsentBytes -= bytes.length;
    }
    this.caughtUp();
  }

  /** Wakes a blocked command (message delivered or timed out) and carries on with the input. */
  unblock(): void {
    const blocked = this.blocked;
    if (!blocked) return;
    this.blocked = undefined;
    this.woken++;
    this.replies++;
    blocked.timer?.clear();
    for (const topic of blocked.topics) this.ctx.bus.cancel(topic, blocked.consumer);
    // Not inside the bus's delivery: carry on once the current call returns.
    queueMicrotask(() => {
      if (!this.closed) this.runPending();
    });
  }

  /**
   * A message for a subscription (a native frame for SUB, a Redis one for SUBSCRIBE) or an ON
   * consumer. Written at once while the socket keeps up; otherwise it waits, in order, as a
   * reference (`lent`: a message valid only during the call, so a copy). Live subscription pushes waiting are the backlog --send-buffer bounds: past it the
   * client is a slow consumer and is cut off. A SUB SINCE replay (the bus holds those messages
   * anyway) and ON deliveries (bounded by PREFETCH; `counted` false) never count.
   */
  pushMessage(message: Message, redisFrame: boolean, counted = !this.replaying, lent = false): void {
    if (this.closed) return;
    this.settleShared();
    if (this.waiting.length === 0 && this.unsentBytes === 0 && this.out.length < PUSH_CHUNK) {
      this.writePush(message, redisFrame);
      // A burst of pushes goes to the socket as it grows, so a reader that keeps up never waits.
      if (this.out.length >= PUSH_CHUNK && !this.pumping) this.endBatch();
      else this.scheduleFlush();
      return;
    }
    // A lent message (Subscriber.send) is valid only during the call: what waits is a copy.
    if (lent) message = { ...message, payload: copyBytes(message.payload) };
    this.waiting.push({ message, frame: redisFrame ? "redis" : "native", counted });
    if (!counted) return;
    this.waitingBytes += message.payload.length;
    if (this.waitingBytes > this.ctx.config.sendBuffer) this.slowConsumer();
  }

  /**
   * A command whose result comes later (the Redis engine): its reply keeps its place. The commands
   * after it go on running (pipelining: the engine runs them in order), their replies held behind.
   */
  later<T>(result: Promise<T>, write: (value: T) => void): void {
    this.settleShared();
    this.held.hold(null, this.out.take(), 0); // what this batch answered before goes first
    const reply = (produce: () => void): Uint8Array => {
      try {
        return this.rendered(produce);
      } catch (error) {
        return this.rendered(() => {
          if (isBusError(error)) this.out.error(respError(error));
          else {
            tcpLog.error(`internal error: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
            this.out.error("ERR internal error");
          }
        });
      }
    };
    this.held.holdLater(
      result.then(
        (value) => reply(() => write(value)),
        (error: unknown) =>
          reply(() => {
            throw error;
          }),
      ),
    );
  }

  /** The bytes `write` adds to the reply buffer, taken out of it. */
  private rendered(write: () => void): Uint8Array {
    const start = this.out.length;
    try {
      write();
      return this.out.bytes.slice(start, this.out.length);
    } finally {
      this.out.truncate(start);
    }
  }

  /** A woken blocked command's reply: written now, or behind the pushes that wait. */
  replyLate(write: () => void): void {
    this.settleShared();
    if (this.waiting.length === 0) {
      write();
    } else {
      const start = this.out.length;
      write();
      this.waiting.push({ bytes: this.out.bytes.slice(start, this.out.length) });
      this.out.truncate(start);
    }
    this.scheduleFlush();
  }

  private slowConsumer(): void {
    this.ctx.stats.slowConsumers++;
    const topics = [...this.subscriptions.keys()].slice(0, 5).join(", ");
    tcpLog.warn(
      `slow consumer on ${topics || "a subscription"} from ${this.remote}: ${this.waitingBytes} bytes of messages waiting for a client that does not read (--send-buffer ${this.ctx.config.sendBuffer}); disconnecting`,
    );
    this.dropOutput();
    this.close(true);
  }

  private dropOutput(): void {
    this.sharing?.release(this);
    this.unsent = [];
    this.unsentBytes = 0;
    this.waiting.clear();
    this.waitingBytes = 0;
  }

  private fail(reason: string): void {
    this.settleShared();
    tcpLog.warn(`closing a client connection: ${reason}`);
    this.out.error(`${RESP_PREFIX.BAD_REQUEST} ${reason}`);
    this.send(this.out.take());
    this.close();
  }

  /** Ends the connection after what is unsent has gone (or at once when `now`). */
  close(now = false): void {
    if (this.closed) return;
    if (this.sharing && !now) {
      this.settleShared();
      this.sendOut();
    }
    if (now || (this.unsentBytes === 0 && this.waiting.length === 0)) {
      this.socket.end();
    } else {
      if (!this.quitting) this.outputSince = Date.now();
      this.quitting = true;
    }
  }

  /**
   * Whether a fan-out group's push may be shared: nothing else is due on this connection before
   * it, it is not running commands, its RESP version is the group's, and no commit holds output.
   */
  canShare(resp3: boolean): boolean {
    return (
      this.sharing === undefined &&
      !this.running &&
      this.out.length === 0 &&
      this.unsentBytes === 0 &&
      this.waiting.length === 0 &&
      !this.closed &&
      !this.quitting &&
      !this.pumping &&
      this.held.empty &&
      this.out.resp3 === resp3 &&
      this.ctx.config.data === undefined
    );
  }

  /** Other output is about to be written: the shared frames due so far go first, copied into `out`. */
  settleShared(): void {
    const group = this.sharing;
    if (group === undefined) return;
    this.out.raw(group.framesFrom(this.sharedStart));
    group.release(this);
  }

  /** The turn's shared frames, bytes [start, end): written straight to the socket, no copy unless it takes only part. */
  takeShared(bytes: Uint8Array, start: number, end: number): void {
    if (this.closed) return;
    if (this.out.length > 0 || this.unsentBytes > 0 || this.waiting.length > 0) {
      // Not expected (other output settles first), but never out of order.
      this.out.raw(bytes.subarray(start, end));
      this.scheduleFlush();
      return;
    }
    const written = this.socket.write(bytes, start, end - start);
    if (written >= 0 && written < end - start) this.queueUnsent(bytes.slice(start + written, end));
  }

  /**
   * After a reload: a subscription (read) or ON consumer (take) the token may no longer have ends
   * the connection, after an error saying why; idle connections learn at their next command.
   */
  recheckRights(): void {
    if (this.closed || !this.ctx.auth.required || !this.authenticated) return;
    const auth = this.ctx.auth;
    let why: string | undefined;
    if (!auth.accepts(this.principal)) {
      if (this.subscriptions.size === 0 && this.consumers.size === 0 && !this.blocked) return;
      why = `${RESP_PREFIX.UNAUTHORIZED} the token is no longer accepted`;
    } else {
      for (const topic of this.subscriptions.keys())
        if (!auth.may(this.principal, topic, "read")) why ??= `${RESP_PREFIX.FORBIDDEN} this token may no longer read ${topic}`;
      for (const topic of this.consumers.keys())
        if (!auth.may(this.principal, topic, "take")) why ??= `${RESP_PREFIX.FORBIDDEN} this token may no longer take from ${topic}`;
    }
    if (!why) return;
    this.settleShared();
    tcpLog.info(`closing a connection from ${this.remote}: ${why.slice(why.indexOf(" ") + 1)} (the --acl file changed)`);
    for (const unsubscribe of this.subscriptions.values()) unsubscribe();
    this.subscriptions.clear();
    this.releaseConsumers();
    this.out.error(why);
    this.endBatch();
    this.close();
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
    this.sharing?.release(this);
    const bus = this.ctx.bus;
    if (this.blocked) {
      this.blocked.timer?.clear();
      for (const topic of this.blocked.topics) bus.cancel(topic, this.blocked.consumer);
      this.blocked = undefined;
    }
    for (const unsubscribe of this.subscriptions.values()) unsubscribe();
    this.subscriptions.clear();
    this.releaseConsumers();
    this.dropOutput();
    this.held.clear();
    this.parser.discard();
    this.input.held -= this.inputHeld;
    this.inputHeld = 0;
  }
}

export function startTcp(ctx: ServerContext): TCPSocketListener<Connection> {
  const { config, stats } = ctx;
  const input = new InputBudget();
  const connections = new Set<Connection>();
  // One sweep for every connection (not a timer per read): half-sent commands that stall.
  if (config.inputTimeout > 0) {
    const every = Math.min(1000, Math.max(50, Math.floor(config.inputTimeout / 4)));
    const sweep = setInterval(() => {
      const now = Date.now();
      for (const connection of connections) connection.checkIdle(now, config.inputTimeout);
    }, every);
    sweep.unref?.();
  }
  ctx.auth.onChange(() => {
    for (const connection of connections) connection.recheckRights();
  });
  const tls = config.tlsCert && config.tlsKey ? { cert: Bun.file(config.tlsCert), key: Bun.file(config.tlsKey) } : undefined;
  return Bun.listen<Connection>({
    hostname: config.host,
    port: config.port,
    ...(tls ? { tls } : {}),
    socket: {
      open(socket) {
        if (ctx.stopping || stats.openConnections >= config.maxConnections) {
          const reason = ctx.stopping ? "server is shutting down" : "server busy: max number of clients reached";
          socket.end(`-${RESP_PREFIX.UNAVAILABLE} ${reason}\r\n`);
          return;
        }
        socket.data = new Connection(socket, ctx, input);
        connections.add(socket.data);
        stats.opened("tcp");
      },
      data(socket, data) {
        socket.data?.received(data);
      },
      drain(socket) {
        socket.data?.drained();
      },
      close(socket) {
        if (socket.data) connections.delete(socket.data);
        if (!socket.data || socket.data.closed) return;
        socket.data.released();
        stats.closed("tcp");
      },
      error(_socket, error) {
        tcpLog.debug(`socket error: ${error.message}`);
      },
    },
  });
}
