// A topic's queue in a compact layout: messages written in id order are packed into per-topic
// chunks of bytes (a small header of varints, then the payload), as Redis packs a list into
// listpacks, instead of one object and one payload array each. What the garbage collector sees is
// a few chunks, not a million objects. Taking a message builds its Message (with its own copy of
// the payload) again, or (shiftInto) writes its payload straight from the chunk into a reply. Messages put back at the head (nack, expiry of a lease, undo) stay objects.

import { Deque } from "./deque.ts";
import type { Message } from "./message.ts";

/** Where shiftInto writes a taken payload, bytes[start, end), at once (a reply writer's bulk string). */
export interface PayloadSink {
  bulkRange(bytes: Uint8Array, start: number, end: number): void;
}

/** A sink that keeps nothing: shiftInto(DISCARD) drops the oldest message by its id and length. */
export const DISCARD: PayloadSink = { bulkRange() {} };

/** Chunks grow with the queue from this size... */
const MIN_CHUNK = 256;
/** ...up to this size while a chunk may be as large as everything the topic holds... */
const SMALL_CHUNK = 16384;
/** ...and on, for a long queue, while a chunk is at most 1/LONG_QUEUE of it (so is its slack). */
const MAX_CHUNK = 1048576;
const LONG_QUEUE = 16;
/** Payloads larger than this are kept as they came (their own array): copying them buys nothing. */
const PACKED_MAX = 8192;
/** Whether the queue copies a payload of this size into its chunks (a message of the topic, no origin). */
export function packs(length: number): boolean {
  return length <= PACKED_MAX;
}

/**
 * An entry's kind: its first varint's low two bits. The rest of that varint is 0 when the payload
 * is as long as the one before, else its length + 1. The common entry, the next id written in the
 * same millisecond as the one before, never delivered, and as long, is written in a run (below).
 */
const NEXT = 0; // id = previous + 1, created = previous, deliveries 0
const EXTERNAL = 1; // the next Message of `external`; the running id and time do not move
/**
 * A run: varint(count * 4 + EXTERNAL), one byte for a count of 1 to MAX_RUN, stands for `count`
 * entries that would each be NEXT as long as the one before (and not empty): their payloads
 * follow back to back, with no header of their own. The writer counts up the run it opened last
 * while such entries come, up to MAX_RUN, and only while no reader has started on it (a reader in
 * a run knows how many of its entries are left). So 1,000 such entries take 33 bytes of headers.
 */
const MAX_RUN = 31;
const LATER = 2; // id = previous + 1, deliveries 0, then varint(created - previous created)
const FULL = 3; // varint(zigzag(id - previous - 1)), varint(zigzag(created - previous)), varint(deliveries)

/** An entry's header is at most four varints of 8 bytes (53-bit numbers). */
const HEADER_MAX = 32;
/** Differences beyond this start a chunk (the first entry is relative to itself): zigzag stays exact. */
const DELTA_MAX = 2 ** 50;

/**
 * Bytes holding a run of consecutive entries. Ids, times and lengths are stored relative to the
 * packed entry before, so the chunk keeps those "before" the oldest unread entry (for readers) and
 * those of the newest entry (for the writer); a new chunk starts from its first message.
 */
interface Chunk {
  bytes: Uint8Array;
  /** Where the next entry is written. */
  used: number;
  /** Where the oldest unread entry starts. */
  head: number;
  /** The id, time and length the entry at `head` is relative to. */
  headId: number;
  headCreated: number;
  headLength: number;
  /** The id, time and length of the newest packed entry (what the next one is written relative to). */
  tailId: number;
  tailCreated: number;
  tailLength: number;
  /** Entries of the run `head` is in that are still to read, headerless (0: `head` is at a header). */
  headRun: number;
  /** Where the header of the run the writer may add to is (-1: none; it is the chunk's last entry). */
  runAt: number;
}

/**
 * A queue is objects put back at the head (`front`), then chunks of entries in id order. An entry
 * is varint(length * 4 + kind) (length: see NEXT, EXTERNAL, LATER, FULL), the varints its kind
 * adds, and for a packed kind the payload; or it is one of a run's (MAX_RUN). An external entry (a
 * payload too large to pack, or a message of another shape: a dead letter's origin) stands for
 * the next Message of `external`.
 */
