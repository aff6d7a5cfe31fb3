// What every subcommand shares: the client settings' arguments, the exit-code table, and the
// one place a failure becomes one line on stderr and an exit code.

import { BusError, isBusError, type ErrorCode } from "../core/errors.ts";
import { settingArgs } from "../config.ts";

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

export const clientArgs = settingArgs("client");
export const serverArgs = settingArgs("server");

export const outputArgs = {
  json: {
    type: "boolean" as const,
    description: "one JSON object per line: id, topic, created, deliveries, payload (base64 with \"encoding\":\"base64\" when not UTF-8)",
  },
};

/** Prints one line for a failure and exits with its code. Never a stack trace for a user's mistake. */
export function fail(error: unknown): never {
  if (isBusError(error)) {
    process.stderr.write(`msgbus: ${error.message}\n`);
    process.exit(EXIT_CODES[error.code]);
  }
  const message = error instanceof Error ? error.message : String(error);
  process.stderr.write(`msgbus: internal error: ${message}\n`);
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

export function usage(message: string): BusError {
  return new BusError("BAD_REQUEST", message);
}
