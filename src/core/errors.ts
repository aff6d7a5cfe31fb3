// The one error type of msgbus. Every transport maps these codes once, in its own table
// (RESP text, HTTP status, CLI exit code); nothing else should be thrown at a user.

export type ErrorCode =
  | "BAD_TOPIC" // topic name not allowed
  | "TOO_LARGE" // payload over --max-message-size
  | "TOPIC_FULL" // topic at its limit under the reject policy
  | "BUS_FULL" // global memory budget reached
  | "UNAUTHORIZED" // no or wrong token
  | "FORBIDDEN" // token lacks the right for this topic
  | "NO_MESSAGE" // nothing to take
  | "NO_LEASE" // ack/nack of an id that is not leased
  | "BAD_REQUEST" // malformed command or argument
  | "NOT_FOUND"
  | "SLOW_CONSUMER" // a reader fell too far behind
  | "UNAVAILABLE" // server unreachable or shutting down
  | "STORAGE"; // durable store failed

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
