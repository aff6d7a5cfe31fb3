// How `msgbus bench` shows its numbers: the summary table (stdout), the CSV file (--csv) and the
// live progress line (stderr, rewritten in place).

import type { Counts, Plan, RoleResult } from "./modes.ts";

const PERCENTILES = [50, 90, 99, 99.9];

export const CSV_HEADER = [
  "mode",
  "role",
  "url",
  "clients",
  "msgs",
  "bytes",
  "seconds",
  "msgs_per_s",
  "bytes_per_s",
  "p50_ms",
  "p90_ms",
  "p99_ms",
  "p99_9_ms",
  "max_ms",
] as const;

const whole = (n: number) => Math.round(n).toLocaleString("en-US");
const ms = (n: number | undefined) => (n === undefined ? "-" : n.toFixed(3));

/** Bytes per second (or bytes) in the largest binary unit under 1024. */
export function byteRate(bytes: number): string {
  const units = ["B", "KiB", "MiB", "GiB"];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${value.toFixed(unit === 0 ? 0 : 1)} ${units[unit]}`;
}

/** The summary: one row per role, latencies in ms. */
export function summaryTable(roles: RoleResult[]): string {
  const header = ["role", "clients", "msgs", "seconds", "msgs/s", "bytes/s", "p50 ms", "p90 ms", "p99 ms", "p99.9 ms", "max ms"];
  const rows = roles.map((r) => {
    const latencies = r.latency.percentiles(PERCENTILES);
    return [
      r.role,
      String(r.clients),
      whole(r.msgs),
      r.seconds.toFixed(2),
      whole(r.msgs / r.seconds),
      `${byteRate(r.bytes / r.seconds)}/s`,
      ...latencies.map(ms),
      ms(r.latency.count > 0 ? r.latency.max : undefined),
    ];
  });
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i]!.length)));
  const line = (cells: string[]) => cells.map((cell, i) => (i === 0 ? cell.padEnd(widths[i]!) : cell.padStart(widths[i]!))).join("  ");
  return [line(header), ...rows.map(line)].join("\n");
}

/** The CSV file: a header and one row per role; plain numbers (no separators), latencies in ms. */
export function summaryCsv(plan: Plan, url: string, roles: RoleResult[]): string {
  const field = (value: string | number) => {
    const text = String(value);
    return /[",\n\r]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
  };
  const rows = roles.map((r) => {
    const latencies = r.latency.percentiles(PERCENTILES).map((v) => (v === undefined ? "" : v.toFixed(3)));
    return [
      plan.mode,
      r.role,
      url,
      r.clients,
      r.msgs,
      r.bytes,
      r.seconds.toFixed(3),
      Math.round(r.msgs / r.seconds),
      Math.round(r.bytes / r.seconds),
      ...latencies,
      r.latency.count > 0 ? r.latency.max.toFixed(3) : "",
    ].map(field);
  });
  return [CSV_HEADER.join(","), ...rows.map((row) => row.join(","))].join("\n") + "\n";
}

/** The progress line, rewritten in place on a terminal every 200 ms until stopped. */
export function startProgress(plan: Plan, counts: Counts, write: (text: string) => void): () => void {
  const target = plan.msgs !== undefined ? `/${whole(plan.msgs)}` : "";
  const render = () => {
    const seconds = counts.started ? (performance.now() - counts.started) / 1000 : 0;
    const rate = seconds > 0 ? whole(counts.written / seconds) : "0";
    const received = plan.mode === "pub" ? "" : `, ${whole(counts.received)} ${plan.mode === "queue" ? "consumed" : "received"}`;
    write(`\r\x1b[K${plan.mode}: ${whole(counts.written)}${target} written${received}, ${rate} writes/s, ${seconds.toFixed(1)} s`);
  };
  const timer = setInterval(render, 200);
  return () => {
    clearInterval(timer);
    write("\r\x1b[K");
  };
}
