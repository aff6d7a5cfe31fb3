// The server's RESP request parser: incremental and binary-safe, multibulk and inline commands,
// arguments as offsets into the bytes they arrived in (RespCommand), input limits enforced as it reads.

import { copyBytes, joinUnread } from "./bytes.ts";

const CR = 13;
const LF = 10;

export interface RespLimits {
  /** Largest bulk argument accepted; a larger one is skipped and the command refused. */
  maxBulk: number;
  /** Largest sum of argument sizes in one command; a larger command is skipped and refused. */
  maxCommandBytes: number;
  /** Most arguments in one command (past it the stream is not trusted: fatal). */
  maxArgs: number;
  /** Longest inline command line. */
  maxInline: number;
  /**
   * An argument or command over maxBulk/maxCommandBytes is fatal rather than skipped: for
   * connections that have not authenticated, whose input is not worth reading on.
   */
  overLimitFatal?: boolean;
}

/**
 * What one parsed argument of an unfinished command costs beyond its bytes (the slots that
 * locate it), counted in RespParser.held so a command of a million empty arguments is not free.
 */
export const ARGUMENT_COST = 32;
/** A bulk arriving in pieces is assembled in a buffer that grows as bytes come, from this size. */
const FIRST_BULK_CHUNK = 16384;

/** Past this a declared bulk length is nonsense, not a large message: the stream is dropped. */
const HARD_MAX_BULK = 512 * 1048576;
const MAX_HEADER_LINE = 32;

export interface RespProblem {
  /** Reply text after "-ERR " (or the code's prefix). */
  error: string;
  /** "TOO_LARGE" when an argument or command was over a limit, "PROTOCOL" otherwise. */
  code: "TOO_LARGE" | "PROTOCOL";
  /** The stream cannot be resynchronised: reply, then close. */
  fatal: boolean;
}

export type RespItem = Uint8Array[] | RespProblem;

export function isProblem(item: RespItem | RespCommand): item is RespProblem {
  return (item as RespProblem).fatal !== undefined;
}

const textDecoder = new TextDecoder();

/**
 * One parsed command as offsets into the bytes it arrived in: nothing is copied or allocated per
 * argument. The parser reuses it: read what you need before asking for the next command.
 */
export class RespCommand {
  count = 0;
  private readonly bufs: Uint8Array[] = [];
  private readonly starts: number[] = [];
  private readonly ends: number[] = [];
  /** Whether argument i sits in memory of its own (assembled across reads): copy() may hand it over. */
  private readonly owned: boolean[] = [];
  // A one-entry cache: a connection usually names the same topic command after command.
  private cachedBytes: Uint8Array = new Uint8Array(0);
  private cachedText = "";

  reset(): void {
    if (this.bufs.length > 1024) {
      this.bufs.length = 0;
      this.starts.length = 0;
      this.ends.length = 0;
      this.owned.length = 0;
    }
    this.count = 0;
  }

  /** Forgets every argument and the memory that located them. */
  release(): void {
    this.bufs.length = 0;
    this.starts.length = 0;
    this.ends.length = 0;
    this.owned.length = 0;
    this.count = 0;
  }

  add(buf: Uint8Array, start: number, end: number, owned = false): void {
    const i = this.count++;
    this.bufs[i] = buf;
    this.starts[i] = start;
    this.ends[i] = end;
    this.owned[i] = owned;
  }

  size(i: number): number {
    return this.ends[i]! - this.starts[i]!;
  }

  /** The array argument i sits in, from startOf(i) to endOf(i): the argument without a view made. */
  bytesOf(i: number): Uint8Array {
    return this.bufs[i]!;
  }

  startOf(i: number): number {
    return this.starts[i]!;
  }

  endOf(i: number): number {
    return this.ends[i]!;
  }

  /** A view of argument i (valid until the next command). */
  view(i: number): Uint8Array {
    return this.bufs[i]!.subarray(this.starts[i], this.ends[i]);
  }

  /**
   * Argument i in memory of its own that the caller may keep. A real copy: keeping a view would pin
   * the whole read buffer (and Buffer.prototype.slice, what socket data has, makes a view).
   */
  /** Whether argument i sits in memory of its own, which copy() hands over without copying. */
  owns(i: number): boolean {
    return this.owned[i] === true;
  }

