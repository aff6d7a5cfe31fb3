// The HTTP side of the error table: each code's status (a WebSocket closed by an error uses 4000 +
// it), and the inverse a client falls back on when a reply has no JSON "code" (a proxy's page).

import type { ErrorCode } from "../core/errors.ts";

/**
 * Every code's status. Several codes share one: where they do, the code listed first here is what
 * that status alone means to a client (codeOfHttpStatus), so keep the general one first.
 */
export const HTTP_STATUS: Record<ErrorCode, number> = {
  BAD_REQUEST: 400,
  BAD_TOPIC: 400,
  UNAUTHORIZED: 401,
  FORBIDDEN: 403,
  NOT_FOUND: 404,
  NO_LEASE: 404,
  NO_MESSAGE: 404,
  TOO_LARGE: 413,
  TOPIC_FULL: 429,
  UNAVAILABLE: 503,
  SLOW_CONSUMER: 503,
  BUS_FULL: 507,
  STORAGE: 507,
};

const CODE_OF_STATUS = new Map<number, ErrorCode>();
for (const [code, status] of Object.entries(HTTP_STATUS) as [ErrorCode, number][]) {
  if (!CODE_OF_STATUS.has(status)) CODE_OF_STATUS.set(status, code);
}

/** What an error status means without a code: the table's first code for it, else by class. */
export function codeOfHttpStatus(status: number): ErrorCode {
  return CODE_OF_STATUS.get(status) ?? (status >= 500 ? "UNAVAILABLE" : "BAD_REQUEST");
}