export class MessageQueue {
  /** Put back at the head (unshift): objects, before everything packed. */
  private readonly front = new Deque<Message>();
  private readonly chunks = new Deque<Chunk>();
  /** The newest chunk (the writer's), kept at hand: undefined when there is no chunk. */
  private tail: Chunk | undefined;
  private readonly external = new Deque<Message>();
  private packed = 0;
  /**
   * The bytes of a chunk read to its end and dropped, kept for the next new chunk of that size: a
   * long queue written and read at once (a full topic under drop-oldest) allocates no chunk. Kept
   * only while the queue holds LONG_QUEUE times as much (slack as a chunk's own), and one at most.
   */
  private spare: Uint8Array | undefined;
  /** Payload bytes of the packed entries: sizes the next chunk. */
  private packedBytes = 0;

  constructor(readonly topic: string) {}

  get length(): number {
    return this.front.length + this.packed;
  }

  /** Messages held as objects (put back at the head, or external entries), not packed: the bus charges them more. */
  get objects(): number {
    return this.front.length + this.external.length;
  }

  /** Bytes of chunk memory held now (for reports; the bus counts messageCost per message). */
  get chunkBytes(): number {
    let total = 0;
    for (const chunk of this.chunks) total += chunk.bytes.length;
    return total + (this.spare?.length ?? 0);
  }

  /** Bytes of the entries held in the chunks (headers and payloads): chunkBytes less the slack. */
  get entryBytes(): number {
    let total = 0;
    for (const chunk of this.chunks) total += chunk.used - chunk.head;
    return total;
  }

  push(message: Message): void {
    const length = message.payload.length;
    if (length <= PACKED_MAX && message.origin === undefined && message.topic === this.topic) {
      this.pushPacked(message.id, message.created, message.deliveries, message.payload);
      return;
    }
    const chunk = this.room(HEADER_MAX, message.id, message.created);
    chunk.used = writeVarint(chunk.bytes, chunk.used, EXTERNAL);
    chunk.runAt = -1;
    this.external.push(message);
    this.packed++;
  }

  /**
   * Queues a message of this topic without an object for it: its payload, payload[start, end), is
   * copied (see packs()). Returns where the copy starts in `tailBytes` (no view of it is made):
   * valid only until the queue is next read or written (what a lent write's subscribers see).
   */
  pushPacked(id: number, created: number, deliveries: number, payload: Uint8Array, start = 0, end = payload.length): number {
    const length = end - start;
    let chunk = this.tail;
    // The common entry first: one more of the run the tail chunk's writer has open (see MAX_RUN),
    // with room as room() would see it. Its header byte counts it; nothing else is decided.
    if (
      chunk !== undefined &&
      id === chunk.tailId + 1 &&
      created === chunk.tailCreated &&
      length === chunk.tailLength &&
      deliveries === 0 &&
      length > 0 &&
      chunk.runAt >= chunk.head &&
      chunk.bytes[chunk.runAt]! < MAX_RUN * 4 + EXTERNAL &&
      chunk.used + length + HEADER_MAX <= chunk.bytes.length
    ) {
      const at = chunk.used;
      chunk.bytes[chunk.runAt] += 4;
      copyRange(chunk.bytes, at, payload, start, end);
      chunk.used = at + length;
      chunk.tailId = id;
      this.packedBytes += length;
      this.packed++;
      return at;
    }
    const far = chunk !== undefined && (Math.abs(id - chunk.tailId) > DELTA_MAX || Math.abs(created - chunk.tailCreated) > DELTA_MAX);
    chunk = far ? this.fresh(length + HEADER_MAX, id, created) : this.room(length + HEADER_MAX, id, created);
    const bytes = chunk.bytes;
    const sameRun = deliveries === 0 && id === chunk.tailId + 1;
    const lengthCode = length === chunk.tailLength ? 0 : (length + 1) * 4;
    let at: number;
    if (sameRun && created === chunk.tailCreated && lengthCode === 0 && length > 0) {
      // One of a run (not an empty one: an entry of a run is where its payload is, so it has
      // one): counted in the open run's header while it may grow, else a new run of one.
      const runAt = chunk.runAt;
      if (runAt >= chunk.head && bytes[runAt]! < MAX_RUN * 4 + EXTERNAL) {
        bytes[runAt] += 4;
        at = chunk.used;
      } else {
        chunk.runAt = chunk.used;
        bytes[chunk.used] = 4 + EXTERNAL;
        at = chunk.used + 1;
      }
    } else if (sameRun && created === chunk.tailCreated) {
      chunk.runAt = -1;
      at = writeVarint(bytes, chunk.used, lengthCode + NEXT);
    } else if (sameRun && created > chunk.tailCreated) {
      chunk.runAt = -1;
      at = writeVarint(bytes, chunk.used, lengthCode + LATER);
      at = writeVarint(bytes, at, created - chunk.tailCreated);
    } else {
      chunk.runAt = -1;
      at = writeVarint(bytes, chunk.used, lengthCode + FULL);
      at = writeVarint(bytes, at, zigzag(id - chunk.tailId - 1));
      at = writeVarint(bytes, at, zigzag(created - chunk.tailCreated));
      at = writeVarint(bytes, at, deliveries);
    }
    copyRange(bytes, at, payload, start, end);
    chunk.used = at + length;
    chunk.tailId = id;
    chunk.tailCreated = created;
    chunk.tailLength = length;
    this.packedBytes += length;
    this.packed++;
    return at;
  }