  copy(i: number): Uint8Array {
    const view = this.bufs[i]!.subarray(this.starts[i], this.ends[i]);
    return this.owned[i] ? view : copyBytes(view);
  }

  /** Argument i as text (UTF-8). */
  text(i: number): string {
    if (i >= this.count) return "";
    const buf = this.bufs[i]!;
    const start = this.starts[i]!;
    const end = this.ends[i]!;
    const length = end - start;
    if (length > 128) return textDecoder.decode(buf.subarray(start, end));
    const cached = this.cachedBytes;
    if (cached.length === length) {
      let same = true;
      for (let k = 0; k < length; k++) {
        if (cached[k] !== buf[start + k]) {
          same = false;
          break;
        }
      }
      if (same) return this.cachedText;
    }
    const text = textDecoder.decode(buf.subarray(start, end));
    this.cachedBytes = copyBytes(buf.subarray(start, end));
    this.cachedText = text;
    return text;
  }

  /** Case-insensitive comparison of argument i with an upper-case ASCII word. */
  is(i: number, upper: string): boolean {
    if (this.size(i) !== upper.length) return false;
    const buf = this.bufs[i]!;
    const start = this.starts[i]!;
    for (let k = 0; k < upper.length; k++) {
      const b = buf[start + k]!;
      if ((b >= 97 && b <= 122 ? b - 32 : b) !== upper.charCodeAt(k)) return false;
    }
    return true;
  }

  /** A hash of argument i upper-cased (ASCII), for table lookups without making a string. */
  hashUpper(i: number): number {
    const buf = this.bufs[i]!;
    const end = this.ends[i]!;
    let h = end - this.starts[i]!;
    for (let k = this.starts[i]!; k < end; k++) {
      const b = buf[k]!;
      h = (Math.imul(h, 31) + (b >= 97 && b <= 122 ? b - 32 : b)) | 0;
    }
    return h;
  }

  /** Copies the arguments that are views into `buf`, which the caller is about to let go of. */
  detachFrom(buf: Uint8Array): void {
    for (let i = 0; i < this.count; i++) {
      if (this.bufs[i]!.buffer !== buf.buffer) continue;
      this.bufs[i] = copyBytes(this.bufs[i]!.subarray(this.starts[i], this.ends[i]));
      this.ends[i] = this.ends[i]! - this.starts[i]!;
      this.starts[i] = 0;
      this.owned[i] = true;
    }
  }

  toArray(): Uint8Array[] {
    const out: Uint8Array[] = [];
    for (let i = 0; i < this.count; i++) out.push(this.view(i));
    return out;
  }
}

/** The same hash as RespCommand.hashUpper, of a string. */
export function hashUpper(word: string): number {
  let h = word.length;
  for (let k = 0; k < word.length; k++) {
    const b = word.charCodeAt(k);
    h = (Math.imul(h, 31) + (b >= 97 && b <= 122 ? b - 32 : b)) | 0;
  }
  return h;
}

/**
 * Feed it bytes as they arrive, then call next() until it returns undefined. Arguments are views
 * into the received bytes where they arrived whole: copy what you keep past the current read.
 */
export class RespParser {
  private buf: Uint8Array = new Uint8Array(0);
  private pos = 0;
  // multibulk state
  private argsLeft = -1; // -1: between commands
  private readonly command = new RespCommand();
  private commandBytes = 0;
  private refused: RespProblem | undefined;
  /** Bytes of the unfinished command already parsed (headers and whole arguments). */
  private commandRaw = 0;
  // bulk being assembled across reads: `bulk` grows up to bulkLength + 2 as bytes arrive
  private bulk: Uint8Array | undefined;
  private bulkLength = 0;
  private bulkFilled = 0;
  private bulkSkip = -1; // bytes (incl. CRLF) still to skip for a refused bulk
  private dead = false;

  constructor(private limits: RespLimits) {}

  /** New limits from the next argument on (a connection that authenticated gets roomier ones). */
  setLimits(limits: RespLimits): void {
    this.limits = limits;
  }

  /** Bytes received but not yet parsed into a command. */
  get buffered(): number {
    return this.buf.length - this.pos + (this.bulk ? this.bulkFilled : 0);
  }

