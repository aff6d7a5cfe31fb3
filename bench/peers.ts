// msgbus beside its peers in one run: fan-out of 100-byte messages to 1, 10 and 100 subscribers
// (msgbus WebSocket and RESP `SUB`, redis-server `SUBSCRIBE`, nats-server core pub/sub), latency
// from write to a subscriber at a fixed rate (p50/p99), and idle RSS. Raw-socket clients that count
// bytes, so the figures are the servers', not a client library's.
// Usage: bun bench/peers.ts [--quick]   (or `bun run bench --only fanout,latency`)

import net from "node:net";
import { freePort } from "../test/helpers/ports.ts";
import { spawnTracked } from "../test/helpers/processes.ts";
import { encodeCommand } from "../src/protocol/resp-writer.ts";
import { readdirSync, readFileSync } from "node:fs";
import { cleanupAll, cpuSeconds, format, mib, need, type Running, rss, startMsgbus, startRedis, table, waitForPort } from "./lib.ts";

const TOPIC = "fan";
const SIZE = 100;

export async function startNats(): Promise<Running> {
  need("nats-server", "apt-get install nats-server");
  const port = freePort();
  const proc = spawnTracked(["nats-server", "-a", "127.0.0.1", "-p", String(port)], { stdout: "ignore", stderr: "ignore" });
  await waitForPort(port);
  return {
    name: "nats",
    port,
    pid: proc.pid,
    async stop() {
      proc.kill("SIGTERM");
      await proc.exited;
    },
  };
}

async function open(port: number): Promise<net.Socket> {
  const socket = net.connect(port, "127.0.0.1");
  socket.setNoDelay(true);
  await new Promise<void>((resolve, reject) => {
    socket.once("connect", () => resolve());
    socket.once("error", reject);
  });
  return socket;
}

/** Counts occurrences of `marker` in a byte stream (across chunk boundaries). */
class MarkerCounter {
  count = 0;
  private carry = Buffer.alloc(0);
  constructor(private readonly marker: Buffer) {}
  feed(chunk: Buffer): void {
    const data = this.carry.length ? Buffer.concat([this.carry, chunk]) : chunk;
    let at = data.indexOf(this.marker);
    let last = -1;
    while (at >= 0) {
      this.count++;
      last = at;
      at = data.indexOf(this.marker, at + this.marker.length);
    }
    const keepFrom = Math.max(last + this.marker.length, data.length - this.marker.length + 1);
    this.carry = Buffer.from(data.subarray(keepFrom));
  }
}

/** One kind of server and subscriber: how to subscribe, what one delivery looks like, how to publish. */
interface Kind {
  name: string;
  start(): Promise<Running>;
  /** Opens a subscriber; calls `delivered(chunk)` with bytes after the subscription is confirmed. */
  subscribe(server: Running, delivered: (chunk: Buffer) => void): Promise<net.Socket>;
  /** A marker that occurs once per delivery (the payload is all 'x' or digits, never this). */
  marker: Buffer;
  publisher(server: Running): Promise<Publisher>;
}

interface Publisher {
  /** Sends the frames and resolves when the server has processed them all. */
  batch(frames: Buffer[]): Promise<void>;
  frame(payload: Buffer): Buffer;
  close(): void;
}

/** A subscriber: sends `request`, waits until `confirmed` appears, then hands on what follows. */
async function subscriber(port: number, request: string | Uint8Array, confirmed: string, delivered: (chunk: Buffer) => void): Promise<net.Socket> {
  const socket = await open(port);
  let head: Buffer | undefined = Buffer.alloc(0);
  await new Promise<void>((resolve) => {
    socket.on("data", (chunk: Buffer) => {
      if (head === undefined) return delivered(chunk);
      head = Buffer.concat([head, chunk]);
      const end = head.indexOf(confirmed);
      if (end < 0) return;
      const rest = head.subarray(end + confirmed.length);
      head = undefined;
      resolve();
      if (rest.length) delivered(rest);
    });
    socket.write(request);
  });
  return socket;
}

/** RESP publisher: pipelined PUBLISH, a batch resolves when all its replies (one line each) came. */
async function respPublisher(port: number): Promise<Publisher> {
  const socket = await open(port);
  let expected = 0;
  let seen = 0;
  let done: (() => void) | undefined;
  socket.on("data", (chunk: Buffer) => {
    // A byte loop: one indexOf call per short reply line cost the client ~6 µs per batch of 500.
    for (let i = 0; i < chunk.length; i++) if (chunk[i] === 10) seen++;
    if (done && seen >= expected) done();
  });
  return {
    frame: (payload) => Buffer.from(encodeCommand(["PUBLISH", TOPIC, payload])),
    batch(frames) {
      expected += frames.length;
      return new Promise<void>((resolve) => {
        done = resolve;
        socket.write(Buffer.concat(frames));
      });
    },
    close: () => socket.destroy(),
  };
}

