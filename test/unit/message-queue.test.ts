// The packed topic queue (core/message-queue.ts) against a plain-array model with a seeded PRNG:
// every message comes back with its id, time, delivery count, origin and bytes, in order.

import { describe, expect, test } from "bun:test";
import type { Message } from "../../src/core/message.ts";
import { chunkSize, MessageQueue, type PayloadSink } from "../../src/core/message-queue.ts";
import { prng } from "../helpers/prng.ts";

function message(id: number, size: number, extra: Partial<Message> = {}): Message {
  const payload = new Uint8Array(size);
  for (let i = 0; i < size; i++) payload[i] = (id + i) & 255;
  return { id, topic: "q", created: 1_700_000_000_000 + id * 3, payload, deliveries: 0, origin: undefined, ...extra };
}

const plain = (m: Message | undefined) => m && { ...m, payload: [...m.payload] };

/** A PayloadSink that keeps what it was given: the source array and a copy of the range. */
class RangeSink implements PayloadSink {
  readonly sources: Uint8Array[] = [];
  readonly written: number[][] = [];
  bulkRange(bytes: Uint8Array, start: number, end: number): void {
    this.sources.push(bytes);
    this.written.push([...bytes.subarray(start, end)]);
  }
}

describe("MessageQueue", () => {
  test("messages come back in order with their fields and bytes, as copies", () => {
    const q = new MessageQueue("q");
    const written = [message(1, 0), message(2, 100), message(3, 20000), message(4, 5, { deliveries: 3 })];
    for (const m of written) q.push(m);
    expect(q.length).toBe(4);
    expect([...q].map(plain)).toEqual(written.map(plain));
    const first = q.shift()!;
    expect(plain(first)).toEqual(plain(written[0]));
    const second = q.shift()!;
    expect(second.payload).not.toBe(written[1]!.payload);
    expect(plain(second)).toEqual(plain(written[1]));
    expect(q.length).toBe(2);
  });

  test("a dead letter's origin and a message of another topic are kept as they are", () => {
    const q = new MessageQueue("q.dead");
    const dead = { ...message(1, 10), topic: "q.dead", origin: { topic: "q", id: 7, deliveries: 5 } };
    const other = message(2, 10);
    q.push(dead);
    q.push(other);
    expect(q.shift()).toBe(dead);
    expect(q.shift()).toBe(other);
    expect(q.shift()).toBeUndefined();
  });

  test("shiftInto writes the oldest payload from its chunk (no copy of its own) and says its id, length and count", () => {
    const q = new MessageQueue("q");
    const sink = new RangeSink();
    expect(q.shiftInto(sink)).toBe(false); // empty
    expect(sink.written).toEqual([]);
    const big = message(2, 9000);
    const back = message(9, 3, { deliveries: 2 });
    q.push(message(1, 100));
    q.push(big); // external: too large to pack
    q.push(message(3, 100, { deliveries: 1 }));
    q.unshift(back);
    expect(q.shiftInto(sink)).toBe(true);
    expect(sink.sources[0]).toBe(back.payload);
    expect(q.taken).toEqual({ id: 9, length: 3, deliveries: 2 });
    expect(q.shiftInto(sink)).toBe(true);
    expect(sink.sources[1]).not.toBe(big.payload); // a range of the chunk
    expect(sink.sources[1]!.length).toBeGreaterThan(100);
    expect(sink.written[1]).toEqual([...message(1, 100).payload]);
    expect(q.taken).toEqual({ id: 1, length: 100, deliveries: 0 });
    expect(q.shiftInto(sink)).toBe(true);
    expect(sink.sources[2]).toBe(big.payload);
    expect(q.taken).toEqual({ id: 2, length: 9000, deliveries: 0 });
    expect(q.shiftInto(sink)).toBe(true);
    expect(sink.written[3]).toEqual([...message(3, 100).payload]);
    expect(q.taken).toEqual({ id: 3, length: 100, deliveries: 1 });
    expect(q.length).toBe(0);
    expect(q.shiftInto(sink)).toBe(false);
    // The chunk read to its end is reused: the next entries follow on.
    q.push(message(4, 7));
    expect(plain(q.shift())).toEqual(plain(message(4, 7)));
  });

  test("dropHead drops the oldest message only when its payload is at least minLength bytes, saying its id and length", () => {
    const q = new MessageQueue("q");
    expect(q.dropHead(-100)).toBe(false); // empty
    const big = message(2, 9000);
    q.push(message(1, 100));
    q.push(big); // external: too large to pack
    q.push(message(3, 0, { deliveries: 1 }));
    q.unshift(message(9, 3, { deliveries: 2 }));
    for (const [tooLong, fits, taken] of [
      [4, 3, { id: 9, length: 3, deliveries: 2 }], // put back at the head
      [101, 100, { id: 1, length: 100, deliveries: 0 }], // packed
      [9001, -5, { id: 2, length: 9000, deliveries: 0 }], // external
      [1, 0, { id: 3, length: 0, deliveries: 1 }], // packed, empty
    ] as const) {
      const before = q.length;
      expect(q.dropHead(tooLong)).toBe(false);
      expect(q.length).toBe(before);
      expect(q.dropHead(fits)).toBe(true);
      expect(q.taken).toEqual(taken);
      expect(q.length).toBe(before - 1);
    }
    expect(q.dropHead(0)).toBe(false);
    // The chunk read to its end is reused: the next entries follow on.
    q.push(message(4, 7));
    expect(plain(q.shift())).toEqual(plain(message(4, 7)));
  });

  test("peekCreated reads the oldest message's time without taking it", () => {
    const q = new MessageQueue("q");
    expect(q.peekCreated()).toBeUndefined();
    q.push(message(5, 10));
    expect(q.peekCreated()).toBe(message(5, 10).created);
    q.unshift(message(2, 1));
    expect(q.peekCreated()).toBe(message(2, 1).created);
    expect(q.length).toBe(2);
  });

  // Runs: mostly messages as long as the one before, in the same millisecond, never delivered,
  // so most entries are in runs, which readers enter, pops shorten and writers add to.
  test.each([
    ["varied messages", false],
    ["runs of messages of one length", true],
  ])("against a model over a long random run (seeded), %s: push, pushPacked, unshift, shift, shiftInto, dropHead, pop, removeFirst, clear", (_, runs) => {
    for (const seed of [1, 2, 3, 4, 5]) {
      const random = prng(seed);
      const q = new MessageQueue("q");
      const model: Message[] = [];
      let id = 0;
      let created = 1_700_000_000_000;
      let size = 0;
      for (let step = 0; step < 20000; step++) {
        const r = random();
        if (r < 0.45) {
          if (!runs || random() < 0.05) size = random() < 0.02 ? 9000 + Math.floor(random() * 9000) : Math.floor(random() * 300);
          // Mostly the next id in the same or a later millisecond, never delivered (the short
          // entries); sometimes a gap, a clock going back, a delivery count, an origin.
          const rare = runs ? 0.1 : 1;
          if (random() < 0.05 * rare) id += 1 + Math.floor(random() * 1000);
          if (random() < 0.3 * rare) created += random() < 0.9 ? Math.floor(random() * 300) : -Math.floor(random() * 300);
          const extra: Partial<Message> =
            random() < 0.05 * rare ? { origin: { topic: "x", id: 1, deliveries: 2 } } : { deliveries: random() < 0.2 * rare ? Math.floor(random() * 3) : 0 };
          const m = message(++id, size, { created, ...extra });
          if (size <= 8192 && m.origin === undefined && random() < 0.5) {
            // The lent write's way in: the payload's copy is where pushPacked says, in tailBytes.
            const at = q.pushPacked(m.id, m.created, m.deliveries, m.payload);
            expect([...q.tailBytes.subarray(at, at + size)]).toEqual([...m.payload]);
          } else {
            q.push(m);
          }
          model.push(m);
        } else if (r < 0.5) {
          const m = message(++id, Math.floor(random() * 50), { deliveries: 1 });
          q.unshift(m);
          model.unshift(m);
        } else if (r < 0.7) {
          expect(plain(q.shift())).toEqual(plain(model.shift()));
        } else if (r < 0.85 && random() < 0.3) {
          // Drop-oldest's way out: the oldest goes only when its payload is at least minLength.
          const expected = model[0];
          const minLength = expected === undefined ? 0 : expected.payload.length + Math.floor(random() * 3) - 1;
          const drops = expected !== undefined && expected.payload.length >= minLength;
          expect(q.dropHead(minLength)).toBe(drops);
          if (drops) {
            model.shift();
            expect(q.taken).toEqual({ id: expected.id, length: expected.payload.length, deliveries: expected.deliveries });
          }
        } else if (r < 0.85) {
          const expected = model.shift();
          const sink = new RangeSink();
          expect(q.shiftInto(sink)).toBe(expected !== undefined);
          if (expected) {
            expect(sink.written).toEqual([[...expected.payload]]);
            expect(q.taken).toEqual({ id: expected.id, length: expected.payload.length, deliveries: expected.deliveries });
          } else {
            expect(sink.written).toEqual([]);
          }
        } else if (r < 0.95) {
          expect(plain(q.pop())).toEqual(plain(model.pop()));
        } else if (r < 0.99) {
          expect(plain(q.peek())).toEqual(plain(model[0]));
          expect(q.headLength()).toBe(model[0]?.payload.length ?? -1);
          expect(q.peekCreated()).toBe(model[0]?.created);
        } else if (r < 0.997 && model.length > 0) {
          const target = model[Math.floor(random() * model.length)]!.id;
          expect(plain(q.removeFirst((m) => m.id === target))).toEqual(
            plain(
              model.splice(
                model.findIndex((m) => m.id === target),
                1,
              )[0],
            ),
          );
        } else {
          q.clear();
          model.length = 0;
        }
        expect(q.length).toBe(model.length);
      }
      expect([...q].map(plain)).toEqual(model.map(plain));
    }
  });

  test("entries of the next id in the same millisecond, never delivered and as long as the one before, share a byte of header per 31", () => {
    const q = new MessageQueue("q");
    for (let id = 1; id <= 1000; id++) q.push(message(id, 100, { created: 1_700_000_000_000 }));
    // Each chunk's first entry says its length (two bytes for 100: 101 * 4 >= 128); the others
    // are in runs of at most 31, a byte each.
    const chunks = [...chunksOf(q)].length;
    const runHeaders = q.entryBytes - 1000 * 100 - 2 * chunks;
    expect(runHeaders).toBeGreaterThanOrEqual(Math.ceil((1000 - chunks) / 31));
    expect(runHeaders).toBeLessThanOrEqual(Math.ceil((1000 - chunks) / 31) + chunks);
    const before = q.entryBytes;
    // A later millisecond adds its difference (one byte up to 127 ms).
    q.push(message(1001, 100, { created: 1_700_000_000_005 }));
    expect(q.entryBytes - before).toBe(102);
    // A delivery count or a gap in ids writes all three: 3 more bytes here; another length, 1 more.
    q.push(message(1002, 100, { created: 1_700_000_000_005, deliveries: 1 }));
    q.push(message(1010, 100, { created: 1_700_000_000_005 }));
    q.push(message(1011, 50, { created: 1_700_000_000_005 }));
    expect(q.entryBytes - before).toBe(102 + 104 + 104 + 52);
    for (let id = 1; id <= 1000; id++) q.shift();
    expect(q.entryBytes).toBe(102 + 104 + 104 + 52);
    expect([...q].map((m) => [m.id, m.created, m.deliveries, m.payload.length])).toEqual([
      [1001, 1_700_000_000_005, 0, 100],
      [1002, 1_700_000_000_005, 1, 100],
      [1010, 1_700_000_000_005, 0, 100],
      [1011, 1_700_000_000_005, 0, 50],
    ]);
  });

  test("a writer adds to its run until a reader is in it; a pop takes the newest entry of a run", () => {
    const q = new MessageQueue("q");
    const created = 1_700_000_000_000;
    const ids = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i);
    for (const id of ids(1, 10)) q.push(message(id, 5, { created }));
    expect(q.entryBytes).toBe(1 + 5 + (1 + 9 * 5)); // the first says its length, then a run of 9
    expect(q.shift()!.id).toBe(1);
    expect(q.entryBytes).toBe(1 + 9 * 5);
    expect(q.shift()!.id).toBe(2); // the reader is in the run now, 7 entries of it left
    expect(q.entryBytes).toBe(8 * 5);
    q.push(message(11, 5, { created })); // so the writer starts another
    expect(q.entryBytes).toBe(8 * 5 + 1 + 5);
    expect(q.pop()!.id).toBe(11); // header and all
    expect(q.entryBytes).toBe(8 * 5);
    expect(q.pop()!.id).toBe(10); // one of the run the reader is in
    expect(q.pop()!.id).toBe(9);
    expect(q.entryBytes).toBe(6 * 5);
    for (const id of ids(9, 12)) q.push(message(id, 5, { created }));
    expect(q.entryBytes).toBe(6 * 5 + 1 + 4 * 5);
    expect(q.pop()!.id).toBe(12); // from the run's header's count
    q.push(message(12, 5, { created }));
    expect(q.entryBytes).toBe(6 * 5 + 1 + 4 * 5); // the same run again
    expect([...q].map((m) => [m.id, m.created, m.payload.length, m.payload[0]])).toEqual(ids(3, 12).map((id) => [id, created, 5, id & 255]));
    const taken: number[] = [];
    for (let m = q.shift(); m; m = q.shift()) taken.push(m.id);
    expect(taken).toEqual(ids(3, 12));
    // A long run: 31 entries to a header (one chunk of 256 bytes holds them all).
    for (const id of ids(13, 13 + 62)) q.push(message(id, 1, { created: created + 1 }));
    expect(q.entryBytes).toBe(2 + 1 + (1 + 31) * 2); // a later millisecond (its difference), then two full runs
    expect([...chunksOf(q)].length).toBe(1);
    expect([...q].map((m) => m.id)).toEqual(ids(13, 75));
    // Empty payloads are never in a run: each has its byte of header.
    q.clear();
    for (const id of ids(1, 5)) q.push(message(id, 0, { created }));
    expect(q.entryBytes).toBe(5);
    expect([...q].map((m) => m.id)).toEqual(ids(1, 5));
  });

  test("an external entry between packed ones moves nothing they are relative to", () => {
    const q = new MessageQueue("q");
    const written = [
      message(1, 10, { created: 5 }),
      message(2, 20000, { created: 7 }), // too large to pack
      message(3, 10, { created: 5 }),
      { ...message(4, 10, { created: 9 }), origin: { topic: "x", id: 1, deliveries: 1 } },
      message(5, 10, { created: 5 }),
    ];
    for (const m of written) q.push(m);
    expect([...q].map(plain)).toEqual(written.map(plain));
    expect(plain(q.pop())).toEqual(plain(written[4]));
    expect(plain(q.pop())).toEqual(plain(written[3]));
    q.push(written[3]!);
    q.push(written[4]!);
    const taken: Message[] = [];
    for (let m = q.shift(); m; m = q.shift()) taken.push(m);
    expect(taken.map(plain)).toEqual(written.map(plain));
  });

  test("edge cases come back exactly: id gaps, ids near 2^53, large and backward time steps, varint boundaries, empty payloads, delivery counts", () => {
    const base = 1_700_000_000_000;
    const written: Message[] = [];
    let id = 1;
    const add = (size: number, extra: Partial<Message> = {}) => {
      const m = message(id, size, { created: base, ...extra });
      written.push(m);
      id = m.id + 1;
    };
    // Lengths around the header's varint boundaries (length * 4 + kind: 128, 16384) and the
    // largest packed payload, in each kind of entry.
    for (const size of [0, 1, 30, 31, 32, 33, 4094, 4095, 4096, 4097, 8191, 8192, 8193]) {
      add(size);
      add(size);
      add(size, { created: base + 1 });
      add(size, { deliveries: 2 });
      add(size, { id: id + 5 });
    }
    add(0, { created: base + 2 ** 40 }); // far ahead
    add(3, { created: base - 2 ** 40 }); // far back
    add(3, { created: 0 });
    add(3, { deliveries: 2 ** 40 });
    add(3, { deliveries: Number.MAX_SAFE_INTEGER });
    add(3, { id: 2 ** 52 }); // a jump of 2^52: a new chunk starts
    add(3, { id: Number.MAX_SAFE_INTEGER - 1 });
    add(0, { id: Number.MAX_SAFE_INTEGER, created: Number.MAX_SAFE_INTEGER });
    add(5, { id: 3, created: 1 }); // back by 2^53 (a queue is in id order, but need not be)
    add(5, { id: 4, created: 2 });
    const q = new MessageQueue("q");
    for (const m of written) q.push(m);
    expect([...q].map(plain)).toEqual(written.map(plain));
    expect(q.peekCreated()).toBe(written[0]!.created);
    // Popped from the tail and pushed again, then taken from the head: the same messages.
    const popped: Message[] = [];
    for (let i = 0; i < 10; i++) popped.unshift(q.pop()!);
    expect(popped.map(plain)).toEqual(written.slice(-10).map(plain));
    for (const m of popped) q.push(m);
    const taken: Message[] = [];
    for (let m = q.shift(); m; m = q.shift()) taken.push(m);
    expect(taken.map(plain)).toEqual(written.map(plain));
  });

  test("writes after a pop continue from the entry before it", () => {
    const q = new MessageQueue("q");
    q.push(message(1, 10, { created: 100 }));
    q.push(message(2, 10, { created: 150 }));
    q.pop();
    q.push(message(3, 10, { created: 100 }));
    q.push(message(4, 10, { created: 100 }));
    expect([...q].map((m) => [m.id, m.created])).toEqual([
      [1, 100],
      [3, 100],
      [4, 100],
    ]);
  });

  test("a chunk is at most what the topic holds up to 16 KiB, then at most 1/16 of it, up to 1 MiB", () => {
    expect(chunkSize(0)).toBe(256);
    expect(chunkSize(1000)).toBe(1024);
    expect(chunkSize(16384)).toBe(16384);
    expect(chunkSize(200_000)).toBe(16384);
    expect(chunkSize(16 * 32768)).toBe(32768);
    expect(chunkSize(16 * 1048576)).toBe(1048576);
    expect(chunkSize(2 ** 40)).toBe(1048576);
  });

  test("a long queue is a few large chunks, and gives them all back when read (drop-oldest) or cleared (purge)", () => {
    const q = new MessageQueue("q");
    const count = 200_000;
    for (let id = 1; id <= count; id++) q.push(message(id, 100, { created: 1_700_000_000_000 + Math.floor(id / 1000) }));
    // 20 MB of entries: chunks grow past 16 KiB, with little slack.
    expect(q.chunkBytes).toBeLessThan(q.entryBytes * 1.15);
    expect(q.chunkBytes / 16384).toBeGreaterThan([...chunksOf(q)].length);
    // Writing while reading (a full topic dropping its oldest) holds no more than it did; once
    // the chunks are of the long queue's size (a pass), it allocates none: each new one is the one
    // read to its end before (the spare).
    let seen = new Set<Uint8Array>();
    for (let id = count + 1; id <= 3 * count; id++) {
      q.shift(true);
      q.push(message(id, 100, { created: 1_700_000_000_000 + id }));
      // The chunks then, and the spare if one was read to its end and not yet written again.
      if (id === 2 * count) seen = new Set([...chunkArrays(q), ...spareOf(q)]);
      if (id > 2 * count && id % 1000 === 0) for (const bytes of chunkArrays(q)) expect(seen.has(bytes)).toBe(true);
    }
    expect(q.length).toBe(count);
    expect(q.chunkBytes).toBeLessThan(q.entryBytes * 1.15);
    const first = 2 * count + 1;
    expect([...q].slice(0, 2).map(plain)).toEqual([first, first + 1].map((id) => plain(message(id, 100, { created: 1_700_000_000_000 + id }))));
    // Read down, the queue keeps no spare once it is short.
    for (let m = q.shift(true); m; m = q.shift(true));
    expect(q.chunkBytes).toBeLessThanOrEqual(1024);
    for (let id = 1; id <= 1000; id++) q.push(message(id, 100));
    q.clear();
    expect(q.chunkBytes).toBe(0);
    expect(q.entryBytes).toBe(0);
  });
});

/** The queue's chunks (private), for counting them. */
function chunksOf(q: MessageQueue): Iterable<unknown> {
  return (q as unknown as { chunks: Iterable<unknown> }).chunks;
}

/** The byte arrays of the queue's chunks (private), to tell a reused one from a new one. */
/** The chunk the queue keeps for its next one (private), if any. */
function spareOf(q: MessageQueue): Uint8Array[] {
  const spare = (q as unknown as { spare: Uint8Array | undefined }).spare;
  return spare ? [spare] : [];
}

function chunkArrays(q: MessageQueue): Uint8Array[] {
  return [...(chunksOf(q) as Iterable<{ bytes: Uint8Array }>)].map((chunk) => chunk.bytes);
}