  /**
   * Memory the pending input holds: unparsed bytes, plus the unfinished command's parsed part
   * (its bytes, ARGUMENT_COST per argument, the capacity of a bulk being assembled).
   */
  get held(): number {
    let held = this.buf.length - this.pos;
    if (this.argsLeft > 0) held += this.commandRaw + this.command.count * ARGUMENT_COST + (this.bulk ? this.bulk.length : 0);
    return held;
  }

  /** Whether a command has begun but not ended: the parser waits for the client's next bytes. */
  get partial(): boolean {
    return this.argsLeft > 0 || this.pos < this.buf.length;
  }

  feed(chunk: Uint8Array): void {
    if (this.dead || chunk.length === 0) return;
    this.buf = joinUnread(this.buf, this.pos, chunk);
    this.pos = 0;
  }

  /** Lets go of everything held and parses nothing more (the connection is closing). */
  discard(): void {
    this.dead = true;
    this.buf = new Uint8Array(0);
    this.pos = 0;
    this.bulk = undefined;
    this.argsLeft = -1;
    this.commandRaw = 0;
    this.command.release();
  }

  /** Keeps unparsed bytes in memory of their own (call before holding them across reads). */
  detach(): void {
    // The arguments already parsed of an unfinished command are views into the same bytes.
    if (this.argsLeft > 0) this.command.detachFrom(this.buf);
    if (this.pos < this.buf.length) this.buf = copyBytes(this.buf.subarray(this.pos));
    else this.buf = new Uint8Array(0);
    this.pos = 0;
  }

  /** The next complete command as an array of views, a problem, or undefined when more bytes are needed. */
  next(): RespItem | undefined {
    const item = this.nextCommand();
    return item === undefined || isProblem(item) ? item : item.toArray();
  }

  /**
   * The next complete command (the parser's reused RespCommand: read it before calling again),
   * a problem to reply to, or undefined when more bytes are needed.
   */
  nextCommand(): RespCommand | RespProblem | undefined {
    if (this.dead) return undefined;
    for (;;) {
      if (this.argsLeft < 0) {
        if (this.pos >= this.buf.length) return undefined;
        if (this.buf[this.pos] !== 42 /* * */) return this.inline();
        const headerStart = this.pos;
        let count: number | undefined = this.header();
        if (count < 0) {
          const line = this.line(MAX_HEADER_LINE);
          if (line === undefined) return undefined;
          if (typeof line !== "number") return line;
          count = this.number(this.lineStart + 1, line);
          if (count === undefined) return this.fatal("invalid multibulk length");
        }
        const headerBytes = this.pos - headerStart;
        if (count <= 0) continue; // "*0" and "*-1" are no-ops, as in Redis
        if (count > this.limits.maxArgs) return this.fatal(`too many arguments (${count}, limit ${this.limits.maxArgs})`);
        this.argsLeft = count;
        this.command.reset();
        this.commandBytes = 0;
        this.commandRaw = headerBytes;
        this.refused = undefined;
      }
      while (this.argsLeft > 0) {
        const progress = this.bulkArg();
        if (progress === undefined) return undefined;
        if (progress !== true) return progress;
      }
      this.argsLeft = -1;
      this.commandRaw = 0;
      if (this.refused) {
        const refused = this.refused;
        this.refused = undefined;
        return refused;
      }
      return this.command;
    }
  }

  private lineStart = 0;

  /** Finds the end of a CRLF line from pos. Returns the CR index, a problem, or undefined. */
  private line(max: number): number | RespProblem | undefined {
    const buf = this.buf;
    const start = this.pos;
    // Header lines are a few bytes: a plain loop beats a native indexOf call.
    const limit = Math.min(buf.length, start + max + 2);
    let end = start;
    while (end < limit && buf[end] !== LF) end++;
    if (end === limit) end = limit === buf.length ? -1 : end;
    if (end < 0) {
      // Incomplete: already too long, unless its last byte may be the CR that ends it. The same
      // rule as for a complete line, so the answer does not depend on where a read ended.
      const pending = buf.length - start;
      if (pending > max + 1 || (pending === max + 1 && buf[buf.length - 1] !== CR)) return this.fatal("line too long");
      return undefined;
    }
    const stop = end > start && buf[end - 1] === CR ? end - 1 : end;
    if (stop - start > max) return this.fatal("line too long");
    this.lineStart = start;
    this.pos = end + 1;
    return stop;
  }

