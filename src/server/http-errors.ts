// HTTP refusals: the one JSON error shape {"error": "...", "code": "..."} every HTTP, SSE and
// WebSocket refusal uses, with the status from protocol/http-status.ts, plus CORS headers.

import { type BusError, isBusError, type ErrorCode } from "../core/errors.ts";
import { HTTP_STATUS } from "../protocol/http-status.ts";
import { logFor } from "../log.ts";

const httpLog = logFor("http");

const EXTRA_HEADERS: Partial<Record<ErrorCode, Record<string, string>>> = {
  UNAUTHORIZED: { "www-authenticate": 'Bearer realm="msgbus"' },
  // The body may be unread: the connection cannot carry another request.
  TOO_LARGE: { connection: "close" },
  TOPIC_FULL: { "retry-after": "1" },
  BUS_FULL: { "retry-after": "1" },
  UNAVAILABLE: { "retry-after": "1" },
};

/** A JSON reply; `headers` are all it carries (the server's CORS headers among them). */
export function json(body: unknown, status: number, headers: Readonly<Record<string, string>>): Response {
  return Response.json(body, { status, headers });
}

/** `cors`: the server's CORS headers (see cors.ts), which every reply carries. */
export function busErrorResponse(error: BusError, cors: Readonly<Record<string, string>>): Response {
  const extra = EXTRA_HEADERS[error.code];
  return json({ error: error.message, code: error.code }, HTTP_STATUS[error.code], extra ? { ...cors, ...extra } : cors);
}

/** Any failure as a response: a BusError by the table, anything else a logged 500. */
export function errorResponse(error: unknown, cors: Readonly<Record<string, string>>): Response {
  if (isBusError(error)) return busErrorResponse(error, cors);
  httpLog.error(`internal error: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
  return json({ error: "internal server error", code: "INTERNAL" }, 500, cors);
}

/** 405: the route exists, the method does not. */
export function methodNotAllowed(method: string, path: string, allow: string[], cors: Readonly<Record<string, string>>): Response {
  return json({ error: `method ${method} is not allowed on ${path} (allowed: ${allow.join(", ")})`, code: "BAD_REQUEST" }, 405, {
    ...cors,
    allow: allow.join(", "),
  });
}

/** The close code a WebSocket gets when an error ends it: 4000 + the HTTP status. */
export function wsCloseCode(error: BusError): number {
  return 4000 + HTTP_STATUS[error.code];
}
