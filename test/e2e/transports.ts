// Small clients the HTTP, SSE and WebSocket end-to-end tests use to cross transports: a raw
// RESP connection (binary-safe, pipelined), a raw HTTP exchange, an SSE reader and a WebSocket
// collector. Every wait has a deadline.

import { readFileSync } from "node:fs";
import net from "node:net";
import { encodeCommand } from "../../src/protocol/resp-writer.ts";
import { RespReader, type RespValue } from "../../src/protocol/resp-reader.ts";
import { SseParser, type SseEvent } from "../../src/protocol/sse.ts";
import { waitFor } from "../helpers/wait.ts";

/** A RESP connection to the TCP port: send() resolves with each reply in order. */
export class Resp {
  private readonly reader = new RespReader();
  private readonly waiting: ((value: RespValue) => void)[] = [];
  private socket!: net.Socket;

  /** node:net buffers what the kernel does not take yet, so pipelining megabytes is safe. */
  static async connect(port: number): Promise<Resp> {
    const resp = new Resp();
    resp.socket = net.connect(port, "127.0.0.1");
    resp.socket.on("data", (chunk: Buffer) => {
      resp.reader.feed(new Uint8Array(chunk));
      for (let item = resp.reader.next(); item; item = resp.reader.next()) resp.waiting.shift()?.(item.value);
    });
    await new Promise<void>((resolve, reject) => {
      resp.socket.once("connect", () => resolve());
      resp.socket.once("error", reject);
    });
    return resp;
  }

  send(args: (string | Uint8Array | number)[]): Promise<RespValue> {
    return new Promise((resolve) => {
      this.waiting.push(resolve);
      this.socket.write(encodeCommand(args));
    });
  }

  /** The next thing the server sends without being asked (a push, or the error before a close). */
  next(): Promise<RespValue> {
    return new Promise((resolve) => this.waiting.push(resolve));
  }

  /** Pipelines PUTs, at most `window` unanswered at a time; resolves with the ids. */
  async putAll(topic: string, payloads: Uint8Array[], window = 64): Promise<number[]> {
    const ids: number[] = [];
    for (let i = 0; i < payloads.length; i += window) {
      const replies = await Promise.all(payloads.slice(i, i + window).map((p) => this.send(["PUT", topic, p])));
      for (const reply of replies) {
        if (typeof reply !== "number") throw new Error(`PUT failed: ${String(reply)}`);
        ids.push(reply);
      }
    }
    return ids;
  }

  /** GET over RESP: [payload, id] or null. */
  async take(topic: string): Promise<{ payload: Uint8Array; id: number } | null> {
    const reply = await this.send(["GET", topic]);
    if (reply === null) return null;
    const frame = reply as RespValue[];
    return { payload: frame[2] as Uint8Array, id: frame[3] as number };
  }

  close(): void {
    this.socket.end();
  }
}

/** Sends raw bytes over TCP and collects what comes back until the peer closes, `done` holds, or the deadline. */
export async function rawExchange(
  port: number,
  chunks: (string | Uint8Array)[],
  options: { done?: (text: string) => boolean; timeoutMs?: number; keepSending?: () => string | Uint8Array | undefined } = {},
): Promise<string> {
  let text = "";
  let closed = false;
  const socket = await Bun.connect({
    hostname: "127.0.0.1",
    port,
    socket: {
      data: (_s, chunk) => {
        text += new TextDecoder().decode(chunk);
      },
      close: () => {
        closed = true;
      },
      error: () => {
        closed = true;
      },
    },
  });
  for (const chunk of chunks) socket.write(chunk);
  const deadline = Date.now() + (options.timeoutMs ?? 5000);
  while (!closed && Date.now() < deadline && !(options.done?.(text) ?? false)) await Bun.sleep(10);
  socket.end();
  return text;
}

/** The status line's code of a raw HTTP response. */
export function statusOf(response: string): number {
  return Number(/^HTTP\/1\.1 (\d{3})/.exec(response)?.[1] ?? 0);
}

/** An SSE subscription read with the protocol's own parser. */
export class SseReader {
  readonly events: SseEvent[] = [];
  private readonly controller = new AbortController();
  status = 0;
  ended = false;

  static async open(url: string, headers: Record<string, string> = {}): Promise<SseReader> {
    const reader = new SseReader();
    const response = await fetch(url, { headers: { accept: "text/event-stream", ...headers }, signal: reader.controller.signal });
    reader.status = response.status;
    if (response.status !== 200) {
      reader.ended = true;
      return reader;
    }
    const parser = new SseParser();
    const body = response.body!.getReader();
    let first = true;
    let opened!: () => void;
    const openedPromise = new Promise<void>((resolve) => (opened = resolve));
    (async () => {
      try {
        for (;;) {
          const { done, value } = await body.read();
          if (done) break;
          reader.events.push(...parser.feed(value));
          if (first) {
            first = false;
            opened();
          }
        }
      } catch {
        // aborted or cut off
      }
      reader.ended = true;
      opened();
    })();
    // The server's opening comment means the subscription is in place.
    await openedPromise;
    return reader;
  }

  waitForEvents(n: number, timeoutMs = 5000): Promise<SseEvent[]> {
    return waitFor((): SseEvent[] | undefined => (this.events.length >= n ? this.events.slice(0, n) : undefined), {
      timeoutMs,
      what: `${n} SSE events (have ${this.events.length})`,
    });
  }

  close(): void {
    this.controller.abort();
  }
}

/** A WebSocket that collects every frame (text as string, binary as Uint8Array). */
export class WsCollector {
  readonly frames: (string | Uint8Array)[] = [];
  closeCode: number | undefined;
  closeReason = "";