  /**
   * The usual header line at pos, a type byte then 1 to 15 digits and CRLF ("*3", "$100"), read in
   * one pass: its number, pos moved past it. -1 (pos unmoved) for anything else (a sign, a line
   * not all here, a bad one), which line() and number() then read as they always have.
   */
  private header(): number {
    const buf = this.buf;
    const first = this.pos + 1;
    // Room for the digits and the CR, with the LF still inside the buffer.
    const stop = Math.min(buf.length - 1, first + 16);
    let at = first;
    let n = 0;
    while (at < stop) {
      const digit = buf[at]! - 48;
      if (digit < 0 || digit > 9) break;
      n = n * 10 + digit;
      at++;
    }
    if (at === first || at - first > 15 || at >= stop || buf[at] !== CR || buf[at + 1] !== LF) return -1;
    this.pos = at + 2;
    return n;
  }

  /** Parses a (possibly negative) decimal integer in buf[from, to), or undefined. */
  private number(from: number, to: number): number | undefined {
    const buf = this.buf;
    if (from >= to) return undefined;
    let negative = false;
    if (buf[from] === 45 /* - */) {
      negative = true;
      from++;
      if (from >= to) return undefined;
    }
    let n = 0;
    for (let i = from; i < to; i++) {
      const d = buf[i]! - 48;
      if (d < 0 || d > 9) return undefined;
      n = n * 10 + d;
    }
    return negative ? -n : n;
  }

  /** Reads one "$len\r\n<bytes>\r\n". true: argument done; undefined: need bytes; else a problem. */
  private bulkArg(): true | RespProblem | undefined {
    if (this.bulkSkip >= 0) {
      const skip = Math.min(this.bulkSkip, this.buf.length - this.pos);
      this.pos += skip;
      this.bulkSkip -= skip;
      if (this.bulkSkip > 0) return undefined;
      this.bulkSkip = -1;
      this.argsLeft--;
      return true;
    }
    if (this.bulk) return this.fillBulk();
    if (this.pos >= this.buf.length) return undefined;
    if (this.buf[this.pos] !== 36 /* $ */) {
      return this.fatal(`expected '$', got '${String.fromCharCode(this.buf[this.pos]!)}'`);
    }
    const headerStart = this.pos;
    let length: number | undefined = this.header();
    if (length < 0) {
      const lineEnd = this.line(MAX_HEADER_LINE);
      if (lineEnd === undefined) return undefined;
      if (typeof lineEnd !== "number") return lineEnd;
      length = this.number(headerStart + 1, lineEnd);
    }
    if (length === undefined || length < 0 || length > HARD_MAX_BULK) return this.fatal("invalid bulk length");
    this.commandBytes += length;
    this.commandRaw += this.pos - headerStart;
    if (this.limits.overLimitFatal && (length > this.limits.maxBulk || this.commandBytes > this.limits.maxCommandBytes)) {
      return this.fatal(`command larger than ${this.limits.maxCommandBytes} bytes before authentication`);
    }
    if (!this.refused && length > this.limits.maxBulk) {
      this.refused = {
        code: "TOO_LARGE",
        error: `argument of ${length} bytes is larger than the limit of ${this.limits.maxBulk} bytes`,
        fatal: false,
      };
    } else if (!this.refused && this.commandBytes > this.limits.maxCommandBytes) {
      this.refused = {
        code: "TOO_LARGE",
        error: `command of more than ${this.limits.maxCommandBytes} bytes is too large`,
        fatal: false,
      };
    }
    if (this.refused) {
      this.bulkSkip = length + 2;
      return this.bulkArg();
    }
    const available = this.buf.length - this.pos;
    if (available >= length + 2) {
      const end = this.pos + length;
      if (this.buf[end] !== CR || this.buf[end + 1] !== LF) return this.fatal("bulk argument not followed by CRLF");
      this.command.add(this.buf, this.pos, end);
      this.pos = end + 2;
      this.commandRaw += length + 2;
      this.argsLeft--;
      return true;
    }
    // Incomplete: assemble it in memory of its own, so later reads copy once. The buffer grows
    // as bytes arrive: a header announcing 1 MiB costs nothing until the MiB is sent.
    this.bulkLength = length + 2;
    this.bulk = new Uint8Array(Math.min(this.bulkLength, Math.max(FIRST_BULK_CHUNK, available)));
    this.bulkFilled = 0;
    return this.fillBulk();
  }

