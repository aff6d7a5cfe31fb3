// What the benchmarks share: starting the compiled msgbus and a real redis-server on free
// loopback ports, running redis-benchmark, reading a process's memory, printing tables.

import { existsSync, readFileSync } from "node:fs";
import { freePort } from "../test/helpers/ports.ts";
import { cleanupAll, spawnTracked } from "../test/helpers/processes.ts";

/** The binary measured: dist/msgbus, or MSGBUS_BINARY (e.g. a build of another commit, for a before/after). */
export const BINARY = process.env.MSGBUS_BINARY ?? new URL("../dist/msgbus", import.meta.url).pathname;

export interface Running {
  name: string;
  port: number;
  httpPort?: number;
  pid: number;
  stop(): Promise<void>;
}

export function need(command: string, hint: string): void {
  if (!Bun.which(command)) {
    console.error(`bench: ${command} not found (${hint})`);
    process.exit(2);
  }
}

export async function waitForPort(port: number, deadlineMs = 10000): Promise<void> {
  const end = Date.now() + deadlineMs;
  for (;;) {
    try {
      const socket = await Bun.connect({ hostname: "127.0.0.1", port, socket: { data() {} } });
      socket.end();
      return;
    } catch {
      if (Date.now() > end) throw new Error(`nothing listens on 127.0.0.1:${port}`);
      await Bun.sleep(20);
    }
  }
}

export async function startMsgbus(args: string[] = []): Promise<Running> {
  if (!existsSync(BINARY)) {
    console.error("bench: dist/msgbus missing: run `bun run build:local` first");
    process.exit(2);
  }
  const port = freePort();
  const httpPort = freePort();
  const proc = spawnTracked([BINARY, "serve", "--host", "127.0.0.1", "--port", String(port), "--http-port", String(httpPort), "--log-level", "warn", ...args], {
    stdout: "ignore",
    stderr: "inherit",
  });
  await waitForPort(port);
  await waitForPort(httpPort);
  return {
    name: "msgbus",
    port,
    httpPort,
    pid: proc.pid,
    async stop() {
      proc.kill("SIGTERM");
      await proc.exited;
    },
  };
}

export async function startRedis(args: string[] = []): Promise<Running> {
  need("redis-server", "apt-get install redis-server");
  const port = freePort();
  const proc = spawnTracked(["redis-server", "--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", ...args], {
    stdout: "ignore",
    stderr: "inherit",
  });
  await waitForPort(port);
  return {
    name: "redis",
    port,
    pid: proc.pid,
    async stop() {
      proc.kill("SIGTERM");
      await proc.exited;
    },
  };
}

/** Runs redis-benchmark and returns requests/s per test name (PING_INLINE, LPUSH, ...). */
export async function redisBenchmark(port: number, args: string[]): Promise<Record<string, number>> {
  return (await redisBenchmarkTimed(port, args)).rates;
}

/**
 * redis-benchmark's requests/s per test name and the CPU time (user + system, seconds) the client
 * itself used: on a machine of few cores the client can be what limits the rate (see resp in run.ts).
 */
export async function redisBenchmarkTimed(port: number, args: string[]): Promise<{ rates: Record<string, number>; clientCpu: number }> {
  need("redis-benchmark", "apt-get install redis-tools");
  const proc = Bun.spawn(["redis-benchmark", "-h", "127.0.0.1", "-p", String(port), "--csv", ...args], { stdout: "pipe", stderr: "pipe" });
  const out = await new Response(proc.stdout).text();
  await proc.exited;
  const rates: Record<string, number> = {};
  for (const line of out.split("\n")) {
    const m = /^"([^"]+)","([\d.]+)"/.exec(line);
    if (m) rates[m[1]!] = Number(m[2]);
  }
  const usage = proc.resourceUsage();
  return { rates, clientCpu: usage ? Number(usage.cpuTime.total) / 1e6 : NaN };
}

/** Resident memory of a process in bytes (Linux). */
/** redis-cli --raw against a port on 127.0.0.1: its reply's lines; throws on an error reply, naming the command. */
export async function redisCli(port: number, args: string[]): Promise<string[]> {
  const child = Bun.spawn(["redis-cli", "-h", "127.0.0.1", "-p", String(port), "--raw", ...args], { stdout: "pipe", stderr: "pipe" });
  const [out, code] = await Promise.all([new Response(child.stdout).text(), child.exited]);
  if (code !== 0 || /^(ERR|WRONGTYPE|NOAUTH|NOPERM)/.test(out)) throw new Error(`redis-cli ${args.join(" ")}: ${out.trim()}`);
  return out.split("\n").filter((line) => line !== "");
}

export function rss(pid: number, field: "VmRSS" | "RssAnon" | "RssFile" = "VmRSS"): number {
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  const m = new RegExp(`${field}:\\s+(\\d+) kB`).exec(status);
  return m ? Number(m[1]) * 1024 : NaN;
}

/**
 * How often the process's main thread has gone to sleep (voluntary context switches, from /proc):
 * for an event-loop server, each time it ran out of work and a client's send had to wake it.
 */
export function sleeps(pid: number): number {
  const m = /^voluntary_ctxt_switches:\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
  return m ? Number(m[1]) : NaN;
}

/** User + system CPU time a process has used, in seconds (Linux; clock ticks of 10 ms). */
export function cpuSeconds(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]!.split(" ");
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

export function table(headers: string[], rows: (string | number)[][]): string {
  const cells = [headers, ...rows.map((r) => r.map((c) => (typeof c === "number" ? format(c) : c)))];
  const widths = headers.map((_, i) => Math.max(...cells.map((r) => String(r[i]).length)));
  const line = (r: (string | number)[]) => "| " + r.map((c, i) => String(c).padEnd(widths[i]!)).join(" | ") + " |";
  return [line(cells[0]!), "|" + widths.map((w) => "-".repeat(w + 2)).join("|") + "|", ...cells.slice(1).map(line)].join("\n");
}

export function format(n: number): string {
  if (!Number.isFinite(n)) return "n/a";
  if (Math.abs(n) >= 1000) return Math.round(n).toLocaleString("en-US");
  if (Math.abs(n) >= 10) return n.toFixed(1);
  return n.toFixed(2);
}

export function mib(bytes: number): string {
  return `${(bytes / 1048576).toFixed(1)} MiB`;
}

export { cleanupAll };
