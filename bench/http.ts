// HTTP and WebSocket figures: HTTP writes/s with wrk (POST, 100-byte body), and WebSocket fan-out
// deliveries/s to 1, 10 and 100 subscribers beside Redis PUBLISH/SUBSCRIBE to as many
// subscribers on a real redis-server, measured in the same run with the same publisher.
// Usage: bun bench/http.ts [--quick]   (or `bun run bench --only http`)

import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import net from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { encodeCommand } from "../src/protocol/resp-writer.ts";
import { RespReader } from "../src/protocol/resp-reader.ts";
import { cleanupAll, format, need, type Running, startMsgbus, startRedis, table } from "./lib.ts";

export interface WrkResult {
  requestsPerSecond: number;
  latencyAvgMs: number;
  requests: number;
  errors: number;
}

/** wrk against POST /{topic} with a `bodyBytes` body (a lua script written to a temp file). */
export async function httpWrites(
  httpPort: number,
  options: { seconds?: number; connections?: number; threads?: number; bodyBytes?: number } = {},
): Promise<WrkResult> {
  need("wrk", "apt-get install wrk");
  const { seconds = 5, connections = 50, threads = 1, bodyBytes = 100 } = options;
  const dir = mkdtempSync(join(tmpdir(), "msgbus-wrk-"));
  const script = join(dir, "post.lua");
  writeFileSync(script, `wrk.method = "POST"\nwrk.body = string.rep("x", ${bodyBytes})\nwrk.headers["Content-Type"] = "application/octet-stream"\n`);
  try {
    const proc = Bun.spawn(["wrk", "-t", String(threads), "-c", String(connections), "-d", `${seconds}s`, "-s", script, `http://127.0.0.1:${httpPort}/bench`], {
      stdout: "pipe",
      stderr: "pipe",
    });
    const out = await new Response(proc.stdout).text();
    await proc.exited;
    const perSecond = Number(/Requests\/sec:\s+([\d.]+)/.exec(out)?.[1] ?? NaN);
    const latency = /Latency\s+([\d.]+)(us|ms|s)/.exec(out);
    const latencyAvgMs = latency ? Number(latency[1]) * ({ us: 0.001, ms: 1, s: 1000 } as Record<string, number>)[latency[2]!]! : NaN;
    const requests = Number(/(\d+) requests in/.exec(out)?.[1] ?? NaN);
    const errors =
      Number(/Non-2xx or 3xx responses: (\d+)/.exec(out)?.[1] ?? 0) +
      Number(
        /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/
          .exec(out)
          ?.slice(1)
          .reduce((a, b) => a + Number(b), 0) ?? 0,
      );
    return { requestsPerSecond: perSecond, latencyAvgMs, requests, errors };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** A pipelining RESP connection (node:net buffers, so a large window is safe). */
class RespConnection {
  private readonly reader = new RespReader();
  private readonly waiting: (() => void)[] = [];

  private constructor(readonly socket: net.Socket) {
    socket.on("data", (chunk: Buffer) => {
      this.reader.feed(new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.byteLength));
      for (let item = this.reader.next(); item; item = this.reader.next()) this.waiting.shift()?.();
    });
  }

  static open(port: number): Promise<RespConnection> {
    return new Promise((resolve, reject) => {
      const socket = net.connect(port, "127.0.0.1", () => resolve(new RespConnection(socket)));
      socket.setNoDelay(true);
      socket.once("error", reject);
    });
  }

  /** Sends a batch of commands at once; resolves when all are answered. */
  batch(commands: Uint8Array[]): Promise<void> {
    const replies = commands.map(() => new Promise<void>((resolve) => this.waiting.push(resolve)));
    this.socket.write(Buffer.concat(commands));
    return Promise.all(replies).then(() => undefined);
  }

  close(): void {
    this.socket.destroy();
  }
}

export interface FanoutResult {
  subscribers: number;
  messages: number;
  deliveriesPerSecond: number;
  seconds: number;
}

/**
 * Publishes `messages` over RESP (`command` topic payload, pipelined) and waits until every
 * subscriber counted every one. The publisher stays at most `lead` messages ahead of the slowest
 * subscriber, so neither server has to cut anyone off as a slow consumer.
 */
async function publishAndCount(port: number, command: string, counts: Int32Array, messages: number, payloadBytes: number): Promise<number> {
  const publisher = await RespConnection.open(port);
  const frame = encodeCommand([command, "fan", new Uint8Array(payloadBytes).fill(120)]);
  const window = 500;
  const lead = 20000;
  const slowest = () => counts.reduce((min, c) => Math.min(min, c), Infinity);
  const started = performance.now();
  let published = 0;
  while (published < messages) {
    while (published - slowest() > lead) await Bun.sleep(1);
    const n = Math.min(window, messages - published);
    await publisher.batch(Array.from({ length: n }, () => frame));
    published += n;
  }
  while (slowest() < messages) await Bun.sleep(1);
  const seconds = (performance.now() - started) / 1000;
  publisher.close();
  return seconds;
}

/**
 * A subscriber that counts frames of a known size from the raw byte stream (after the handshake
 * reply, when there is one): the bench client costs next to nothing per delivery for either
 * server, so the figures are the servers', not a JS client's.
 */
async function countingSubscriber(
  port: number,
  request: Uint8Array | string,
  frameBytes: number,
  counts: Int32Array,
  index: number,
  handshake: boolean,
): Promise<net.Socket> {
  const socket = net.connect(port, "127.0.0.1");
  socket.setNoDelay(true);
  await new Promise<void>((resolve, reject) => {
    socket.once("connect", () => resolve());
    socket.once("error", reject);
  });
  let bytes = 0;
  let head = handshake ? "" : undefined;
  let ready!: () => void;
  const subscribed = new Promise<void>((resolve) => (ready = resolve));
  let expectReply = !handshake; // Redis answers SUBSCRIBE first: skip that reply's bytes
  socket.on("data", (chunk: Buffer) => {
    let data = chunk;
    if (head !== undefined) {
      head += data.toString("latin1");
      const end = head.indexOf("\r\n\r\n");
      if (end < 0) return;
      if (!head.startsWith("HTTP/1.1 101")) throw new Error(`upgrade refused: ${head.split("\r\n")[0]}`);
      data = Buffer.from(head.slice(end + 4), "latin1");
      head = undefined;
      ready();
    }
    if (expectReply) {
      const text = data.toString("latin1");
      const reply = /^\*3\r\n\$9\r\nsubscribe\r\n\$\d+\r\n[^\r]*\r\n:\d+\r\n/.exec(text);
      if (!reply) return;
      data = data.subarray(reply[0].length);
      expectReply = false;
      ready();
    }
    bytes += data.length;
    counts[index] = Math.floor(bytes / frameBytes);
  });
  socket.write(request);
  await subscribed;
  return socket;
}

/** WebSocket subscribers on GET /fan (raw frames), messages published over msgbus's RESP port. */
export async function wsFanout(server: Running, subscribers: number, messages: number, payloadBytes = 100): Promise<FanoutResult> {
  const counts = new Int32Array(subscribers);
  const header = payloadBytes < 126 ? 2 : payloadBytes < 65536 ? 4 : 10;
  const handshake = `GET /fan HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n`;
  const sockets = await Promise.all(
    Array.from({ length: subscribers }, (_, i) => countingSubscriber(server.httpPort!, handshake, header + payloadBytes, counts, i, true)),
  );
  const seconds = await publishAndCount(server.port, "PUBLISH", counts, messages, payloadBytes);
  for (const socket of sockets) socket.destroy();
  return { subscribers, messages, seconds, deliveriesPerSecond: (subscribers * messages) / seconds };
}

/** Redis SUBSCRIBE connections, messages published with PUBLISH on the same redis-server. */
export async function redisFanout(redis: Running, subscribers: number, messages: number, payloadBytes = 100): Promise<FanoutResult> {
  const counts = new Int32Array(subscribers);
  const frameBytes = `*3\r\n$7\r\nmessage\r\n$3\r\nfan\r\n$${payloadBytes}\r\n`.length + payloadBytes + 2;
  const sockets = await Promise.all(
    Array.from({ length: subscribers }, (_, i) => countingSubscriber(redis.port, encodeCommand(["SUBSCRIBE", "fan"]), frameBytes, counts, i, false)),
  );
  const seconds = await publishAndCount(redis.port, "PUBLISH", counts, messages, payloadBytes);
  for (const socket of sockets) socket.destroy();
  return { subscribers, messages, seconds, deliveriesPerSecond: (subscribers * messages) / seconds };
}

/** The bench runner's entry: prints both tables. */
export async function run({ quick }: { quick: boolean }): Promise<void> {
  const seconds = quick ? 3 : 10;
  console.log(`\n## HTTP writes: wrk -t1 -c50 -d${seconds}s, POST /bench with a 100-byte body\n`);
  const msgbus = await startMsgbus(["--max-queue", "5000000", "--max-queue-bytes", "4GiB", "--max-memory", "4GiB"]);
  const writes = await httpWrites(msgbus.httpPort!, { seconds, connections: 50 });
  console.log(
    table(
      ["server", "writes/s", "avg latency", "non-2xx/errors"],
      [["msgbus HTTP", writes.requestsPerSecond, `${writes.latencyAvgMs.toFixed(2)} ms`, String(writes.errors)]],
    ),
  );
  await msgbus.stop();

  const deliveries = quick ? 200000 : 1000000;
  console.log(
    `\n## Fan-out: 100-byte messages published over RESP (pipelined), ~${format(deliveries)} deliveries per row; WebSocket subscribers on msgbus vs SUBSCRIBE on redis-server (subscribers count raw bytes)\n`,
  );
  const rows: (string | number)[][] = [];
  for (const subscribers of [1, 10, 100]) {
    const messages = Math.max(5000, Math.round(deliveries / subscribers));
    const bus = await startMsgbus();
    const ws = await wsFanout(bus, subscribers, messages);
    await bus.stop();
    const redis = await startRedis();
    const rd = await redisFanout(redis, subscribers, messages);
    await redis.stop();
    rows.push([
      String(subscribers),
      format(messages),
      ws.deliveriesPerSecond,
      rd.deliveriesPerSecond,
      `${(ws.deliveriesPerSecond / rd.deliveriesPerSecond).toFixed(2)}x`,
    ]);
  }
  console.log(table(["subscribers", "messages", "msgbus WebSocket deliveries/s", "redis SUBSCRIBE deliveries/s", "msgbus/redis"], rows));
}

if (import.meta.main) {
  try {
    await run({ quick: process.argv.includes("--quick") });
  } finally {
    await cleanupAll();
  }
}
