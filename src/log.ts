// The one consola instance. Areas log through tagged children: logFor("tcp").
// Logs go to stderr, so a client's stdout carries payloads only.

import { createConsola, type ConsolaInstance, type ConsolaReporter, type LogObject } from "consola";

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
    process.stderr.write(JSON.stringify(line) + "\n");
  },
};

const textReporter: ConsolaReporter = {
  log(entry: LogObject) {
    const text = entry.args.map((a) => (a instanceof Error ? a.message : typeof a === "string" ? a : JSON.stringify(a))).join(" ");
    const tag = entry.tag ? ` [${entry.tag}]` : "";
    process.stderr.write(`${entry.date.toISOString()} ${entry.type.toUpperCase()}${tag} ${text}\n`);
  },
};

export const log = createConsola({ level: LEVELS.info, reporters: [textReporter], stdout: process.stderr, stderr: process.stderr });

// consola's withTag copies level and reporters when called: keep every child, so that
// configureLog reaches the loggers modules made at import time.
const children: ConsolaInstance[] = [];

/** The logger of one area ("tcp", "http", "store", ...). */
export function logFor(tag: string): ConsolaInstance {
  const child = log.withTag(tag);
  children.push(child);
  return child;
}

export function configureLog(level: keyof typeof LEVELS, format: "text" | "json"): void {
  const reporters = [format === "json" ? jsonReporter : textReporter];
  for (const logger of [log, ...children]) {
    logger.level = LEVELS[level];
    logger.setReporters(reporters);
  }
}
