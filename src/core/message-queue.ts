// A topic's queue in a compact layout: messages written in id order are packed into per-topic
// chunks of bytes (a small header of varints, then the payload), as Redis packs a list into
// listpacks, instead of one object and one payload array each. What the garbage collector sees is
// a few chunks, not a million objects. Taking a message builds its Message (with its own copy of
// the payload) again. Messages put back at the head (nack, expiry of a lease, undo) stay objects.

import { Deque } from "./deque.ts";
import type { Message } from "./message.ts";

/** Chunks grow with the queue from this size... */
const MIN_CHUNK = 256;
/** ...up to this size; a payload larger than a chunk gets a chunk of its own. */
const MAX_CHUNK = 16384;
/** Payloads larger than this are kept as they came (their own array): copying them buys nothing. */
const PACKED_MAX = 8192;
/** Whether the queue copies a payload of this size into its chunks (a message of the topic, no origin). */
export function packs(length: number): boolean {
  return length <= PACKED_MAX;
}

/** An entry's header is at most four varints of 7 bytes (53-bit numbers, zigzag). */
const HEADER_MAX = 32;

/** Bytes holding a run of consecutive entries; ids and times are stored relative to its first. */
interface Chunk {
  bytes: Uint8Array;
  /** Where the next entry is written. */
  used: number;
  /** Where the oldest unread entry starts. */
  head: number;
  baseId: number;
  baseCreated: number;
}

/**
 * An entry is varint(length * 2 + external): an external entry (a payload too large to pack, or a
 * message of another shape: a dead letter's origin) is the next Message of `external`; a packed
 * one continues with varint(zigzag(id - baseId)), varint(zigzag(created - baseCreated)),
 * varint(deliveries) and the payload.
 */
export class MessageQueue {
  /** Put back at the head (unshift): objects, before everything packed. */
  private readonly front = new Deque<Message>();
  private readonly chunks = new Deque<Chunk>();
  private readonly external = new Deque<Message>();
  private packed = 0;
  /** Payload bytes of the packed entries: sizes the next chunk. */
  private packedBytes = 0;

  constructor(readonly topic: string) {}

  get length(): number {
    return this.front.length + this.packed;
  }

  /** Bytes of chunk memory held now (for reports; the bus counts messageCost per message). */
  get chunkBytes(): number {
    let total = 0;
    for (const chunk of this.chunks) total += chunk.bytes.length;
    return total;
  }

  push(message: Message): void {
    const length = message.payload.length;
    if (length <= PACKED_MAX && message.origin === undefined && message.topic === this.topic) {
      this.pushPacked(message.id, message.created, message.deliveries, message.payload);
      return;
    }
    const chunk = this.room(HEADER_MAX, message.id, message.created);
    chunk.used = writeVarint(chunk.bytes, chunk.used, length * 2 + 1);
    this.external.push(message);
    this.packed++;
  }

  /**
   * Queues a message of this topic without an object for it: its payload, payload[start, end), is
   * copied (see packs()).
   */
  pushPacked(id: number, created: number, deliveries: number, payload: Uint8Array, start = 0, end = payload.length): void {
    const length = end - start;
    const chunk = this.room(length + HEADER_MAX, id, created);
    const bytes = chunk.bytes;
    let at = writeVarint(bytes, chunk.used, length * 2);
    at = writeVarint(bytes, at, zigzag(id - chunk.baseId));
    at = writeVarint(bytes, at, zigzag(created - chunk.baseCreated));
    at = writeVarint(bytes, at, deliveries);
    copyRange(bytes, at, payload, start, end);
    chunk.used = at + length;
    this.packedBytes += length;
    this.packed++;
  }

  /** The tail chunk when `need` bytes fit there, else a new one sized to the queue. */
  private room(need: number, id: number, created: number): Chunk {
    const tail = this.chunks.at(this.chunks.length - 1);
    if (tail && tail.used + need <= tail.bytes.length) return tail;
    // Every chunk holds an entry, but for a lone empty one kept for reuse: too small, it goes.
    if (tail && tail.head === tail.used) this.chunks.clear();
    let size = MIN_CHUNK;
    while (size < this.packedBytes && size < MAX_CHUNK) size *= 2;
    const chunk: Chunk = { bytes: new Uint8Array(Math.max(size, need)), used: 0, head: 0, baseId: id, baseCreated: created };
    this.chunks.push(chunk);
    return chunk;
  }

  unshift(message: Message): void {
    this.front.unshift(message);
  }

  /**
   * Takes the oldest message. With `lend`, a packed one's payload is a view of the chunk, valid
   * only until the queue is next written (a drop that only reads its size and id).
   */
  shift(lend = false): Message | undefined {
    if (this.front.length > 0) return this.front.shift();
    if (this.packed === 0) return undefined;
    const chunk = this.chunks.peek()!;
    const message = this.read(chunk, chunk.head, lend ? "lend" : "shift");
    chunk.head = pos;
    this.packed--;
    if (chunk.head === chunk.used) this.release(chunk);
    return message;
  }

  /** A chunk read to its end: dropped, unless it is the only one, which is reused from its start. */
  private release(chunk: Chunk): void {
    if (this.chunks.length > 1) {
      this.chunks.shift();
    } else if (chunk.bytes.length > MIN_CHUNK * 4) {
      this.chunks.clear(); // an empty queue keeps no large chunk
    } else {
      chunk.used = 0;
      chunk.head = 0;
    }
  }

