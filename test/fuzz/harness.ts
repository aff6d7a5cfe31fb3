// What every fuzzer shares: a server with a sentinel message queued before the run, a bounded
// loop of concurrent sessions, a liveness monitor, and the checks after the run (alive, answers,
// RSS under RSS_LIMIT_BYTES, the sentinel still queued, nothing alarming in its output).

import net from "node:net";
import { encodeCommand } from "../../src/protocol/resp-writer.ts";
import { RespErrorValue, RespReader, type RespValue } from "../../src/protocol/resp-reader.ts";
import { startServer, type TestServer } from "../helpers/server.ts";
import { rssOf } from "../e2e/transports.ts";
import { Rng, SENTINEL_TOPIC, fuzzSeed, fuzzTimeMs } from "./generators.ts";

/** The bound on the server's resident memory during and after a run (docs/TESTING.md). */
export const RSS_LIMIT_BYTES = 400 * 1024 * 1024;
/** How long PING (TCP) and /_/health (HTTP) may take to answer after a run, and during it. */
export const ANSWER_DEADLINE_MS = 2000;
/** The server's --max-message-size in fuzz runs: small, so oversized inputs are cheap to make. */
export const FUZZ_MAX_MESSAGE_SIZE = 65536;

export interface FuzzServer {
  server: TestServer;
  sentinel: string;
}

/** Starts the compiled binary and queues the sentinel message through TCP. */
export async function startFuzzServer(args: string[] = []): Promise<FuzzServer> {
  const server = await startServer({ args: ["--max-message-size", String(FUZZ_MAX_MESSAGE_SIZE), ...args] });
  const sentinel = `sentinel queued before the fuzz run ${Date.now()}`;
  const reply = await respOnce(server.port, [["PUT", SENTINEL_TOPIC, sentinel]], ANSWER_DEADLINE_MS);
  if (typeof reply[0] !== "number") throw new Error(`could not queue the sentinel: ${String(reply[0])}`);
  return { server, sentinel };
}

/** Sends commands on a fresh connection; resolves with their replies, or what came before the deadline. */
export function respOnce(port: number, commands: (string | Uint8Array)[][], timeoutMs: number, wanted = commands.length): Promise<RespValue[]> {
  return new Promise((resolve) => {
    const reader = new RespReader();
    const replies: RespValue[] = [];
    const socket = net.connect(port, "127.0.0.1");
    const finish = () => {
      clearTimeout(timer);
      socket.destroy();
      resolve(replies);
    };
    const timer = setTimeout(finish, timeoutMs);
    socket.on("error", finish);
    socket.on("close", finish);
    socket.on("data", (chunk: Buffer) => {
      reader.feed(new Uint8Array(chunk));
      for (let item = reader.next(); item; item = reader.next()) replies.push(item.value);
      if (replies.length >= wanted) finish();
    });
    socket.on("connect", () => socket.write(Buffer.concat(commands.map((c) => encodeCommand(c)))));
  });
}

async function healthAnswers(server: TestServer): Promise<boolean> {
  try {
    const response = await fetch(`${server.httpUrl}/_/health`, { signal: AbortSignal.timeout(ANSWER_DEADLINE_MS) });
    return response.status === 200;
  } catch {
    return false;
  }
}

async function pingAnswers(port: number): Promise<boolean> {
  const [reply] = await respOnce(port, [["PING"]], ANSWER_DEADLINE_MS);
  return reply === "PONG";
}

/** A reply as one short line, for messages. */
export function text(v: RespValue | undefined): string {
  if (v instanceof Uint8Array) return JSON.stringify(new TextDecoder().decode(v.subarray(0, 80)));
  if (v instanceof RespErrorValue) return `-${v.message}`;
  if (Array.isArray(v)) return `[${v.slice(0, 4).map(text).join(", ")}${v.length > 4 ? ", …" : ""}]`;
  return String(v);
}

/** Output that means the server broke, whatever a fuzzer sent. */
const ALARMING: [RegExp, string][] = [
  [/\n\s+at \S/, "a stack trace"],
  [/TimeoutOverflowWarning/, "TimeoutOverflowWarning (issue 8 item 12)"],
  [/uncaught|unhandled/i, "an uncaught exception or unhandled rejection"],
  [/^error: /im, "an error printed by the runtime"],
  [/panic|segmentation fault|Bun v\d.*crashed/i, "a crash"],
];

/** Problems in a process's output, one line each. */
export function alarmingOutput(output: string): string[] {
  return ALARMING.filter(([pattern]) => pattern.test(output)).map(([pattern, what]) => {
    const at = output.search(pattern);
    return `${what}: ${JSON.stringify(output.slice(Math.max(0, at - 200), at + 300))}`;
  });
}

