// The message limit a client write is held to before anything is sent, where that number came
// from (for the error line), and stdin read no further than it. Free of node:* modules: the write
// fast path (_write-fast.ts) uses it as the full path (_io.ts, _write.ts) does.

import { SETTINGS } from "../config.ts";
import { BusError } from "../core/errors.ts";
import { concatBytes } from "../protocol/bytes.ts";

/** The largest payload a write may have, and where that number came from (for the error line). */
export interface MessageLimit {
  bytes: number;
  source: string;
}

/** A payload over the limit: exit code 6, the limit and where it came from named. */
export function tooLarge(what: string, limit: MessageLimit): BusError {
  return new BusError("TOO_LARGE", `${what}: larger than the limit of ${limit.bytes} bytes (${limit.source})`);
}

/**
 * The client's own --max-message-size when given (`own`), else what the server says (`askServer`),
 * else the default (1 MiB).
 */
export async function messageLimitOf(own: number | undefined, askServer: () => Promise<number | undefined>): Promise<MessageLimit> {
  if (own !== undefined) return { bytes: own, source: "--max-message-size" };
  const server = await askServer();
  if (server !== undefined) return { bytes: server, source: "the server's --max-message-size" };
  const fallback = Number(SETTINGS.find((s) => s.key === "maxMessageSize")!.default);
  return { bytes: fallback, source: "the default; the server did not say its own, set --max-message-size to raise it" };
}

/** All of `chunks` (stdin), refused with TOO_LARGE as soon as it passes `limit` bytes: never read further than that. */
export async function readLimited(chunks: AsyncIterable<Uint8Array>, limit: MessageLimit): Promise<Uint8Array> {
  const read: Uint8Array[] = [];
  let size = 0;
  for await (const chunk of chunks) {
    size += chunk.length;
    if (size > limit.bytes) throw tooLarge(`stdin holds more than ${limit.bytes} bytes`, limit);
    read.push(chunk);
  }
  return read.length === 0 ? new Uint8Array(0) : concatBytes(read, size);
}