/** NATS publisher: PUBs then a PING; the server answers PONG once it processed everything before. */
async function natsPublisher(port: number): Promise<Publisher> {
  const socket = await open(port);
  let pongs = 0;
  let wanted = 0;
  let done: (() => void) | undefined;
  const pong = new MarkerCounter(Buffer.from("PONG\r\n"));
  socket.on("data", (chunk: Buffer) => {
    pong.feed(chunk);
    pongs = pong.count;
    if (done && pongs >= wanted) done();
  });
  socket.write('CONNECT {"verbose":false,"pedantic":false}\r\n');
  return {
    frame: (payload) => Buffer.concat([Buffer.from(`PUB ${TOPIC} ${payload.length}\r\n`), payload, Buffer.from("\r\n")]),
    batch(frames) {
      wanted++;
      return new Promise<void>((resolve) => {
        done = resolve;
        socket.write(Buffer.concat([...frames, Buffer.from("PING\r\n")]));
      });
    },
    close: () => socket.destroy(),
  };
}

const wsHandshake = `GET /${TOPIC} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n`;

export const KINDS: Kind[] = [
  {
    name: "msgbus WebSocket",
    start: () => startMsgbus(),
    subscribe: (s, d) => subscriber(s.httpPort!, wsHandshake, "\r\n\r\n", d),
    // A server-to-client text frame of 100 bytes: FIN+text (0x81), length 100 (0x64).
    marker: Buffer.from([0x81, SIZE]),
    publisher: (s) => respPublisher(s.port),
  },
  {
    name: "msgbus RESP SUB",
    start: () => startMsgbus(),
    subscribe: (s, d) => subscriber(s.port, encodeCommand(["SUB", TOPIC]), "+OK\r\n", d),
    marker: Buffer.from("$7\r\nmessage\r\n"),
    publisher: (s) => respPublisher(s.port),
  },
  {
    name: "redis SUBSCRIBE",
    start: () => startRedis(),
    subscribe: (s, d) => subscriber(s.port, encodeCommand(["SUBSCRIBE", TOPIC]), ":1\r\n", d),
    marker: Buffer.from("$7\r\nmessage\r\n"),
    publisher: (s) => respPublisher(s.port),
  },
  {
    name: "nats core",
    start: startNats,
    subscribe: (s, d) => subscriber(s.port, `CONNECT {"verbose":false,"pedantic":false}\r\nSUB ${TOPIC} 1\r\nPING\r\n`, "PONG\r\n", d),
    marker: Buffer.from(`MSG ${TOPIC} 1 `),
    publisher: (s) => natsPublisher(s.port),
  },
];

/**
 * Publishes `messages` pipelined and waits until every subscriber counted every one; the publisher
 * stays at most `lead` messages ahead of the slowest subscriber, so no server cuts anyone off.
 */
/**
 * Voluntary context switches of all of a process's threads (from /proc): how often it ran out of
 * work and slept. All threads, since nats (Go) serves its connections from several.
 */
