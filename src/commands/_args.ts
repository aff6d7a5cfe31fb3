// The argument definitions the subcommands share (settings, output, --reconnect), and the readers of
// their values: the topic positional, durations and whole numbers, each a usage error when wrong.

import { parseDuration, settingArgs } from "../config.ts";
import { parseWholeNumber } from "../core/numbers.ts";
import { usage } from "./_exit.ts";

export const clientArgs = settingArgs("client");
export const serverArgs = settingArgs("server");

/**
 * The connection flags of every client command (--host, --port, --url, --token, --cacert,
 * --insecure). The other client-side settings (--max-deliveries, --max-message-size) are declared
 * by the commands they make sense for.
 */
export const connectionArgs = Object.fromEntries(Object.entries(clientArgs).filter(([flag]) => flag !== "max-deliveries" && flag !== "max-message-size"));

export const outputArgs = {
  json: {
    type: "boolean" as const,
    description: 'one JSON object per line: id, topic, created, deliveries, payload (base64 with "encoding":"base64" when not UTF-8)',
  },
};

export const reconnectArg = {
  reconnect: {
    type: "boolean" as const,
    description: "when the server cannot be reached or goes away, try again (after 1 s, doubling up to 30 s) instead of exiting with code 4",
  },
};

/** The topic positional, required (citty's own check would exit 1 with the whole help text). */
export function topicArg(args: Record<string, unknown>, command: string, usageLine: string): string {
  const topic = args.topic;
  if (typeof topic !== "string" || topic === "") throw usage(`${command} needs a topic (usage: ${usageLine})`);
  return topic;
}

/** A duration option ("500ms", "30s", "5m", a plain number is seconds) in ms, or undefined when absent. */
export function durationOption(value: unknown, flag: string): number | undefined {
  if (value === undefined) return undefined;
  const ms = parseDuration(String(value));
  if (ms === undefined) throw usage(`--${flag}: expected a duration, e.g. 500ms, 30s, 5m, 1h; a plain number is seconds (got "${String(value)}")`);
  return ms;
}

/**
 * A whole-number option of at least `min` (decimal digits only: core/numbers.ts), or undefined when
 * absent. "0x10", "1e3", "1.0" and "-1" are usage errors, not numbers Number() would make of them.
 */
export function countOption(value: unknown, flag: string, min = 1): number | undefined {
  if (value === undefined) return undefined;
  const n = parseWholeNumber(String(value));
  if (n === undefined || n < min) throw usage(`--${flag}: expected a whole number of at least ${min} (got "${String(value)}")`);
  return n;
}
