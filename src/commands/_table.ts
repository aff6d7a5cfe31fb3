// What the operator commands (topics, stats, peek, top, ping) print for a person: aligned columns,
// sizes, rates and durations in short human units, and a one-line view of a payload. Their --json
// output needs none of this.

import { humanBytes } from "../human-bytes.ts";
import { isUtf8 } from "node:buffer";
import type { TopicStats } from "../client/client.ts";

/** Columns padded to their widest cell; numbers (and number-like cells) aligned right. */
export function table(headers: string[], rows: string[][], rightAligned: boolean[]): string {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]) =>
    cells
      .map((cell, i) => (rightAligned[i] ? cell.padStart(widths[i]!) : i === cells.length - 1 ? cell : cell.padEnd(widths[i]!)))
      .join("  ")
      .trimEnd();
  return [line(headers), ...rows.map(line)].join("\n") + "\n";
}

/** The columns of `msgbus topics` and `msgbus top`, from one list. */
export const TOPIC_COLUMNS: { header: string; cell: (t: TopicStats) => string; right: boolean }[] = [
  { header: "TOPIC", cell: (t) => t.name, right: false },
  { header: "DEPTH", cell: (t) => String(t.depth), right: true },
  { header: "BYTES", cell: (t) => formatBytes(t.bytes), right: true },
  { header: "IN FLIGHT", cell: (t) => String(t.inflight), right: true },
  { header: "SUBS", cell: (t) => String(t.subscribers), right: true },
  { header: "CONSUMERS", cell: (t) => String(t.consumers), right: true },
  { header: "IN/S", cell: (t) => formatRate(t.rateIn), right: true },
  { header: "OUT/S", cell: (t) => formatRate(t.rateOut), right: true },
];

export function topicTable(topics: TopicStats[]): string {
  return table(
    TOPIC_COLUMNS.map((c) => c.header),
    topics.map((t) => TOPIC_COLUMNS.map((c) => c.cell(t))),
    TOPIC_COLUMNS.map((c) => c.right),
  );
}

/** 412 B, 1.5 KiB, 12 MiB. */
export const formatBytes = humanBytes;

/** Messages per second: whole numbers from 10 up, one decimal below. */
export function formatRate(n: number): string {
  if (n === 0) return "0";
  return n >= 10 ? String(Math.round(n)) : n.toFixed(1);
}

/** 45s, 12m 3s, 5h 2m, 3d 4h. */
export function formatUptime(seconds: number | undefined): string {
  if (typeof seconds !== "number" || !Number.isFinite(seconds)) return "?"; // an older server does not say
  const d = Math.floor(seconds / 86400);
  const h = Math.floor((seconds % 86400) / 3600);
  const m = Math.floor((seconds % 3600) / 60);
  const s = seconds % 60;
  if (d > 0) return `${d}d ${h}h`;
  if (h > 0) return `${h}h ${m}m`;
  if (m > 0) return `${m}m ${s}s`;
  return `${s}s`;
}

/** Server time (ms) as local time, to the second: 2024-05-01 12:00:03. */
export function formatTime(ms: number): string {
  const d = new Date(ms);
  const two = (n: number) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${two(d.getMonth() + 1)}-${two(d.getDate())} ${two(d.getHours())}:${two(d.getMinutes())}:${two(d.getSeconds())}`;
}

const decoder = new TextDecoder();

/**
 * A payload on one line of at most `width` characters: text with newlines, tabs and other control
 * characters escaped; anything not UTF-8 as "binary" and the hex of its first bytes.
 */
export function payloadPreview(payload: Uint8Array, width: number): string {
  let text: string;
  if (isUtf8(payload)) {
    // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what it escapes
    text = decoder.decode(payload).replace(/[\u0000-\u001f\u007f]/g, (c) => {
      const named: Record<string, string> = { "\n": "\\n", "\r": "\\r", "\t": "\\t" };
      return named[c] ?? `\\x${c.charCodeAt(0).toString(16).padStart(2, "0")}`;
    });
  } else {
    const hex = [...payload.subarray(0, 32)].map((b) => b.toString(16).padStart(2, "0")).join(" ");
    text = `(binary) ${hex}${payload.length > 32 ? " …" : ""}`;
  }
  const chars = [...text];
  return chars.length <= width ? text : chars.slice(0, Math.max(1, width - 1)).join("") + "…";
}

/** Whether a person is reading stdout (a terminal), so output may be laid out for the screen. */
export function stdoutIsTerminal(): boolean {
  return Boolean(process.stdout.isTTY);
}
