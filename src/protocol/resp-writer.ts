// The RESP reply writer: replies batched into one growing buffer (one syscall per read's worth),
// RESP2 or RESP3 forms; and encodeCommand, a command as a multibulk, for clients.

const CR = 13;
const LF = 10;

const encoder = new TextEncoder();
/** Below this a byte loop beats the native copy's call (as in the packed queue's copyRange). */
const COPY_LOOP_MAX = 32;
/** Buffer.prototype.copy takes any Uint8Array as its source, and a range of it: no view made. */
const bufferCopy = Buffer.prototype.copy;

/**
 * Collects replies in one growing buffer so a whole read's worth of replies is written with one
 * syscall. `resp3` switches nulls, maps and pushes to their RESP3 forms.
 */
export class RespWriter {
  private buf: Uint8Array;
  private len = 0;
  resp3 = false;

  constructor(initial = 4096) {
    this.buf = new Uint8Array(initial);
  }

  get length(): number {
    return this.len;
  }

  /** The buffer written into: bytes [0, length) are the pending output (see reset()). */
  get bytes(): Uint8Array {
    return this.buf;
  }

  /** Forgets the pending output (after the caller wrote `bytes` up to `length` somewhere). */
  reset(): void {
    this.len = 0;
    if (this.buf.length > 1 << 20) this.buf = new Uint8Array(4096);
  }

  /** Forgets what was written after the first `length` bytes (a reply abandoned half-way). */
  truncate(length: number): void {
    if (length < this.len) this.len = Math.max(0, length);
  }

  /** The bytes written so far, and resets: a view valid until the next write (copy to keep it). */
  take(): Uint8Array {
    const out = this.buf.subarray(0, this.len);
    this.len = 0;
    // A huge reply grew the buffer; do not keep that much memory per connection.
    if (this.buf.length > 1 << 20) this.buf = new Uint8Array(4096);
    return out;
  }

  private ensure(extra: number): void {
    if (this.len + extra <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.len + extra) size *= 2;
    const next = new Uint8Array(size);
    next.set(this.buf.subarray(0, this.len));
    this.buf = next;
  }

  /**
   * Room for `extra` more bytes: the buffer to write into from `length` on, by hand, ended with
   * commit(). For a frame written field by field with one bounds check (PushEncoder).
   */
  room(extra: number): Uint8Array {
    this.ensure(extra);
    return this.buf;
  }

  /** Bytes up to `end` of room()'s buffer are output. */
  commit(end: number): void {
    this.len = end;
  }

  raw(bytes: Uint8Array): this {
    const length = bytes.length;
    this.ensure(length);
    if (length <= 16) {
      // +PONG, +OK, a null: a byte loop is cheaper than set()'s native call.
      const buf = this.buf;
      let at = this.len;
      for (let i = 0; i < length; i++) buf[at++] = bytes[i]!;
    } else {
      this.buf.set(bytes, this.len);
    }
    this.len += length;
    return this;
  }

  private ascii(text: string): void {
    this.ensure(text.length * 3);
    this.len += encoder.encodeInto(text, this.buf.subarray(this.len)).written;
  }

  private crlf(): void {
    this.buf[this.len++] = CR;
    this.buf[this.len++] = LF;
  }

  private prefixed(prefix: number, n: number): void {
    this.ensure(26);
    const buf = this.buf;
    buf[this.len++] = prefix;
    if (n < 0) {
      buf[this.len++] = 45; // -
      n = -n;
    }
    if (n < 10) {
      buf[this.len++] = 48 + n;
    } else {
      const start = this.len;
      while (n > 0) {
        const q = Math.floor(n / 10);
        buf[this.len++] = 48 + (n - q * 10);
        n = q;
      }
      for (let a = start, b = this.len - 1; a < b; a++, b--) {
        const t = buf[a]!;
        buf[a] = buf[b]!;
        buf[b] = t;
      }
    }
    buf[this.len++] = CR;
    buf[this.len++] = LF;
  }

  simple(text: string): this {
    this.ensure(text.length * 3 + 3);
    this.buf[this.len++] = 43; // +
    this.ascii(text);
    this.crlf();
    return this;
  }

  /** An error reply; `text` starts with its code word, e.g. "ERR bad topic" or "NOAUTH ...". */
  error(text: string): this {
    const clean = text.replace(/[\r\n]+/g, " ");
    this.ensure(clean.length * 3 + 3);
    this.buf[this.len++] = 45; // -
    this.ascii(clean);
    this.crlf();
    return this;
  }

  integer(n: number): this {
    this.prefixed(58, n); // :
    return this;
  }

  bulk(bytes: Uint8Array): this {
    this.prefixed(36, bytes.length); // $
    this.ensure(bytes.length + 2);
    this.buf.set(bytes, this.len);
    this.len += bytes.length;
    this.crlf();
    return this;
  }

  /** A bulk string of bytes[start, end), copied without a view of the range (a payload in a queue's chunk). */
  bulkRange(bytes: Uint8Array, start: number, end: number): void {
    const length = end - start;
    this.prefixed(36, length); // $
    this.ensure(length + 2);
    const buf = this.buf;
    if (length <= COPY_LOOP_MAX) {
      let at = this.len;
      for (let i = start; i < end; i++) buf[at++] = bytes[i]!;
    } else {
      bufferCopy.call(bytes, buf, this.len, start, end);
    }
    this.len += length;
    this.crlf();
  }

  bulkString(text: string): this {
    return this.bulk(encoder.encode(text));
  }

  nullBulk(): this {
    return this.raw(this.resp3 ? NULL3 : NULL_BULK);
  }

  nullArray(): this {
    return this.raw(this.resp3 ? NULL3 : NULL_ARRAY);
  }

  array(count: number): this {
    this.prefixed(42, count); // *
    return this;
  }

  /** A map in RESP3, a flat array of key/value pairs in RESP2. */
  map(pairs: number): this {
    if (this.resp3)
      this.prefixed(37, pairs); // %
    else this.prefixed(42, pairs * 2);
    return this;
  }

  /** An out-of-band message: a push in RESP3, an array in RESP2 (as Redis pub/sub does). */
  push(count: number): this {
    this.prefixed(this.resp3 ? 62 : 42, count); // > or *
    return this;
  }

  ok(): this {
    return this.raw(OK);
  }
}

const OK = encoder.encode("+OK\r\n");
const NULL_BULK = encoder.encode("$-1\r\n");
const NULL_ARRAY = encoder.encode("*-1\r\n");
const NULL3 = encoder.encode("_\r\n");

/** Encodes a command as a RESP multibulk (for clients). */
export function encodeCommand(args: (string | Uint8Array | number)[]): Uint8Array {
  const parts = args.map((a) => (a instanceof Uint8Array ? a : encoder.encode(String(a))));
  let size = 16;
  for (const p of parts) size += p.length + 16;
  const w = new RespWriter(size);
  w.array(parts.length);
  for (const p of parts) w.bulk(p);
  return w.take();
}
