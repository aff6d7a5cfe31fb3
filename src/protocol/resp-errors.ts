// The RESP side of the error table: each code's reply word (Redis style: "-WORD text"), the few
// Redis words msgbus also answers with, and the inverse a client reads replies with.

import { ERROR_CODES, type BusError, type ErrorCode } from "../core/errors.ts";

/** Code -> the error reply's first word. */
export const RESP_PREFIX: Record<ErrorCode, string> = {
  BAD_TOPIC: "BADTOPIC",
  TOO_LARGE: "TOOLARGE",
  TOPIC_FULL: "TOPICFULL",
  BUS_FULL: "BUSFULL",
  UNAUTHORIZED: "NOAUTH",
  FORBIDDEN: "NOPERM",
  NO_MESSAGE: "NOMESSAGE",
  NO_LEASE: "NOLEASE",
  BAD_REQUEST: "ERR",
  NOT_FOUND: "NOTFOUND",
  SLOW_CONSUMER: "SLOWCONSUMER",
  UNAVAILABLE: "UNAVAILABLE",
  STORAGE: "STORAGE",
};

/** Redis's own words for a refusal that is not the code's usual word (a client library expects them). */
const REDIS_WORDS = {
  /** AUTH or HELLO AUTH with a token the server does not know. */
  WRONGPASS: "UNAUTHORIZED",
  /** HELLO with a protocol version other than 2 or 3. */
  NOPROTO: "BAD_REQUEST",
} as const satisfies Record<string, ErrorCode>;

/** The reply AUTH and HELLO give a wrong token, as Redis words it. */
export const WRONGPASS_REPLY = "WRONGPASS invalid username-password pair or user is disabled.";
/** The reply HELLO gives an unknown protocol version, as Redis words it. */
export const NOPROTO_REPLY = "NOPROTO unsupported protocol version";

/** The error reply text (without "-" and CRLF) for a BusError: "WORD message". */
export function respError(error: BusError): string {
  return `${RESP_PREFIX[error.code]} ${error.message}`;
}

const CODE_OF_PREFIX = new Map<string, ErrorCode>(Object.entries(REDIS_WORDS));
for (const code of ERROR_CODES) CODE_OF_PREFIX.set(RESP_PREFIX[code], code);

/** An error reply's first word -> its code; undefined for a word msgbus never sends. */
export function codeOfRespPrefix(prefix: string): ErrorCode | undefined {
  return CODE_OF_PREFIX.get(prefix);
}
