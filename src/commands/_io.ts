// The CLI's stdin and stdout: payloads (and only payloads) out, one message per line for `sub`
// and `on`, a closed stdout as an ordinary end, and stdin read no further than the message limit
// (what that limit is, and the error past it).

import { encodeEnvelope } from "../protocol/envelope.ts";
import type { ReceivedMessage } from "../client/client.ts";
import type { Connected } from "./_connect.ts";
import { messageLimitOf, readLimited, type MessageLimit } from "./_limit.ts";

const encoder = new TextEncoder();

/** The --json form of a message: the envelope of src/protocol/envelope.ts, one line. */
export function messageJson(m: ReceivedMessage): string {
  return encodeEnvelope(m);
}

/**
 * What `sub` and `on` print for one message: the --json line, or the payload followed by a
 * newline unless it already ends with one (so text messages come out one per line).
 */
export function messageOutput(m: ReceivedMessage, json: boolean): Uint8Array {
  if (json) return encoder.encode(messageJson(m) + "\n");
  const p = m.payload;
  if (p.length > 0 && p[p.length - 1] === 10) return p;
  const out = new Uint8Array(p.length + 1);
  out.set(p);
  out[p.length] = 10;
  return out;
}

let stdoutError: Error | undefined;
const stdoutWaiting = new Set<(error: Error) => void>();

/** Writes to stdout and resolves once the bytes are handed on; rejects when stdout is closed (EPIPE). */
export function writeStdout(bytes: Uint8Array | string): Promise<void> {
  if (stdoutWaiting.size === 0 && process.stdout.listenerCount("error") === 0) {
    // A reader that went away (`msgbus sub t | head -1`) is an ordinary end, not a crash.
    process.stdout.on("error", (error: Error) => {
      stdoutError = error;
      for (const reject of stdoutWaiting) reject(error);
      stdoutWaiting.clear();
    });
  }
  if (stdoutError) return Promise.reject(stdoutError);
  return new Promise((resolve, reject) => {
    stdoutWaiting.add(reject);
    const settle = (error?: Error | null) => {
      stdoutWaiting.delete(reject);
      if (error) {
        stdoutError = error;
        reject(error);
      } else {
        resolve();
      }
    };
    try {
      process.stdout.write(bytes, settle);
    } catch (error) {
      settle(error instanceof Error ? error : new Error(String(error)));
    }
  });
}

/**
 * Stdin, chunk by chunk. Not Bun.stdin: on Windows a pending Bun.stdin read does not keep the
 * process alive (oven-sh/bun#41850), so `put` exited 0 having written nothing.
 */
export async function* stdinChunks(): AsyncGenerator<Uint8Array> {
  const { createReadStream } = await import("node:fs"); // only when stdin is read: `put t x` starts without it
  const stream = createReadStream("", { fd: 0, autoClose: false });
  for await (const chunk of stream) yield chunk as Buffer;
}

/** All of stdin, refused with TOO_LARGE as soon as it passes `limit` bytes: never read further than that. */
export function readStdin(limit: MessageLimit): Promise<Uint8Array> {
  return readLimited(stdinChunks(), limit);
}

export { tooLarge, type MessageLimit } from "./_limit.ts";

/**
 * The limit a client write is held to before anything is sent: the client's own
 * --max-message-size when given, else what the server says, else the default (1 MiB).
 */
export function messageLimit(connected: Connected): Promise<MessageLimit> {
  return messageLimitOf(connected.maxMessageSize, () => connected.client.maxMessageSize());
}
