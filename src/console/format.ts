// Numbers as a person reads them: sizes, durations, rates, times.

export { humanBytes as bytes } from "../human-bytes.ts";

export function count(n: number): string {
  return n.toLocaleString("en-US");
}

export function rate(n: number): string {
  if (n === 0) return "0";
  if (n < 10) return n.toFixed(1);
  return n < 10000 ? String(Math.round(n)) : `${(n / 1000).toFixed(0)}k`;
}

export function duration(seconds: number): string {
  const d = Math.floor(seconds / 86400);
  const h = Math.floor((seconds % 86400) / 3600);
  const m = Math.floor((seconds % 3600) / 60);
  if (d > 0) return `${d}d ${h}h`;
  if (h > 0) return `${h}h ${m}m`;
  if (m > 0) return `${m}m ${seconds % 60}s`;
  return `${seconds}s`;
}

export function time(ms: number): string {
  const date = new Date(ms);
  const today = new Date().toDateString() === date.toDateString();
  const clock = date.toLocaleTimeString("en-GB", { hour12: false });
  return today ? clock : `${date.toISOString().slice(0, 10)} ${clock}`;
}
