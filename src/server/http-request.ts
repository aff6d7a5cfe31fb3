// Reading an HTTP request: query parameters (strict: a typo is an error, not a silent default)
// and a body that is never read past the largest message allowed.

import { concatBytes } from "../protocol/bytes.ts";
import { BusError } from "../core/errors.ts";
import { wholeNumber } from "../core/numbers.ts";
import { parseDuration } from "../config.ts";

/**
 * The request target's path and query string, from `req.url`. Bun builds `req.url` as
 * `scheme://host/path?query` from the Host header, but a request without a usable Host (an
 * HTTP/1.0 health check sends none) gets the bare target, `/path?query`. Routing looks at the path
 * alone, whichever form came. `OPTIONS *` is the path `*`.
 */
export function requestTarget(url: string): { path: string; query: string } {
  let start = 0;
  if (url.charCodeAt(0) !== 47 /* "/" */ && url !== "*") {
    const scheme = url.indexOf("://");
    start = scheme < 0 ? 0 : url.indexOf("/", scheme + 3);
    if (start < 0) {
      // An authority with no path: "http://host?query" or "http://host".
      const q = url.indexOf("?", scheme + 3);
      return { path: "/", query: q < 0 ? "" : url.slice(q + 1) };
    }
  }
  const q = url.indexOf("?", start);
  return q < 0 ? { path: url.slice(start), query: "" } : { path: url.slice(start, q), query: url.slice(q + 1) };
}

export class Query {
  private readonly params: URLSearchParams | undefined;

  constructor(text: string) {
    this.params = text ? new URLSearchParams(text) : undefined;
  }

  has(name: string): boolean {
    return this.params?.has(name) ?? false;
  }

  get(name: string): string | null {
    return this.params?.get(name) ?? null;
  }

  /** Refuses parameters the route does not know (`token` is known everywhere). */
  only(known: string[]): void {
    if (!this.params) return;
    for (const name of this.params.keys()) {
      if (name !== "token" && !known.includes(name)) {
        const hint = known.length ? ` (known here: ${known.join(", ")})` : " (this route takes none)";
        throw new BusError("BAD_REQUEST", `unknown parameter "${name.slice(0, 40)}"${hint}`);
      }
    }
  }

  /** `?json`, `?json=1`, `?json=true` are on; absent, `0` and `false` are off. */
  flag(name: string): boolean {
    const value = this.get(name);
    if (value === null) return false;
    const v = value.toLowerCase();
    if (v === "" || v === "1" || v === "true" || v === "yes" || v === "on") return true;
    if (v === "0" || v === "false" || v === "no" || v === "off") return false;
    throw new BusError("BAD_REQUEST", `parameter ${name} is a flag (1/true or 0/false): "${value.slice(0, 32)}"`);
  }

  /** A duration (500ms, 30s, 5m; a plain number is seconds); `?name` without a value is `whenEmpty`. */
  duration(name: string, whenEmpty: number): number {
    const value = this.get(name) ?? "";
    if (value === "") return whenEmpty;
    const ms = parseDuration(value);
    if (ms === undefined)
      throw new BusError("BAD_REQUEST", `parameter ${name} is not a duration (e.g. 500ms, 30s, 5m; a plain number is seconds): "${value.slice(0, 32)}"`);
    return ms;
  }

  integer(name: string, min: number): number {
    return wholeNumber(this.get(name) ?? "", `parameter ${name}`, min);
  }

  /** A whole number from a path segment or header: the one strict reading (core/numbers.ts). */
  static integerValue(text: string, what: string, min: number): number {
    return wholeNumber(text, what, min);
  }
}

function tooLarge(size: string, max: number): BusError {
  return new BusError("TOO_LARGE", `message of ${size} bytes is larger than the limit of ${max} bytes`);
}

/**
 * The request body as one payload. A declared Content-Length over `max` is refused before
 * anything is read; a chunked body is counted as it comes and refused the moment it passes `max`.
 */
export function readBody(req: Request, max: number): Promise<Uint8Array> {
  const declared = req.headers.get("content-length");
  if (declared === null) return readChunked(req, max);
  const length = Number(declared);
  if (length > max) return Promise.reject(tooLarge(declared, max));
  if (length === 0) return Promise.resolve(new Uint8Array(0));
  return req.bytes().catch((error: unknown) => {
    throw unreadable(error);
  });
}

function unreadable(error: unknown): BusError {
  if (error instanceof BusError) return error;
  return new BusError("BAD_REQUEST", `could not read the request body: ${error instanceof Error ? error.message : String(error)}`);
}

/** A body without Content-Length: counted as it comes, refused the moment it passes `max`. */
async function readChunked(req: Request, max: number): Promise<Uint8Array> {
  try {
    if (!req.body) return new Uint8Array(0);
    const chunks: Uint8Array[] = [];
    let total = 0;
    const reader = req.body.getReader();
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      total += value.length;
      if (total > max) {
        reader.cancel().catch(() => {});
        throw tooLarge(`more than ${max}`, max);
      }
      chunks.push(value);
    }
    return chunks.length === 0 ? new Uint8Array(0) : concatBytes(chunks, total);
  } catch (error) {
    throw unreadable(error);
  }
}
