// HTTP refusals: the one JSON error shape {"error": "...", "code": "..."} every HTTP, SSE and
// WebSocket refusal uses, with the status from protocol/http-status.ts, plus CORS headers.

import { BusError, isBusError, type ErrorCode } from "../core/errors.ts";
import { HTTP_STATUS } from "../protocol/http-status.ts";
import { logFor } from "../log.ts";

const httpLog = logFor("http");

/**
 * Headers every response carries, per --allow-origin: which browser pages on other origins may
 * read replies and our headers. Set once at start by configureCors().
 */
export const CORS_HEADERS: Record<string, string> = {
  "access-control-allow-origin": "*",
  "access-control-expose-headers": "Msgbus-Id, Msgbus-Topic, Msgbus-Created, Msgbus-Deliveries, Msgbus-Origin-Topic, Msgbus-Origin-Id, Msgbus-Origin-Deliveries, Msgbus-Lease-Expires",
};

/** "*" (any page), one origin ("https://app.example"), or "none" (no CORS: same-origin pages only). */
export function configureCors(allowOrigin: string): void {
  if (allowOrigin === "none") {
    for (const key of Object.keys(CORS_HEADERS)) delete CORS_HEADERS[key];
  } else {
    CORS_HEADERS["access-control-allow-origin"] = allowOrigin;
    if (allowOrigin !== "*") CORS_HEADERS.vary = "Origin";
  }
}

/**
 * Whether a browser page from `origin` may open a WebSocket (browsers do not apply CORS to them,
 * so the server checks). No Origin header: not a browser, always allowed.
 */
export function originAllowed(allowOrigin: string, origin: string | null): boolean {
  if (origin === null || allowOrigin === "*") return true;
  return allowOrigin !== "none" && origin === allowOrigin;
}

const EXTRA_HEADERS: Partial<Record<ErrorCode, Record<string, string>>> = {
  UNAUTHORIZED: { "www-authenticate": 'Bearer realm="msgbus"' },
  // The body may be unread: the connection cannot carry another request.
  TOO_LARGE: { connection: "close" },
  TOPIC_FULL: { "retry-after": "1" },
  BUS_FULL: { "retry-after": "1" },
  UNAVAILABLE: { "retry-after": "1" },
};

export function json(body: unknown, status = 200, headers: Record<string, string> = {}): Response {
  return Response.json(body, { status, headers: { ...CORS_HEADERS, ...headers } });
}

export function busErrorResponse(error: BusError): Response {
  return json({ error: error.message, code: error.code }, HTTP_STATUS[error.code], EXTRA_HEADERS[error.code]);
}

/** Any failure as a response: a BusError by the table, anything else a logged 500. */
export function errorResponse(error: unknown): Response {
  if (isBusError(error)) return busErrorResponse(error);
  httpLog.error(`internal error: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
  return json({ error: "internal server error", code: "INTERNAL" }, 500);
}

/** 405: the route exists, the method does not. */
export function methodNotAllowed(method: string, path: string, allow: string[]): Response {
  return json({ error: `method ${method} is not allowed on ${path} (allowed: ${allow.join(", ")})`, code: "BAD_REQUEST" }, 405, { allow: allow.join(", ") });
}

/** The close code a WebSocket gets when an error ends it: 4000 + the HTTP status. */
export function wsCloseCode(error: BusError): number {
  return 4000 + HTTP_STATUS[error.code];
}