/** The invariants after a run; returns what is violated (empty when all hold). */
export async function checkServer({ server, sentinel }: FuzzServer, peakRss: number): Promise<string[]> {
  const problems: string[] = [];
  if (server.proc.exitCode !== null || server.proc.signalCode !== null) {
    problems.push(`the server exited (code ${server.proc.exitCode ?? server.proc.signalCode})`);
    return problems;
  }
  if (!(await pingAnswers(server.port))) problems.push(`PING on a fresh connection got no PONG within ${ANSWER_DEADLINE_MS} ms`);
  if (!(await healthAnswers(server))) problems.push(`GET /_/health got no 200 within ${ANSWER_DEADLINE_MS} ms`);
  const rss = rssOf(server.proc.pid);
  const peak = Math.max(peakRss, rss);
  if (peak > RSS_LIMIT_BYTES) problems.push(`server RSS reached ${mib(peak)} (now ${mib(rss)}), over the ${mib(RSS_LIMIT_BYTES)} bound`);
  // LLEN counts the queue; SUB ... SINCE 0 replays it without taking, so the payload is checked too.
  const [depth, subscribed, replay] = await respOnce(
    server.port,
    [
      ["LLEN", SENTINEL_TOPIC],
      ["SUB", SENTINEL_TOPIC, "SINCE", "0"],
    ],
    ANSWER_DEADLINE_MS,
    3,
  );
  if (depth !== 1) problems.push(`topic ${SENTINEL_TOPIC} holds ${text(depth)} queued messages, not the 1 sentinel queued before the run`);
  else if (!Array.isArray(replay) || text(replay[2]) !== JSON.stringify(sentinel))
    problems.push(`the sentinel replayed by SUB SINCE 0 is ${text(Array.isArray(replay) ? replay[2] : replay)} (SUB answered ${text(subscribed)})`);
  // Reads of topics never written must not have used up --max-topics (issue 8 item 11).
  const fresh = `fuzz-fresh-${Date.now()}`;
  const [written] = await respOnce(server.port, [["PUT", fresh, "x"]], ANSWER_DEADLINE_MS);
  if (written !== 1) problems.push(`a write to a new topic after the run answered ${text(written)} (issue 8 item 11 when BUSFULL: reads used up --max-topics)`);
  problems.push(...alarmingOutput(server.stdoutText() + server.stderrText()));
  return problems;
}

export const mib = (bytes: number) => `${(bytes / 1048576).toFixed(1)} MiB`;

/** The recent inputs of a run, for the failure message: enough to reproduce by hand. */
export class InputLog {
  private readonly entries: string[] = [];
  constructor(private readonly keep = 25) {}
  add(session: number, what: string, bytes?: Uint8Array): void {
    const shown = bytes === undefined ? "" : ` ${preview(bytes)}`;
    this.entries.push(`[${new Date().toISOString().slice(11, 23)}] #${session} ${what}${shown}`);
    if (this.entries.length > this.keep) this.entries.shift();
  }
  toString(): string {
    return this.entries.join("\n");
  }
}

/** Bytes as a JSON string (latin1), cut to 160 characters with the length noted. */
export function preview(bytes: Uint8Array): string {
  const shown = JSON.stringify(Buffer.from(bytes.subarray(0, 160)).toString("latin1"));
  return bytes.length > 160 ? `${shown}… (${bytes.length} bytes)` : shown;
}

export interface RunOptions {
  /** Default time when MSGBUS_FUZZ_TIME_MS is not set. */
  defaultTimeMs: number;
  /** Sessions running at once. */
  workers: number;
  /** One session: a connection's worth of inputs. Resolves when it is done. */
  session: (rng: Rng, id: number, run: RunState) => Promise<void>;
}

export interface RunState {
  readonly deadline: number;
  readonly log: InputLog;
  /** Bytes sent so far; sessions stop sending once over budget(). */
  sent: number;
  budget(): number;
  /** Connections left open until the checks (half-sent input): at most MAX_PARKED. */
  park(socket: { destroy(): void }): boolean;
}

/** Half-open connections kept through the checks, so their cost shows in the RSS. */
export const MAX_PARKED = 24;
/** Bytes a run may send per second of its time, on top of a start allowance. */
const BYTES_PER_SECOND = 8 * 1048576;
const START_BYTES = 16 * 1048576;

export interface RunResult {
  seed: number;
  timeMs: number;
  sessions: number;
  sent: number;
  peakRss: number;
  /** Moments the server did not answer PING within the deadline, with what was sent just before. */
  stalls: string[];
  problems: string[];
  report(): string;
}

