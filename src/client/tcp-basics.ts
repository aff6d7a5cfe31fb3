// What the TCP client (tcp.ts) and the CLI's write fast path (commands/_write-fast.ts) share: where
// a tcp:// URL points, how long a connect may take, and the one wording of each failure. Small and
// free of the client's classes, so that the fast path loads only this.

import { BusError } from "../core/errors.ts";
import { RESP_PREFIX, codeOfRespPrefix } from "../protocol/resp-errors.ts";
import type { RespReader, RespValue } from "../protocol/resp-reader.ts";

export const DEFAULT_PORT = 6552;
export const CONNECT_TIMEOUT_MS = 10000;

/** Where tcp://host:port (tls://host:port) points; `label` names it in messages. */
export function tcpAddress(url: URL): { hostname: string; port: number; tls: boolean; label: string } {
  const hostname = url.hostname.replace(/^\[(.*)\]$/, "$1") || "127.0.0.1";
  const port = url.port ? Number(url.port) : DEFAULT_PORT;
  const tls = url.protocol === "tls:";
  const label = `${tls ? "tls" : "tcp"}://${url.hostname || "127.0.0.1"}:${port}`;
  return { hostname, port, tls, label };
}

/** Turns an error reply ("-WORD text") into a BusError, its code read from the reply's first word. */
export function replyError(reply: { readonly message: string }): BusError {
  const space = reply.message.indexOf(" ");
  const word = space < 0 ? reply.message : reply.message.slice(0, space);
  const text = space < 0 ? reply.message : reply.message.slice(space + 1);
  const code = codeOfRespPrefix(word);
  if (code === undefined) return new BusError("BAD_REQUEST", reply.message);
  // What a CLI user needs to hear: a token is missing, or the one given is wrong.
  if (word === RESP_PREFIX.UNAUTHORIZED) return new BusError(code, "the server requires a token (set --token or MSGBUS_TOKEN)");
  if (code === "UNAUTHORIZED") return new BusError(code, "the server refused the token");
  return new BusError(code, text);
}

const SOCKET_REASONS: Record<string, string> = {
  ECONNREFUSED: "connection refused",
  ECONNRESET: "connection reset",
  ENOTFOUND: "host not found",
  EAI_AGAIN: "host not found (DNS lookup failed)",
  ETIMEDOUT: "timed out",
  EHOSTUNREACH: "host unreachable",
  ENETUNREACH: "network unreachable",
  EPIPE: "connection closed",
};

/** A socket failure in words: "connection refused (ECONNREFUSED)". */
export function reasonOf(error: unknown): string {
  if (error instanceof BusError) return error.message;
  const code = (error as { code?: string } | undefined)?.code;
  if (code && SOCKET_REASONS[code]) return `${SOCKET_REASONS[code]} (${code})`;
  const message = error instanceof Error ? error.message : String(error);
  return code && !message.includes(code) ? `${message} (${code})` : message;
}

/** Failing to connect at all (refused, no such host, timed out, a TLS handshake refused). */
export function unreachable(label: string, error: unknown): BusError {
  return new BusError("UNAVAILABLE", `cannot reach msgbus at ${label}: ${reasonOf(error)}`);
}

function connectTimedOut(): BusError {
  return new BusError("UNAVAILABLE", `timed out after ${CONNECT_TIMEOUT_MS / 1000} s`);
}

/**
 * Waits at most CONNECT_TIMEOUT_MS for `connecting` (Bun.connect's promise) and then for `opened`
 * (given the socket: a TLS handshake, say). A failure or the timeout is "cannot reach msgbus at
 * label"; a socket that opens too late is closed.
 */
export async function connectWithin<S extends { end(): void }>(label: string, connecting: Promise<S>, opened?: (socket: S) => Promise<void>): Promise<S> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(connectTimedOut()), CONNECT_TIMEOUT_MS);
  });
  try {
    const socket = await Promise.race([connecting, timeout]);
    if (opened) await Promise.race([opened(socket), timeout]);
    return socket;
  } catch (error) {
    connecting.then(
      (socket) => socket.end(),
      () => {},
    );
    throw unreachable(label, error);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * A connection lost before its replies came (`error` undefined: the server closed it). A server
 * that closes at once, unanswered, may be a TLS port spoken to in plain text: the line says so.
 */
export function lostConnection(label: string, error: unknown, refusedAtOnce: boolean): BusError {
  if (error instanceof BusError) return error;
  let reason = error === undefined ? "the server closed the connection" : reasonOf(error);
  if (error === undefined && refusedAtOnce) reason += " before answering (if it uses TLS, connect with tls://)";
  return new BusError("UNAVAILABLE", `lost the connection to msgbus at ${label}: ${reason}`);
}

/**
 * Feeds one read to a connection's reply reader and hands each whole reply to `take`, in order,
 * while it returns true. Bytes that are not RESP end the socket and go to `lost` as the one
 * failure both TCP clients report.
 */
export function readReplies(
  reader: RespReader,
  chunk: Uint8Array,
  label: string,
  socket: { end(): void },
  lost: (error: BusError) => void,
  take: (value: RespValue) => boolean,
): void {
  reader.feed(chunk);
  for (;;) {
    let item: { value: RespValue } | undefined;
    try {
      item = reader.next();
    } catch {
      lost(new BusError("UNAVAILABLE", `${label} did not answer in RESP (is it a msgbus TCP port?)`));
      socket.end();
      return;
    }
    if (item === undefined || !take(item.value)) return;
  }
}

/** What asks the server for its largest payload (msgbus answers as Redis does). */
export const MAX_MESSAGE_SIZE_COMMAND = ["CONFIG", "GET", "proto-max-bulk-len"];

/** The server's largest payload from its reply to MAX_MESSAGE_SIZE_COMMAND; undefined when it did not say. */
export function maxMessageSizeOf(reply: RespValue): number | undefined {
  const items = Array.isArray(reply) ? reply : [];
  const value = items[1];
  const n = value instanceof Uint8Array ? Number(new TextDecoder().decode(value)) : typeof value === "string" ? Number(value) : NaN;
  return Number.isSafeInteger(n) && n >= 0 ? n : undefined;
}
