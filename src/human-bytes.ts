// A byte count as a person reads it (412 B, 1.5 KiB, 12 MiB): one rule for the CLI's tables and
// the web console, which bundles this file into the page (no Bun or Node API here).

export function humanBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  const units = ["KiB", "MiB", "GiB", "TiB"];
  let value = n / 1024;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${value < 10 ? value.toFixed(1) : Math.round(value)} ${units[unit]}`;
}
