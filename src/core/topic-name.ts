// What a topic may be called. Names under "_" are the server's own (HTTP uses /_/ for them);
// "." and ".." are path steps in a URL (clients and proxies remove them), so no topic has them.
import { BusError } from "./errors.ts";

const NAME = /^[A-Za-z0-9.\-:][A-Za-z0-9._\-:]{0,127}$/;
export const DEAD_SUFFIX = ".dead";

/** "." and "..": allowed characters, but no HTTP client can reach a topic of that name. */
function isDotSegment(name: string): boolean {
  return name === "." || name === "..";
}

export function isTopicName(name: string): boolean {
  return NAME.test(name) && !isDotSegment(name);
}

/** Throws BAD_TOPIC unless `name` is a topic a client may use. */
export function checkTopicName(name: string): string {
  if (isDotSegment(name)) throw new BusError("BAD_TOPIC", `topic name "${name}" is not allowed: URLs treat "." and ".." as path steps`);
  if (!NAME.test(name)) {
    // A dead-letter topic of a 124..128 character topic is longer than 128; allow exactly that.
    if (name.endsWith(DEAD_SUFFIX) && NAME.test(name.slice(0, -DEAD_SUFFIX.length))) return name;
    throw new BusError("BAD_TOPIC", badTopicReason(name));
  }
  return name;
}

function badTopicReason(name: string): string {
  if (name.length === 0) return "topic name is empty";
  if (name.length > 128) return `topic name is longer than 128 characters (${name.length})`;
  if (name.startsWith("_")) return `topic name "${name}" starts with "_" (reserved for the server)`;
  return `topic name "${printable(name)}" has a character outside A-Z a-z 0-9 . _ - :`;
}

function printable(s: string): string {
  return s.length > 40 ? JSON.stringify(s.slice(0, 40)).slice(1, -1) + "…" : JSON.stringify(s).slice(1, -1);
}

export function deadTopicOf(topic: string): string {
  return topic + DEAD_SUFFIX;
}
