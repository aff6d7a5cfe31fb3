// Replay-then-live for one reader (an SSE stream, a WebSocket with ?since): the bus's replay and
// the live messages after it wait here, in id order, until the transport can send them; live
// messages waiting are bounded by --send-buffer. Each transport drains it its own way.

import type { Engine } from "../core/engine.ts";
import { Deque } from "../core/deque.ts";
import type { Message } from "../core/message.ts";

export class CatchUp {
  /** Messages not yet sent: the replay first, then live ones, in id order. */
  private readonly pending = new Deque<Message>();
  /** Replay messages still in `pending` (the bus holds those anyway; only live ones count). */
  private replayLeft = 0;
  /** Payload bytes of live messages in `pending`: what the limit bounds. */
  private liveBytes = 0;
  private readonly unsubscribe: () => void;

  /**
   * Subscribes to `topic`, replaying from `since` (undefined: live only) into this buffer, all
   * synchronously: no gap, no duplicate. Live messages go to `live`, which sends one at once when
   * nothing waits and there is room, else `queue`s it. `limit`: --send-buffer.
   */
  constructor(
    bus: Engine,
    topic: string,
    since: number | undefined,
    private readonly limit: number,
    live: (message: Message) => void,
  ) {
    let replaying = true;
    this.unsubscribe = bus.subscribe(topic, { send: (m) => (replaying ? this.pending.push(m) : live(m)) }, since);
    replaying = false;
    this.replayLeft = this.pending.length;
  }

  /** Messages waiting to be sent. */
  get length(): number {
    return this.pending.length;
  }

  /**
   * Queues a live message behind what waits. False when what waited before it is past the limit
   * (a slow reader): one message bigger than the limit is not a backlog, whatever its size.
   */
  queue(message: Message): boolean {
    this.pending.push(message);
    this.liveBytes += message.payload.length;
    return this.liveBytes - message.payload.length <= this.limit;
  }

  /** The oldest waiting message, taken out; undefined when none waits. */
  next(): Message | undefined {
    const message = this.pending.shift();
    if (message === undefined) return undefined;
    if (this.replayLeft > 0) this.replayLeft--;
    else this.liveBytes -= message.payload.length;
    return message;
  }

  /** Leaves the bus and forgets what waits. */
  close(): void {
    this.unsubscribe();
    this.pending.clear();
    this.replayLeft = 0;
    this.liveBytes = 0;
  }
}
