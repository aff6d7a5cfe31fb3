// The one error type of msgbus and the one list of its codes. Every transport maps these codes
// once, in its own table typed Record<ErrorCode, ...> (protocol/resp-errors.ts, protocol/http-status.ts,
// the CLI's exit codes), so the compiler says when a code is added and a table misses it.

export const ERROR_CODES = [
  "BAD_TOPIC", // topic name not allowed
  "TOO_LARGE", // payload over --max-message-size
  "TOPIC_FULL", // topic at its limit under the reject policy
  "BUS_FULL", // global memory budget reached
  "UNAUTHORIZED", // no or wrong token
  "FORBIDDEN", // token lacks the right for this topic
  "NO_MESSAGE", // nothing to take
  "NO_LEASE", // ack/nack of an id that is not leased
  "BAD_REQUEST", // malformed command or argument
  "NOT_FOUND",
  "SLOW_CONSUMER", // a reader fell too far behind
  "UNAVAILABLE", // server unreachable or shutting down
  "STORAGE", // durable store failed
] as const;

export type ErrorCode = (typeof ERROR_CODES)[number];

const KNOWN = new Set<string>(ERROR_CODES);

/** Whether `text` (a code a peer sent) is one of ours. */
export function isErrorCode(text: unknown): text is ErrorCode {
  return typeof text === "string" && KNOWN.has(text);
}

export class BusError extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string,
  ) {
    super(message);
    this.name = "BusError";
  }
}

export function isBusError(e: unknown): e is BusError {
  return e instanceof BusError;
}