function allSleeps(pid: number): number {
  let total = 0;
  for (const task of readdirSync(`/proc/${pid}/task`)) {
    try {
      const m = /^voluntary_ctxt_switches:\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/task/${task}/status`, "utf8"));
      if (m) total += Number(m[1]);
    } catch {
      // the thread ended meanwhile
    }
  }
  return total;
}

/** The bench process's own user + system CPU time in seconds: it is the client (publisher and subscribers). */
function ownCpuSeconds(): number {
  const usage = process.cpuUsage();
  return (usage.user + usage.system) / 1e6;
}

interface FanoutResult {
  /** Deliveries per second. */
  rate: number;
  /** The server's CPU time per delivery (µs). */
  cpu: number;
  /** The client's (this process's) CPU time per delivery (µs). */
  clientCpu: number;
  /** The server's voluntary context switches per 1,000 deliveries. */
  sleeps: number;
}

/** Deliveries per second, the server's and the client's CPU time per delivery, and the server's sleeps. */
async function fanout(kind: Kind, subscribers: number, messages: number): Promise<FanoutResult> {
  const server = await kind.start();
  try {
    // Every server first gets the same unmeasured load, with as many subscribers: as many
    // messages as the row, and at least FILL. msgbus's JIT compiles its hot paths in the first
    // 100-200 ms of traffic (per thread from /proc: half of a cold 10-subscriber row's CPU was the
    // compiler's), and after a warm-up of a fifth of the row its first measured round still ran
    // 10-15% above the rounds after it (server CPU per delivery at 1 subscriber, 0.46 then 0.38-
    // 0.40 µs). FILL is past the topic's --max-queue (100,000 by default): msgbus queues every
    // published message, so a running topic is full and drops its oldest on each write; a warm-up
    // that stopped short of that had the drop path compiled inside the measured round (0.02 µs
    // per delivery at 10 subscribers). Redis and nats have nothing to warm. Measured is what a
    // running server does.
    await fanoutOn(kind, server, subscribers, Math.max(FILL, messages));
    const before = cpuSeconds(server.pid);
    const clientBefore = ownCpuSeconds();
    const sleptBefore = allSleeps(server.pid);
    const rate = await fanoutOn(kind, server, subscribers, messages);
    const deliveries = subscribers * messages;
    return {
      rate,
      cpu: ((cpuSeconds(server.pid) - before) * 1e6) / deliveries,
      clientCpu: ((ownCpuSeconds() - clientBefore) * 1e6) / deliveries,
      sleeps: ((allSleeps(server.pid) - sleptBefore) * 1000) / deliveries,
    };
  } finally {
    await server.stop();
  }
}

/** Messages of the unmeasured warm-up at the least: past msgbus's default --max-queue (100,000). */
const FILL = 150000;

/** The fan-out measure against a running server (a profiled one, say): deliveries per second. */
export async function fanoutOn(kind: Kind, server: Running, subscribers: number, messages: number): Promise<number> {
  {
    const counters = Array.from({ length: subscribers }, () => new MarkerCounter(kind.marker));
    const sockets = await Promise.all(counters.map((counter) => kind.subscribe(server, (chunk) => counter.feed(chunk))));
    const publisher = await kind.publisher(server);
    const frame = publisher.frame(Buffer.alloc(SIZE, "x"));
    const window = 500;
    const lead = 20000;
    const slowest = () => counters.reduce((min, c) => Math.min(min, c.count), Infinity);
    const started = performance.now();
    let published = 0;
    while (published < messages) {
      while (published - slowest() > lead) await Bun.sleep(1);
      const n = Math.min(window, messages - published);
      await publisher.batch(Array.from({ length: n }, () => frame));
      published += n;
    }
    const deadline = Date.now() + 30000;
    while (slowest() < messages && Date.now() < deadline) await Bun.sleep(1);
    const seconds = (performance.now() - started) / 1000;
    const delivered = counters.reduce((n, c) => n + Math.min(c.count, messages), 0);
    publisher.close();
    for (const socket of sockets) socket.destroy();
    return delivered / seconds;
  }
}

export async function fanoutTable(quick: boolean): Promise<void> {
  const deliveries = quick ? 200000 : 1000000;
  const rounds = quick ? 1 : 2;
  console.log(
    `\n## Fan-out: 100-byte messages, ~${format(deliveries)} deliveries per row, deliveries/s (best of ${rounds} alternating rounds); ratio = msgbus / better peer\n`,
  );
  const rows: (string | number)[][] = [];
  for (const subscribers of [1, 10, 100]) {
    const messages = Math.max(5000, Math.round(deliveries / subscribers));
    const best: Record<string, number> = {};
    const cpu: Record<string, number> = {};
    const clientCpu: Record<string, number> = {};
    const slept: Record<string, number> = {};
    for (let round = 0; round < rounds; round++) {
      const order = round % 2 === 0 ? KINDS : [...KINDS].reverse();
      for (const kind of order) {
        const result = await fanout(kind, subscribers, messages);
        best[kind.name] = Math.max(best[kind.name] ?? 0, result.rate);
        cpu[kind.name] = Math.min(cpu[kind.name] ?? Infinity, result.cpu);
        clientCpu[kind.name] = Math.min(clientCpu[kind.name] ?? Infinity, result.clientCpu);
        slept[kind.name] = Math.min(slept[kind.name] ?? Infinity, result.sleeps);
      }
    }
    const peer = Math.max(best["redis SUBSCRIBE"]!, best["nats core"]!);
    rows.push([
      String(subscribers),
      best["msgbus WebSocket"]!,
      best["msgbus RESP SUB"]!,
      best["redis SUBSCRIBE"]!,
      best["nats core"]!,
      `${(best["msgbus WebSocket"]! / peer).toFixed(2)}x`,
      `${(best["msgbus RESP SUB"]! / peer).toFixed(2)}x`,
      KINDS.map((k) => cpu[k.name]!.toFixed(2)).join(" / "),
      KINDS.map((k) => clientCpu[k.name]!.toFixed(2)).join(" / "),
      KINDS.map((k) => slept[k.name]!.toFixed(1)).join(" / "),
    ]);
  }
  console.log(
    table(
      [
        "subs",
        "msgbus WS",
        "msgbus SUB",
        "redis SUBSCRIBE",
        "nats",
        "WS/peer",
        "SUB/peer",
        "server CPU µs/delivery (WS / SUB / redis / nats)",
        "client CPU µs/delivery",
        "server sleeps/1k deliveries",
      ],
      rows,
    ),
  );
  console.log(
    "\n(client CPU: this bench process's own user+system time per delivery; it is the publisher and every subscriber. Sleeps: the server's voluntary context switches, all threads; each is a wakeup the client's next send pays for.)",
  );
}

/** Write→receipt latency at `rate` msg/s for `seconds`: each payload carries its sequence number. */
async function latency(kind: Kind, rate: number, seconds: number): Promise<number[]> {
  const server = await kind.start();
  try {
    const total = rate * seconds;
    const sentAt = new Float64Array(total);
    const samples: number[] = [];
    let text = "";
    const socket = await kind.subscribe(server, (chunk) => {
      const now = performance.now();
      text += chunk.toString("latin1");
      const re = /S(\d{9})E/g;
      let m: RegExpExecArray | null;
      let end = 0;
      for (m = re.exec(text); m; m = re.exec(text)) {
        samples.push(now - sentAt[Number(m[1])]!);
        end = re.lastIndex;
      }
      text = text.slice(Math.max(end, text.length - 16));
    });
    const publisher = await kind.publisher(server);
    const pad = "x".repeat(SIZE - 11);
    const perTick = Math.max(1, Math.round(rate / 1000));
    let seq = 0;
    const started = performance.now();
    await new Promise<void>((resolve) => {
      const timer = setInterval(() => {
        // Catch up to the schedule: rate msg/s, spread over the 1 ms ticks the timer gives.
        const due = Math.min(total, Math.floor(((performance.now() - started) * rate) / 1000) + perTick);
        while (seq < due) {
          const frame = publisher.frame(Buffer.from(`S${String(seq).padStart(9, "0")}E${pad}`));
          sentAt[seq] = performance.now();
          void publisher.batch([frame]);
          seq++;
        }
        if (seq >= total) {
          clearInterval(timer);
          resolve();
        }
      }, 1);
    });
    const deadline = Date.now() + 5000;
    while (samples.length < total && Date.now() < deadline) await Bun.sleep(5);
    publisher.close();
    socket.destroy();
    return samples.slice(Math.floor(samples.length / 10)).sort((a, b) => a - b); // the first 10% warm up
  } finally {
    await server.stop();
  }
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((sorted.length * p) / 100))] ?? NaN;
}

