// The one consola instance, configured once by configureLog. Areas log through logFor("tcp"): a
// thin tag that hands every line to that instance when it is written, so settings made after a
// module was imported apply. Logs go to stderr, so a client's stdout carries payloads only.
//
// Start-up and idle memory (docs/BENCHMARKS.md): consola's core (no node:tty, node:util, and no
// default reporters reading process.stdout when it loads), and lines written with console.error,
// which Bun writes straight to fd 2 (synchronously, in order with process.stderr.write): Node's
// stream machinery behind process.stderr costs a server ~6 MB resident and a client some ms.

import { createConsola, type ConsolaReporter, type LogObject } from "consola/core";

const LEVELS = { error: 0, warn: 1, info: 3, debug: 4 } as const;

const jsonReporter: ConsolaReporter = {
  log(entry: LogObject) {
    const [first, ...rest] = entry.args;
    const line: Record<string, unknown> = {
      time: entry.date.toISOString(),
      level: entry.type,
      ...(entry.tag ? { area: entry.tag } : {}),
      msg: typeof first === "string" ? first : first instanceof Error ? first.message : JSON.stringify(first),
    };
    if (rest.length > 0) line.detail = rest.map((r) => (r instanceof Error ? r.message : r));
    writeLine(JSON.stringify(line));
  },
};

const textReporter: ConsolaReporter = {
  log(entry: LogObject) {
    const text = entry.args.map((a) => (a instanceof Error ? a.message : typeof a === "string" ? a : JSON.stringify(a))).join(" ");
    const tag = entry.tag ? ` [${entry.tag}]` : "";
    writeLine(`${entry.date.toISOString()} ${entry.type.toUpperCase()}${tag} ${text}`);
  },
};

/** One line on stderr; "%s" so that a % in the text is never taken for a format. */
function writeLine(line: string): void {
  console.error("%s", line);
}

export const log = createConsola({ level: LEVELS.info, reporters: [textReporter] });

/** What an area logs through: the levels msgbus uses. */
export interface Logger {
  error(...args: unknown[]): void;
  warn(...args: unknown[]): void;
  info(...args: unknown[]): void;
  debug(...args: unknown[]): void;
}

/** The logger of one area ("tcp", "http", "store", ...): `log` itself, with the area as tag. */
export function logFor(tag: string): Logger {
  // consola takes a single { tag, args } argument as the line's fields.
  return {
    error: (...args) => log.error({ tag, args }),
    warn: (...args) => log.warn({ tag, args }),
    info: (...args) => log.info({ tag, args }),
    debug: (...args) => log.debug({ tag, args }),
  };
}

export function configureLog(level: keyof typeof LEVELS, format: "text" | "json"): void {
  log.level = LEVELS[level];
  log.setReporters([format === "json" ? jsonReporter : textReporter]);
}