  /** The bytes of the newest chunk: where pushPacked's payload is. */
  get tailBytes(): Uint8Array {
    return this.tail!.bytes;
  }

  /** The tail chunk when `need` bytes fit there, else a new one (fresh()). */
  private room(need: number, id: number, created: number): Chunk {
    const tail = this.tail;
    if (tail !== undefined && tail.used + need <= tail.bytes.length) return tail;
    return this.fresh(need, id, created);
  }

  /** A new tail chunk sized to the queue (at least `need` bytes), its first entry to be `id` written at `created`. */
  private fresh(need: number, id: number, created: number): Chunk {
    const tail = this.tail;
    // Every chunk holds an entry, but for a lone empty one kept for reuse: it goes.
    if (tail && tail.head === tail.used) this.chunks.clear();
    const size = Math.max(chunkSize(this.packedBytes), need);
    let bytes = this.spare;
    this.spare = undefined;
    if (bytes === undefined || bytes.length !== size) bytes = new Uint8Array(size);
    const chunk: Chunk = {
      bytes,
      used: 0,
      head: 0,
      headId: id - 1,
      headCreated: created,
      headLength: -1, // none: the first entry says its length
      tailId: id - 1,
      tailCreated: created,
      tailLength: -1,
      headRun: 0,
      runAt: -1,
    };
    this.chunks.push(chunk);
    this.tail = chunk;
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
    readHeader(chunk.bytes, chunk.head, chunk.headId, chunk.headCreated, chunk.headLength, chunk.headRun);
    let message: Message;
    if (entryKind === EXTERNAL) {
      message = this.external.shift()!;
    } else {
      message = this.build(chunk.bytes, lend);
      this.packedBytes -= entryLength;
      chunk.headId = entryId;
      chunk.headCreated = entryCreated;
      chunk.headLength = entryLength;
    }
    chunk.head = pos + entryLength;
    chunk.headRun = entryRun;
    this.packed--;
    if (chunk.head === chunk.used) this.release(chunk);
    return message;
  }

  /**
   * Takes the oldest message straight into `sink` (a reply writer): a packed one's payload is
   * written from its chunk, with no Message object and no copy of its own. Returns false when the
   * queue is empty; else the taken message's id, length and deliveries are in `taken`.
   */
  shiftInto(sink: PayloadSink): boolean {
    return this.takeHead(sink, 0);
  }

  /**
   * Drops the oldest message if its payload is at least `minLength` bytes (what a write must free
   * to fit), reading its header once: true, with its id, length and deliveries in `taken`; false,
   * dropping nothing, when the queue is empty or that payload is shorter.
   */
  dropHead(minLength: number): boolean {
    // The usual oldest entry of a full topic: one of a run the head is in, headerless. It is as
    // long as the entry before it and the next id, written at the same time, never delivered.
    const chunk = this.front.length === 0 && this.packed > 0 ? this.chunks.peek()! : undefined;
    if (chunk === undefined || chunk.headRun === 0) return this.takeHead(DISCARD, minLength);
    const length = chunk.headLength;
    if (length < minLength) return false;
    const taken = this.taken;
    taken.id = ++chunk.headId;
    taken.length = length;
    taken.deliveries = 0;
    chunk.head += length;
    chunk.headRun--;
    this.packedBytes -= length;
    this.packed--;
    if (chunk.head === chunk.used) this.release(chunk);
    return true;
  }