  private constructor(readonly ws: WebSocket) {
    ws.binaryType = "arraybuffer";
    ws.addEventListener("message", (e) => this.frames.push(typeof e.data === "string" ? e.data : new Uint8Array(e.data as ArrayBuffer)));
    ws.addEventListener("close", (e) => {
      this.closeCode = e.code;
      this.closeReason = e.reason;
    });
  }

  static async open(url: string, options?: { headers?: Record<string, string> }): Promise<WsCollector> {
    const ws = new WebSocket(url, options as unknown as string[]);
    const collector = new WsCollector(ws);
    await new Promise<void>((resolve, reject) => {
      ws.addEventListener("open", () => resolve(), { once: true });
      ws.addEventListener("close", (e) => reject(new Error(`WebSocket ${url} closed before opening (${e.code})`)), { once: true });
    });
    return collector;
  }

  waitForFrames(n: number, timeoutMs = 5000): Promise<(string | Uint8Array)[]> {
    return waitFor((): (string | Uint8Array)[] | undefined => (this.frames.length >= n ? this.frames.slice(0, n) : undefined), {
      timeoutMs,
      what: `${n} WebSocket frames (have ${this.frames.length})`,
    });
  }

  waitForClose(timeoutMs = 5000): Promise<number> {
    return waitFor(() => this.closeCode, { timeoutMs, what: "the WebSocket to close" });
  }

  /** Frames that are JSON (json mode), parsed. */
  json(): Record<string, any>[] {
    return this.frames.map((f) => JSON.parse(typeof f === "string" ? f : new TextDecoder().decode(f)));
  }

  close(): void {
    this.ws.close();
  }
}

/** Resident memory of a process in bytes (Linux /proc). */
export function rssOf(pid: number): number {
  const match = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
  return Number(match?.[1] ?? 0) * 1024;
}

export function randomBytes(n: number): Uint8Array {
  const bytes = new Uint8Array(n);
  for (let i = 0; i < n; i += 65536) crypto.getRandomValues(bytes.subarray(i, Math.min(n, i + 65536)));
  return bytes;
}

/** A WebSocket handshake a raw socket can send. */
export function wsHandshake(path: string, extra = ""): string {
  return `GET ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n${extra}\r\n`;
}

/** A reader that keeps up, for floodPastStalledReader. */
export interface HealthyReader {
  waitFor(count: number): Promise<unknown>;
  close(): void;
}

/** One sample of the server's own Prometheus metrics (`/_/metrics`): `name` or `name{labels}` -> value. */
export async function metricsOf(httpPort: number): Promise<Map<string, number>> {
  const text = await (await fetch(`http://127.0.0.1:${httpPort}/_/metrics`)).text();
  const samples = new Map<string, number>();
  for (const line of text.split("\n")) {
    const match = /^(msgbus_\S+) (\S+)$/.exec(line);
    if (match) samples.set(match[1]!, Number(match[2]));
  }
  return samples;
}

/** What floodPastStalledReader saw, from the server's own counters. */
export interface FloodReport {
  /** Bytes published over TCP before `msgbus_slow_consumers_total` first counted the stalled reader (Infinity: never). */
  publishedAtCutOff: number;
  /** The most `msgbus_bytes_held` (bytes queued over every topic) seen after any step. */
  mostBytesHeld: number;
  /** Growth of the server's resident memory: a sanity bound only, the counters above are the test. */
  rssGrowth: number;
  close(): void;
}

/**
 * The stalled-reader check SSE and WebSocket share: a raw socket sends `request` (an SSE GET or a
 * WebSocket handshake), takes the first bytes, then never reads again, while 100 MB is published
 * over TCP in 1 MB steps, each read by a healthy reader before the next. After every step it reads
 * the server's `/_/metrics`: when the stalled reader was counted as a slow consumer, and the bytes
 * the bus held. close() closes the readers once the caller has checked them.
 */
export async function floodPastStalledReader(
  server: { port: number; httpPort: number; proc: { pid: number } },
  topic: string,
  request: string,
  openHealthy: () => Promise<HealthyReader>,
): Promise<FloodReport> {
  const tcp = await Resp.connect(server.port);
  const stalled = net.connect(server.httpPort, "127.0.0.1");
  stalled.on("error", () => {});
  await new Promise<void>((resolve) => stalled.on("connect", () => resolve()));
  stalled.write(request);
  await new Promise<void>((resolve) => stalled.once("data", () => resolve()));
  stalled.pause();
  const healthy = await openHealthy();
  const slowBefore = (await metricsOf(server.httpPort)).get("msgbus_slow_consumers_total") ?? 0;
  const baseline = rssOf(server.proc.pid);
  let peak = baseline;
  let publishedAtCutOff = Number.POSITIVE_INFINITY;
  let mostBytesHeld = 0;
  const chunk = new Uint8Array(65536).fill(120);
  for (let i = 0; i < 1600; i += 16) {
    await tcp.putAll(
      topic,
      Array.from({ length: 16 }, () => chunk),
      16,
    );
    await healthy.waitFor(i + 16);
    const metrics = await metricsOf(server.httpPort);
    mostBytesHeld = Math.max(mostBytesHeld, metrics.get("msgbus_bytes_held") ?? 0);
    if (publishedAtCutOff === Number.POSITIVE_INFINITY && (metrics.get("msgbus_slow_consumers_total") ?? 0) > slowBefore)
      publishedAtCutOff = (i + 16) * chunk.length;
    peak = Math.max(peak, rssOf(server.proc.pid));
  }
  return {
    publishedAtCutOff,
    mostBytesHeld,
    rssGrowth: peak - baseline,
    close() {
      healthy.close();
      stalled.destroy();
      tcp.close();
    },
  };
}
