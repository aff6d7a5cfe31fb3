// The client's RESP reply reader: an incremental decoder of replies (RESP2 and RESP3) into plain
// values, errors and pushes. The server never loads it.

import { joinUnread } from "./bytes.ts";

const LF = 10;

/** Decodes one RESP value (for the client and tests): returns [value, bytesUsed] or undefined. */
export type RespValue = null | number | string | Uint8Array | RespValue[] | RespErrorValue | RespPush;

export class RespErrorValue {
  constructor(readonly message: string) {}
}

export class RespPush {
  constructor(readonly items: RespValue[]) {}
}

/**
 * Incremental reply reader: feed bytes, call next() for each complete value. Bulk strings come as
 * Uint8Array, simple strings as string, errors as RespErrorValue, RESP3 pushes as RespPush.
 */
export class RespReader {
  private buf: Uint8Array = new Uint8Array(0);
  private pos = 0;

  feed(chunk: Uint8Array): void {
    this.buf = joinUnread(this.buf, this.pos, chunk);
    this.pos = 0;
  }

  /** The next whole value, or undefined (NEED) when more bytes are needed. */
  next(): { value: RespValue } | undefined {
    const start = this.pos;
    const value = this.value();
    if (value === NEED) {
      this.pos = start;
      return undefined;
    }
    return { value };
  }

  private value(): RespValue | typeof NEED {
    const buf = this.buf;
    if (this.pos >= buf.length) return NEED;
    const type = buf[this.pos]!;
    const lf = buf.indexOf(LF, this.pos);
    if (lf < 0) return NEED;
    const line = decodeAscii(buf, this.pos + 1, lf - 1);
    this.pos = lf + 1;
    switch (type) {
      case 43: // +
        return line;
      case 45: // -
        return new RespErrorValue(line);
      case 58: // :
      case 44: // , double
        return Number(line);
      case 95: // _
        return null;
      case 35: // #
        return line === "t" ? 1 : 0;
      case 36: // $
      case 61: {
        // = verbatim
        const n = Number(line);
        if (n < 0) return null;
        if (buf.length - this.pos < n + 2) return NEED;
        const bytes = buf.slice(this.pos, this.pos + n);
        this.pos += n + 2;
        return bytes;
      }
      case 42: // *
      case 62: // >
      case 126: // ~ set
      case 37: {
        // % map (flattened)
        const n = Number(line);
        if (n < 0) return null;
        const items: RespValue[] = [];
        const total = type === 37 ? n * 2 : n;
        for (let i = 0; i < total; i++) {
          const v = this.value();
          if (v === NEED) return NEED;
          items.push(v);
        }
        return type === 62 ? new RespPush(items) : items;
      }
      default:
        throw new Error(`bad reply type '${String.fromCharCode(type)}'`);
    }
  }
}

const NEED = Symbol("need");

function decodeAscii(buf: Uint8Array, from: number, to: number): string {
  return new TextDecoder().decode(buf.subarray(from, to));
}