  /** shiftInto, of an oldest message whose payload is at least `minLength` bytes (else false, nothing taken). */
  private takeHead(sink: PayloadSink, minLength: number): boolean {
    const taken = this.taken;
    let message: Message | undefined; // a message object taken (put back, or external)
    if (this.front.length > 0) {
      if (this.front.peek()!.payload.length < minLength) return false;
      message = this.front.shift()!;
    } else if (this.packed === 0) {
      return false;
    } else {
      const chunk = this.chunks.peek()!;
      readHeader(chunk.bytes, chunk.head, chunk.headId, chunk.headCreated, chunk.headLength, chunk.headRun);
      const start = pos;
      const length = entryLength;
      if (entryKind === EXTERNAL) {
        if (this.external.peek()!.payload.length < minLength) return false;
        message = this.external.shift()!;
      } else {
        if (length < minLength) return false;
        taken.id = entryId;
        taken.length = length;
        taken.deliveries = entryDeliveries;
        this.packedBytes -= length;
        chunk.headId = entryId;
        chunk.headCreated = entryCreated;
        chunk.headLength = length;
      }
      chunk.head = start + length;
      chunk.headRun = entryRun;
      this.packed--;
      // Released or reused, the chunk's bytes stay as they are until the queue is next written.
      if (chunk.head === chunk.used) this.release(chunk);
      if (!message) {
        sink.bulkRange(chunk.bytes, start, start + length);
        return true;
      }
    }
    taken.id = message.id;
    taken.length = message.payload.length;
    taken.deliveries = message.deliveries;
    sink.bulkRange(message.payload, 0, message.payload.length);
    return true;
  }

  /** The oldest message's payload length, without building it (-1: the queue is empty). */
  headLength(): number {
    if (this.front.length > 0) return this.front.peek()!.payload.length;
    if (this.packed === 0) return -1;
    const chunk = this.chunks.peek()!;
    readHeader(chunk.bytes, chunk.head, chunk.headId, chunk.headCreated, chunk.headLength, chunk.headRun);
    return entryKind === EXTERNAL ? this.external.peek()!.payload.length : entryLength;
  }

  /** What shiftInto took last (the entry itself is gone). */
  readonly taken = { id: 0, length: 0, deliveries: 0 };

  /** A chunk read to its end: dropped (its bytes the spare, see `spare`), unless it is the only one, which is reused from its start. */
  private release(chunk: Chunk): void {
    if (this.chunks.length > 1) {
      this.chunks.shift();
      this.spare = this.packedBytes >= chunk.bytes.length * LONG_QUEUE ? chunk.bytes : undefined;
      return;
    }
    this.spare = undefined;
    if (chunk.bytes.length > MIN_CHUNK * 4) {
      this.chunks.clear(); // an empty queue keeps no large chunk
      this.tail = undefined;
    } else {
      // Read to its end, the chunk's head id, time and length are its tail's: the next entry follows on.
      chunk.used = 0;
      chunk.head = 0;
      chunk.runAt = -1;
    }
  }

  pop(): Message | undefined {
    if (this.packed === 0) return this.front.pop();
    const chunk = this.tail!;
    // The newest entry is the last one before `used`: walk the chunk to it, with the id, time and
    // length each entry is relative to.
    let start = chunk.head;
    let beforeId = chunk.headId;
    let beforeCreated = chunk.headCreated;
    let beforeLength = chunk.headLength;
    let run = chunk.headRun;
    // Where the header of the run the entry at `start` is in is (-1: none, or behind the head).
    let runHeader = -1;
    for (;;) {
      if (run === 0) runHeader = isRunHeader(chunk.bytes[start]!) ? start : -1;
      readHeader(chunk.bytes, start, beforeId, beforeCreated, beforeLength, run);
      if (pos + entryLength === chunk.used) break;
      start = pos + entryLength;
      run = entryRun;
      if (entryKind !== EXTERNAL) {
        beforeId = entryId;
        beforeCreated = entryCreated;
        beforeLength = entryLength;
      }
    }
    // The newest entry of a run: the run has one entry less. When it was the run's first (its
    // header at `start`), header and all go; else its count, in the header or (a run the head is
    // in, whose header no reader reads again) in the head's count, goes down.
    if (run > 0) {
      if (runHeader >= 0) chunk.bytes[runHeader]! -= 4;
      else chunk.headRun--;
    } else if (start === chunk.runAt) {
      chunk.runAt = -1;
    }
    let message: Message;
    if (entryKind === EXTERNAL) {
      message = this.external.pop()!;
    } else {
      message = this.build(chunk.bytes, false);
      this.packedBytes -= entryLength;
    }
    chunk.used = start;
    chunk.tailId = beforeId;
    chunk.tailCreated = beforeCreated;
    chunk.tailLength = beforeLength;
    this.packed--;
    if (chunk.head === chunk.used) {
      if (this.chunks.length > 1) {
        this.chunks.pop();
        this.tail = this.chunks.at(this.chunks.length - 1);
      } else {
        this.release(chunk);
      }
    }
    return message;
  }