export async function latencyTable(quick: boolean): Promise<void> {
  const rate = 10000;
  const seconds = quick ? 2 : 5;
  console.log(`\n## Latency: write → subscriber receipt at ${format(rate)} msg/s for ${seconds} s, 1 subscriber, 100-byte messages (ms)\n`);
  const rows: (string | number)[][] = [];
  for (const kind of KINDS) {
    const sorted = await latency(kind, rate, seconds);
    rows.push([
      kind.name,
      String(sorted.length),
      percentile(sorted, 50).toFixed(3),
      percentile(sorted, 90).toFixed(3),
      percentile(sorted, 99).toFixed(3),
      percentile(sorted, 99.9).toFixed(3),
    ]);
  }
  console.log(table(["server", "samples", "p50", "p90", "p99", "p99.9"], rows));
}

export async function idleTable(): Promise<void> {
  console.log("\n## Idle RSS: started, one PING, 2 s idle\n");
  const rows: (string | number)[][] = [];
  for (const start of [() => startMsgbus(), () => startRedis(), startNats]) {
    const server = await start();
    await Bun.sleep(2000);
    rows.push([server.name, mib(rss(server.pid)), mib(rss(server.pid, "RssAnon")), mib(rss(server.pid, "RssFile"))]);
    await server.stop();
  }
  console.log(table(["server", "idle RSS", "of it anonymous", "of it the executable's pages (file)"], rows));
  console.log(
    "\n(The file part is pages of the executable mapped in; how many depends on how much of the file is in the page cache:\n" +
      "Linux maps cached neighbours of each page a fault touches. A binary just written or copied is all cached; after a reboot it is not.)",
  );
}

export async function run({ quick, parts }: { quick: boolean; parts?: Set<string> }): Promise<void> {
  const wanted = (p: string) => !parts || parts.has(p);
  if (wanted("fanout")) await fanoutTable(quick);
  if (wanted("latency")) await latencyTable(quick);
  if (wanted("idle")) await idleTable();
}

if (import.meta.main) {
  try {
    await run({ quick: process.argv.includes("--quick") });
  } finally {
    await cleanupAll();
  }
}
