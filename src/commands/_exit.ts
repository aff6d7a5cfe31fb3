// The CLI side of the error table: each ErrorCode's exit code, and the one place a failure becomes
// one line on stderr and an exit code.

import { BusError, isBusError, type ErrorCode } from "../core/errors.ts";

/** The CLI side of the error table (documented in the README). */
export const EXIT_CODES: Record<ErrorCode | "OK" | "INTERNAL", number> = {
  OK: 0,
  INTERNAL: 1,
  BAD_REQUEST: 2,
  BAD_TOPIC: 2,
  NOT_FOUND: 2,
  NO_MESSAGE: 3,
  UNAVAILABLE: 4,
  UNAUTHORIZED: 5,
  FORBIDDEN: 5,
  TOO_LARGE: 6,
  TOPIC_FULL: 7,
  BUS_FULL: 7,
  NO_LEASE: 8,
  STORAGE: 9,
  SLOW_CONSUMER: 10,
};

/** Prints one line for a failure and exits with its code. Never a stack trace for a user's mistake. */
export function fail(error: unknown): never {
  if (isBusError(error)) {
    process.stderr.write(`msgbus: ${error.message}\n`);
    process.exit(EXIT_CODES[error.code]);
  }
  const message = error instanceof Error ? error.message : String(error);
  // A system error (a file or pipe we could not write, a handler we could not start) is not ours.
  const systemError = typeof (error as { code?: unknown })?.code === "string" && /^E[A-Z]+$/.test((error as { code: string }).code);
  process.stderr.write(systemError ? `msgbus: ${message}\n` : `msgbus: internal error: ${message}\n`);
  if (process.env.MSGBUS_DEBUG && error instanceof Error) process.stderr.write(`${error.stack}\n`);
  process.exit(EXIT_CODES.INTERNAL);
}

/** Runs a command body, turning every failure into fail(). */
export async function guarded(body: () => Promise<void> | void): Promise<void> {
  try {
    await body();
  } catch (error) {
    fail(error);
  }
}

/** A user's mistake in the arguments: exit code 2, one line. */
export function usage(message: string): BusError {
  return new BusError("BAD_REQUEST", message);
}