  pop(): Message | undefined {
    if (this.packed === 0) return this.front.pop();
    const chunk = this.chunks.at(this.chunks.length - 1)!;
    // The newest entry is the last one before `used`: walk the chunk to it.
    let start = chunk.head;
    for (skip(chunk.bytes, start); pos < chunk.used; skip(chunk.bytes, start)) start = pos;
    const message = this.read(chunk, start, "pop");
    chunk.used = start;
    this.packed--;
    if (chunk.head === chunk.used) {
      if (this.chunks.length > 1) this.chunks.pop();
      else this.release(chunk);
    }
    return message;
  }

  peek(): Message | undefined {
    if (this.front.length > 0) return this.front.peek();
    if (this.packed === 0) return undefined;
    const chunk = this.chunks.peek()!;
    return this.read(chunk, chunk.head, "peek");
  }

  /** The oldest message's write time, without building it (expiry looks at it on every take). */
  peekCreated(): number | undefined {
    if (this.front.length > 0) return this.front.peek()!.created;
    if (this.packed === 0) return undefined;
    const chunk = this.chunks.peek()!;
    pos = chunk.head;
    if (varint(chunk.bytes) % 2 === 1) return this.external.peek()!.created;
    varint(chunk.bytes);
    return chunk.baseCreated + unzigzag(varint(chunk.bytes));
  }

  /** The message at `index` from the head: O(n), for the rare look past the head (undo). */
  at(index: number): Message | undefined {
    if (index < 0 || index >= this.length) return undefined;
    let i = 0;
    for (const message of this) if (i++ === index) return message;
    return undefined;
  }

  /** Removes the first message matching `pred`; O(n): rebuilds the queue (undo only). */
  removeFirst(pred: (message: Message) => boolean): Message | undefined {
    const all = [...this];
    const index = all.findIndex(pred);
    if (index < 0) return undefined;
    const front = this.front.length - (index < this.front.length ? 1 : 0);
    const [removed] = all.splice(index, 1);
    this.clear();
    for (let i = 0; i < all.length; i++) {
      if (i < front) this.front.push(all[i]!);
      else this.push(all[i]!);
    }
    return removed;
  }

  *[Symbol.iterator](): IterableIterator<Message> {
    yield* this.front;
    let external = 0;
    for (const chunk of this.chunks) {
      let at = chunk.head;
      while (at < chunk.used) {
        pos = at;
        const isExternal = varint(chunk.bytes) % 2 === 1;
        const message = isExternal ? this.external.at(external++)! : this.read(chunk, at, "peek");
        skip(chunk.bytes, at);
        at = pos;
        yield message;
      }
    }
  }

  clear(): void {
    this.front.clear();
    this.chunks.clear();
    this.external.clear();
    this.packed = 0;
    this.packedBytes = 0;
  }

  /**
   * Builds the entry at `at` with its own copy of the payload ("lend": a view); leaves `pos` after
   * it. "shift", "lend" and "pop" consume it (an external entry leaves `external` from that end).
   */
  private read(chunk: Chunk, at: number, how: "shift" | "lend" | "pop" | "peek"): Message {
    const bytes = chunk.bytes;
    pos = at;
    const head = varint(bytes);
    if (head % 2 === 1) {
      return how === "pop" ? this.external.pop()! : how === "peek" ? this.external.peek()! : this.external.shift()!;
    }
    const length = head / 2;
    const id = chunk.baseId + unzigzag(varint(bytes));
    const created = chunk.baseCreated + unzigzag(varint(bytes));
    const deliveries = varint(bytes);
    const start = pos;
    pos = start + length;
    if (how !== "peek") this.packedBytes -= length;
    const payload = how === "lend" ? bytes.subarray(start, start + length) : bytes.slice(start, start + length);
    return { id, topic: this.topic, created, payload, deliveries, origin: undefined };
  }
}

/** Where the last varint read (or skip) ended: the readers' cursor, shared as they never nest. */
let pos = 0;

function varint(bytes: Uint8Array): number {
  let byte = bytes[pos++]!;
  if (byte < 128) return byte;
  let value = byte - 128;
  let scale = 128;
  for (;;) {
    byte = bytes[pos++]!;
    if (byte < 128) return value + byte * scale;
    value += (byte - 128) * scale;
    scale *= 128;
  }
}

/** Moves `pos` past the entry at `at`. */
function skip(bytes: Uint8Array, at: number): void {
  pos = at;
  const head = varint(bytes);
  if (head % 2 === 1) return;
  varint(bytes);
  varint(bytes);
  varint(bytes);
  pos += head / 2;
}

/** Below this a byte loop beats the native copy's call (both beat making a view to set()). */
const COPY_LOOP_MAX = 32;
const bufferCopy = Buffer.prototype.copy;

/**
 * Copies source[start, end) into target at `at` without making a view of the range: a view of
 * socket data costs more than copying 100 bytes (measured: 50-70 ns, and some 300 ns for the
 * first view of a read). Buffer.prototype.copy takes any Uint8Array as its source.
 */
function copyRange(target: Uint8Array, at: number, source: Uint8Array, start: number, end: number): void {
  if (end - start <= COPY_LOOP_MAX) {
    for (let i = start; i < end; i++) target[at++] = source[i]!;
  } else {
    bufferCopy.call(source, target, at, start, end);
  }
}

function writeVarint(bytes: Uint8Array, at: number, value: number): number {
  while (value >= 128) {
    bytes[at++] = (value % 128) + 128;
    value = Math.floor(value / 128);
  }
  bytes[at++] = value;
  return at;
}

function zigzag(n: number): number {
  return n >= 0 ? n * 2 : -n * 2 - 1;
}

function unzigzag(n: number): number {
  return n % 2 === 0 ? n / 2 : -(n + 1) / 2;
}
