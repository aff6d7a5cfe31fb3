// Live fan-out to TCP subscriptions (SUB, SUBSCRIBE): one bus subscriber per topic and frame form
// (native or Redis frame, RESP2 or RESP3) for every connection subscribed that way. It encodes each
// message once, into a buffer of this event-loop turn, and at the end of the turn each connection
// that took the turn's frames writes that buffer as it is: one socket.write per subscriber and
// turn, no copy per subscriber (Redis's pubsub shares one reply object among its subscribers the
// same way). A connection with anything else to send first (replies, other pushes, a backlog, a
// held commit) gets the message through its own path, Connection.pushMessage, which keeps the
// order and the --send-buffer limit. SUB … SINCE keeps a bus subscriber of its own (the replay).

import type { Message } from "../core/message.ts";
import type { Subscriber } from "../core/topic.ts";
import { PushEncoder } from "../protocol/frame.ts";
import { RespWriter } from "../protocol/resp-writer.ts";
import type { ServerContext } from "./context.ts";
import type { Connection } from "./tcp.ts";

/**
 * The shared buffer goes out mid-turn once it holds this much (or --send-buffer, if less), so a
 * read of pipelined PUBLISHes costs each subscriber one write: up to ~1,500 native frames of a
 * 100-byte message (~177 bytes each), where 64 KiB took a write per ~370. It also bounds what a
 * sharing connection holds uncounted when its socket takes only part of a write (takeShared): the
 * next turn's pushes find it backed up and wait, counted against --send-buffer (pushMessage).
 */
export const SHARED_CHUNK = 262144;

export class PushGroup implements Subscriber {
  readonly members = new Set<Connection>();
  /** Connections that take this turn's frames from `frames`, each from its own `sharedStart`; may hold stale entries. */
  private sharing: Connection[] = [];
  /** How many connections share this turn now (`sharing` without the stale entries). */
  private active = 0;
  /** Grows with the topic's traffic, up to about `flushAt` plus a frame. */
  private readonly frames = new RespWriter();
  private readonly encoder: PushEncoder;
  private readonly flushAt: number;
  private flushQueued = false;
  unsubscribe: () => void = () => {};

  constructor(
    private readonly ctx: ServerContext,
    readonly key: string,
    private readonly topic: string,
    readonly redisFrame: boolean,
    readonly resp3: boolean,
  ) {
    this.frames.resp3 = resp3;
    this.flushAt = Math.min(SHARED_CHUNK, ctx.config.sendBuffer);
    this.encoder = new PushEncoder(topic, redisFrame, resp3);
  }

  /** A user counts connections: the group stands for its members (subscriberCount, PUBLISH's reply). */
  get weight(): number {
    return this.members.size;
  }

  /** Frames are encoded at once; a member's own path copies what it keeps (pushMessage). */
  readonly takesLent = true;

  send(message: Message, lent = false): void {
    if (this.active < this.members.size) {
      const others = this.share();
      if (others !== undefined) for (const c of others) c.pushMessage(message, this.redisFrame, undefined, lent);
    }
    if (this.active === 0) return;
    this.encoder.write(this.frames, message);
    this.written();
  }

  /** A lent write's message as a range of its queue (Subscriber.sendLent): no Message made unless a member needs one. */
  sendLent(id: number, created: number, bytes: Uint8Array, start: number, end: number): void {
    if (this.active < this.members.size) {
      const others = this.share();
      if (others !== undefined) {
        const message: Message = { id, topic: this.topic, created, payload: bytes.subarray(start, end), deliveries: 0, origin: undefined };
        for (const c of others) c.pushMessage(message, this.redisFrame, undefined, true);
      }
    }
    if (this.active === 0) return;
    this.encoder.writeFields(this.frames, id, created, 0, bytes, start, end);
    this.written();
  }

  /**
   * Members not yet sharing this turn's frames join it from here on when they can; returns those
   * that cannot (they get the message through their own path), or undefined when there are none.
   */
  private share(): Connection[] | undefined {
    const start = this.frames.length;
    let others: Connection[] | undefined;
    for (const c of this.members) {
      if (c.sharing === this) continue;
      if (c.canShare(this.resp3)) {
        c.sharing = this;
        c.sharedStart = start;
        this.sharing.push(c);
        this.active++;
      } else {
        (others ??= []).push(c);
      }
    }
    return others;
  }

  /** A frame was added: the buffer goes out now when it is large, else at the end of the turn. */
  private written(): void {
    if (this.frames.length >= this.flushAt) this.flush();
    else if (!this.flushQueued) {
      this.flushQueued = true;
      queueMicrotask(() => {
        this.flushQueued = false;
        this.flush();
      });
    }
  }

  /** The frames from `start` on: what a sharing connection copies when other output must follow them. */
  framesFrom(start: number): Uint8Array {
    return this.frames.bytes.subarray(start, this.frames.length);
  }

  /** `c` stops sharing this turn (it copied its frames, or it is gone). */
  release(c: Connection): void {
    if (c.sharing !== this) return;
    c.sharing = undefined;
    this.active--;
  }

  /** Every connection still sharing writes its frames of this turn; the buffer starts over. */
  private flush(): void {
    const sharing = this.sharing;
    if (sharing.length === 0) return;
    this.sharing = [];
    this.active = 0;
    const bytes = this.frames.bytes;
    const end = this.frames.length;
    for (const c of sharing) {
      if (c.sharing !== this) continue;
      c.sharing = undefined;
      c.takeShared(bytes, c.sharedStart, end);
    }
    this.frames.reset();
  }

  leave(c: Connection): void {
    this.release(c);
    this.members.delete(c);
    if (this.members.size > 0) return;
    this.unsubscribe();
    groupsOf(this.ctx).delete(this.key);
  }
}

const groups = new WeakMap<ServerContext, Map<string, PushGroup>>();

function groupsOf(ctx: ServerContext): Map<string, PushGroup> {
  let map = groups.get(ctx);
  if (!map) groups.set(ctx, (map = new Map()));
  return map;
}

/**
 * Subscribes `c` to the live messages of `topic` (native frames, or Redis's with `redisFrame`),
 * through the topic's shared group. With `since`, a bus subscriber of its own replays first (the
 * Redis engine replays asynchronously, merging live messages in id order), and stays.
 * Returns the unsubscribe function.
 */
export function subscribePushes(c: Connection, topic: string, redisFrame: boolean, since?: number): () => void {
  if (since !== undefined) {
    const own = { takesLent: true, send: (m: Message, lent?: boolean) => c.pushMessage(m, redisFrame, undefined, lent) };
    return c.ctx.bus.subscribe(topic, own, since);
  }
  const resp3 = c.out.resp3;
  const key = `${redisFrame ? "r" : "n"}${resp3 ? 3 : 2}:${topic}`;
  const map = groupsOf(c.ctx);
  let group = map.get(key);
  if (!group) {
    const created = new PushGroup(c.ctx, key, topic, redisFrame, resp3);
    created.unsubscribe = c.ctx.bus.subscribe(topic, created); // a bad topic name throws here, leaving nothing
    map.set(key, (group = created));
  }
  group.members.add(c);
  const joined = group;
  return () => joined.leave(c);
}