  peek(): Message | undefined {
    if (this.front.length > 0) return this.front.peek();
    if (this.packed === 0) return undefined;
    const chunk = this.chunks.peek()!;
    readHeader(chunk.bytes, chunk.head, chunk.headId, chunk.headCreated, chunk.headLength, chunk.headRun);
    return entryKind === EXTERNAL ? this.external.peek()! : this.build(chunk.bytes, false);
  }

  /** The oldest message's write time, without building it (expiry looks at it on every take). */
  peekCreated(): number | undefined {
    if (this.front.length > 0) return this.front.peek()!.created;
    if (this.packed === 0) return undefined;
    const chunk = this.chunks.peek()!;
    readHeader(chunk.bytes, chunk.head, chunk.headId, chunk.headCreated, chunk.headLength, chunk.headRun);
    return entryKind === EXTERNAL ? this.external.peek()!.created : entryCreated;
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
      let beforeId = chunk.headId;
      let beforeCreated = chunk.headCreated;
      let beforeLength = chunk.headLength;
      let run = chunk.headRun;
      while (at < chunk.used) {
        // The cursor is shared: everything read from it is kept before the yield.
        readHeader(chunk.bytes, at, beforeId, beforeCreated, beforeLength, run);
        at = pos + entryLength;
        run = entryRun;
        let message: Message;
        if (entryKind === EXTERNAL) {
          message = this.external.at(external++)!;
        } else {
          message = this.build(chunk.bytes, false);
          beforeId = entryId;
          beforeCreated = entryCreated;
          beforeLength = entryLength;
        }
        yield message;
      }
    }
  }

  clear(): void {
    this.front.clear();
    this.chunks.clear();
    this.tail = undefined;
    this.spare = undefined;
    this.external.clear();
    this.packed = 0;
    this.packedBytes = 0;
  }

  /** The packed entry readHeader just read, with its own copy of the payload (`lend`: a view). */
  private build(bytes: Uint8Array, lend: boolean): Message {
    const payload = lend ? bytes.subarray(pos, pos + entryLength) : bytes.slice(pos, pos + entryLength);
    return { id: entryId, topic: this.topic, created: entryCreated, payload, deliveries: entryDeliveries, origin: undefined };
  }
}

/** How large a new chunk is for a topic holding `held` payload bytes in its chunks. */
export function chunkSize(held: number): number {
  let size = MIN_CHUNK;
  while (size < held && size < SMALL_CHUNK) size *= 2;
  while (size * 2 * LONG_QUEUE <= held && size < MAX_CHUNK) size *= 2;
  return size;
}

// What readHeader read: shared by the readers, as they never nest. `pos` is where the payload
// starts; an external entry has `entryLength` 0 and moves no id, time or length of the chunk's; an
// entry of a run reads as NEXT, with `entryRun` entries of its run after it.
let pos = 0;
let entryKind = 0;
let entryRun = 0;
let entryLength = 0;
let entryId = 0;
let entryCreated = 0;
let entryDeliveries = 0;

/**
 * Reads the entry at `at`, relative to the id, time and length of the packed entry before: its
 * header, or none when it is one of the `run` entries left of a run (`run` 0: a header is at `at`).
 */
function readHeader(bytes: Uint8Array, at: number, beforeId: number, beforeCreated: number, beforeLength: number, run: number): void {
  pos = at;
  entryId = beforeId + 1;
  entryCreated = beforeCreated;
  entryDeliveries = 0;
  if (run > 0) {
    entryKind = NEXT;
    entryLength = beforeLength;
    entryRun = run - 1;
    return;
  }
  entryRun = 0;
  const head = varint(bytes);
  entryKind = head % 4;
  if (entryKind === EXTERNAL) {
    if (head === EXTERNAL) {
      entryLength = 0;
      return;
    }
    entryKind = NEXT; // a run's first entry
    entryLength = beforeLength;
    entryRun = (head - EXTERNAL) / 4 - 1;
    return;
  }
  const lengthCode = (head - entryKind) / 4;
  entryLength = lengthCode === 0 ? beforeLength : lengthCode - 1;
  if (entryKind === NEXT) return;
  if (entryKind === LATER) {
    entryCreated += varint(bytes);
  } else {
    entryId += unzigzag(varint(bytes));
    entryCreated += unzigzag(varint(bytes));
    entryDeliveries = varint(bytes);
  }
}

/** Whether an entry's first byte is a run's header (EXTERNAL's kind with a count). */
function isRunHeader(byte: number): boolean {
  return byte % 4 === EXTERNAL && byte !== EXTERNAL;
}

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