/**
 * Runs sessions until the time is up, watching the server's RSS and PING latency, then checks the
 * invariants while the parked connections are still open.
 */
export async function fuzz(target: FuzzServer, name: string, options: RunOptions): Promise<RunResult> {
  const seed = fuzzSeed();
  const timeMs = fuzzTimeMs(options.defaultTimeMs);
  const rng = new Rng(seed);
  const started = Date.now();
  const log = new InputLog();
  const parked: { destroy(): void }[] = [];
  const state: RunState = {
    deadline: started + timeMs,
    log,
    sent: 0,
    budget: () => START_BYTES + ((Date.now() - started) / 1000) * BYTES_PER_SECOND,
    park(socket) {
      if (parked.length >= MAX_PARKED) return false;
      parked.push(socket);
      return true;
    },
  };
  const server = target.server;
  let peakRss = rssOf(server.proc.pid);
  const stalls: string[] = [];
  let monitoring = true;
  const monitor = (async () => {
    while (monitoring) {
      if (server.proc.exitCode !== null || server.proc.signalCode !== null) return;
      peakRss = Math.max(peakRss, rssOf(server.proc.pid));
      const asked = Date.now();
      if (!(await pingAnswers(server.port)) && monitoring && stalls.length < 1) {
        stalls.push(`no PONG within ${ANSWER_DEADLINE_MS} ms at +${asked - started} ms; the inputs just before:\n${log}`);
      }
      await Bun.sleep(250);
    }
  })();

  let sessions = 0;
  const worker = async (workerRng: Rng) => {
    while (Date.now() < state.deadline) {
      const id = ++sessions;
      try {
        await options.session(workerRng.fork(), id, state);
      } catch (error) {
        log.add(id, `session threw ${(error as Error).message}`);
      }
    }
  };
  await Promise.all(Array.from({ length: options.workers }, () => worker(rng.fork())));
  monitoring = false;
  await monitor;
  peakRss = server.proc.exitCode === null ? Math.max(peakRss, rssOf(server.proc.pid)) : peakRss;
  const problems = await checkServer(target, peakRss);
  for (const socket of parked) socket.destroy();
  const sent = state.sent;
  return {
    seed,
    timeMs,
    sessions,
    sent,
    peakRss,
    stalls,
    problems,
    report() {
      const replay = `replay: MSGBUS_FUZZ_SEED=${seed} MSGBUS_FUZZ_TIME_MS=${timeMs} bun test test/fuzz/${name}.fuzz.test.ts`;
      const head = `${name} fuzz: seed ${seed}, ${timeMs} ms, ${sessions} sessions, ${mib(sent)} sent, peak RSS ${mib(peakRss)}`;
      const body = [...problems.map((p) => `- ${p}`), ...stalls.map((s) => `- stall: ${s}`)].join("\n");
      return `${head}\n${replay}\n${body}${problems.length ? `\n--- last inputs ---\n${log}` : ""}`;
    },
  };
}

/** Sleeps a random short while (most often not at all): pauses between writes. */
export function pause(rng: Rng): Promise<void> {
  const roll = rng.float();
  if (roll < 0.6) return Promise.resolve();
  return Bun.sleep(roll < 0.95 ? rng.int(20) : rng.range(50, 300));
}

/** Writes to a node socket, resolving once the kernel took it (or the socket is gone). */
export function write(socket: net.Socket, bytes: Uint8Array): Promise<void> {
  return new Promise((resolve) => {
    if (socket.destroyed) return resolve();
    const timer = setTimeout(resolve, 500); // a server that stops reading must not stall the fuzzer
    socket.write(bytes, () => {
      clearTimeout(timer);
      resolve();
    });
  });
}

/** A connected node socket that counts what it receives and swallows errors. */
export async function open(port: number): Promise<{ socket: net.Socket; received: () => number; closed: () => boolean; text: () => string }> {
  const socket = net.connect(port, "127.0.0.1");
  let received = 0;
  let closed = false;
  let head = "";
  socket.on("data", (chunk: Buffer) => {
    received += chunk.length;
    if (head.length < 4096) head += chunk.toString("latin1");
  });
  socket.on("error", () => (closed = true));
  socket.on("close", () => (closed = true));
  await new Promise<void>((resolve) => {
    socket.once("connect", () => resolve());
    socket.once("error", () => resolve());
  });
  return { socket, received: () => received, closed: () => closed, text: () => head };
}

export { SENTINEL_TOPIC };

/** A test's timeout: its fuzz time plus room for the checks (each bounded by ANSWER_DEADLINE_MS) and startup. */
export function fuzzTimeBudget(defaultTimeMs: number): number {
  return fuzzTimeMs(defaultTimeMs) + 30000;
}