  private fillBulk(): true | RespProblem | undefined {
    let bulk = this.bulk!;
    const take = Math.min(this.bulkLength - this.bulkFilled, this.buf.length - this.pos);
    if (this.bulkFilled + take > bulk.length) {
      let size = bulk.length * 2;
      while (size < this.bulkFilled + take) size *= 2;
      const grown = new Uint8Array(Math.min(size, this.bulkLength));
      grown.set(bulk.subarray(0, this.bulkFilled));
      this.bulk = bulk = grown;
    }
    bulk.set(this.buf.subarray(this.pos, this.pos + take), this.bulkFilled);
    this.bulkFilled += take;
    this.pos += take;
    if (this.bulkFilled < this.bulkLength) return undefined;
    this.bulk = undefined;
    const end = this.bulkLength - 2;
    if (bulk[end] !== CR || bulk[end + 1] !== LF) return this.fatal("bulk argument not followed by CRLF");
    this.command.add(bulk, 0, end, true);
    this.commandRaw += this.bulkLength;
    this.argsLeft--;
    return true;
  }

  /** An inline command: "PING\r\n", "PUT jobs hello\r\n"; double quotes group words. */
  private inline(): RespCommand | RespProblem | undefined {
    const start = this.pos;
    const lineEnd = this.line(this.limits.maxInline);
    if (lineEnd === undefined) return undefined;
    if (typeof lineEnd !== "number") return lineEnd;
    // Without quotes the words are views into the line, as multibulk arguments are: no text.
    const buf = this.buf;
    let quoted = false;
    for (let i = start; i < lineEnd; i++) {
      if (buf[i] === 34 /* " */) {
        quoted = true;
        break;
      }
    }
    if (!quoted) {
      this.command.reset();
      let i = start;
      for (;;) {
        while (i < lineEnd && (buf[i] === 32 || buf[i] === 9)) i++;
        if (i >= lineEnd) break;
        const wordStart = i;
        while (i < lineEnd && buf[i] !== 32 && buf[i] !== 9) i++;
        this.command.add(buf, wordStart, i);
      }
      if (this.command.count === 0) return this.nextCommand(); // blank line: nothing to do
      return this.command;
    }
    const text = textDecoder.decode(buf.subarray(start, lineEnd));
    const words = splitInline(text);
    if (words === undefined) return { code: "PROTOCOL", error: "unbalanced quotes in request", fatal: false };
    if (words.length === 0) return this.nextCommand(); // blank line: nothing to do
    this.command.reset();
    for (const word of words) {
      const bytes = encoder.encode(word);
      this.command.add(bytes, 0, bytes.length);
    }
    return this.command;
  }

  private fatal(error: string): RespProblem {
    this.dead = true;
    return { code: "PROTOCOL", error: `Protocol error: ${error}`, fatal: true };
  }
}

function splitInline(text: string): string[] | undefined {
  const words: string[] = [];
  let i = 0;
  while (i < text.length) {
    while (i < text.length && (text[i] === " " || text[i] === "\t")) i++;
    if (i >= text.length) break;
    if (text[i] === '"') {
      let word = "";
      i++;
      for (;;) {
        if (i >= text.length) return undefined;
        const c = text[i]!;
        if (c === "\\" && i + 1 < text.length) {
          const n = text[i + 1]!;
          word += n === "n" ? "\n" : n === "r" ? "\r" : n === "t" ? "\t" : n;
          i += 2;
        } else if (c === '"') {
          i++;
          break;
        } else {
          word += c;
          i++;
        }
      }
      words.push(word);
    } else {
      const start = i;
      while (i < text.length && text[i] !== " " && text[i] !== "\t") i++;
      words.push(text.slice(start, i));
    }
  }
  return words;
}

const encoder = new TextEncoder();
