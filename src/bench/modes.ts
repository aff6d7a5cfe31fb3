// What `msgbus bench` measures, mode by mode, through the ordinary client (any transport):
//   pub      publishers write; each write timed from send to the server's acknowledgement
//   sub      publishers write, subscribers receive every message (fan-out); deliveries counted
//   queue    producers write, competing consumers take each message once (ON with leases, acked)
//   latency  one publisher at a steady --rate; subscribers time write -> receipt
// Receivers time write -> receipt from a send time carried in each payload (same process clock).

import type { Client, ReceivedMessage, Stream } from "../client/client.ts";
import { BusError } from "../core/errors.ts";
import { Samples } from "./samples.ts";

export const MODES = ["pub", "sub", "queue", "latency"] as const;
export type Mode = (typeof MODES)[number];

/** Bytes at the head of each payload holding its send time (ms, performance.now(), as text). */
export const STAMP_BYTES = 16;

export interface Plan {
  mode: Mode;
  topic: string;
  publishers: number;
  /** Subscribers (sub, latency) or consumers (queue); 0 in pub mode. */
  receivers: number;
  /** Messages to write in all; undefined when --duration decides. */
  msgs: number | undefined;
  /** How long to write, in ms; undefined when --msgs decides. */
  duration: number | undefined;
  size: number;
  /** Writes per second, all publishers together; undefined: as fast as acknowledgements allow. */
  rate: number | undefined;
  /** Writes in flight per publisher. */
  pipeline: number;
  /** After the last write, how long receivers may go without a message before the run ends short. */
  idle: number;
}

export interface RoleResult {
  role: "publish" | "receive" | "consume";
  clients: number;
  msgs: number;
  bytes: number;
  seconds: number;
  latency: Samples;
}

export interface Outcome {
  roles: RoleResult[];
  /** Deliveries the receivers should have had (0 in pub mode). */
  expected: number;
  /** Streams that ended before the run did (a slow consumer, the server going away). */
  failures: BusError[];
}

/** Live counts, for the progress line. */
export interface Counts {
  written: number;
  received: number;
  /** performance.now() when writing started. */
  started: number;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** A payload of `size` bytes whose head is its send time, when it fits. */
function payload(size: number, now: number): Uint8Array {
  const bytes = new Uint8Array(size).fill(120); // "x"
  if (size >= STAMP_BYTES) encoder.encodeInto(now.toFixed(3).padStart(STAMP_BYTES, "0"), bytes);
  return bytes;
}

function sentAt(payload: Uint8Array): number {
  return Number(decoder.decode(payload.subarray(0, STAMP_BYTES)));
}

export class Bench {
  readonly counts: Counts = { written: 0, received: 0, started: 0 };
  private stopping = false;
  private failure: unknown;

  constructor(
    private readonly plan: Plan,
    private readonly open: () => Promise<Client>,
  ) {}

  /** Ends writing early (Ctrl-C): what was written so far is still received and reported. */
  stop(): void {
    this.stopping = true;
  }

  async run(): Promise<Outcome> {
    const { plan } = this;
    const receive = new Samples();
    const clients: Client[] = [];
    const streams: Stream[] = [];
    const failures: BusError[] = [];
    let lastReceipt = 0;
    let receivedBytes = 0;
    let closing = false;
    try {
      // Receivers first: a subscriber sees only what is written after it subscribed.
      const onMessage = (m: ReceivedMessage) => {
        const now = performance.now();
        this.counts.received++;
        receivedBytes += m.payload.length;
        lastReceipt = now;
        receive.add(now - sentAt(m.payload));
      };
      for (let i = 0; i < plan.receivers; i++) {
        const client = await this.open();
        clients.push(client);
        const stream =
          plan.mode === "queue"
            ? await client.consume(plan.topic, { prefetch: plan.pipeline }, (m) => {
                onMessage(m);
                client.ack(plan.topic, m.id, m.deliveries).catch((error: unknown) => {
                  if (!closing) this.failure ??= error;
                });
              })
            : await client.subscribe(plan.topic, {}, onMessage);
        stream.done.catch((error: unknown) => {
          if (!closing) failures.push(error instanceof BusError ? error : new BusError("UNAVAILABLE", String(error)));
        });
        streams.push(stream);
      }
      const publishers: Client[] = [];
      for (let i = 0; i < plan.publishers; i++) publishers.push(await this.open());
      clients.push(...publishers);

      const written = new Samples();
      let next = 0;
      this.counts.started = performance.now();
      const deadline = plan.duration !== undefined ? this.counts.started + plan.duration : undefined;
      const claim = (): number | undefined => {
        if (this.stopping || this.failure !== undefined) return undefined;
        if (plan.msgs !== undefined && next >= plan.msgs) return undefined;
        if (deadline !== undefined && performance.now() >= deadline) return undefined;
        return next++;
      };
      await Promise.all(publishers.map((client) => this.publish(client, claim, written)));
      const writingEnded = performance.now();
      if (this.failure !== undefined) throw this.failure;

      // Every write is acknowledged: wait for the receivers to have them all (or to go quiet).
      const expected = plan.mode === "pub" ? 0 : plan.mode === "queue" ? this.counts.written : this.counts.written * plan.receivers;
      let seen = this.counts.received;
      let quietSince = performance.now();
      while (this.counts.received < expected && failures.length < plan.receivers && this.failure === undefined) {
        await Bun.sleep(10);
        if (this.counts.received !== seen) {
          seen = this.counts.received;
          quietSince = performance.now();
        } else if (performance.now() - quietSince > plan.idle) break;
      }
      if (this.failure !== undefined) throw this.failure;

      const seconds = (end: number) => Math.max(end - this.counts.started, 1e-3) / 1000;
      const roles: RoleResult[] = [
        { role: "publish", clients: plan.publishers, msgs: written.count, bytes: written.count * plan.size, seconds: seconds(writingEnded), latency: written },
      ];
      if (plan.mode !== "pub") {
        roles.push({
          role: plan.mode === "queue" ? "consume" : "receive",
          clients: plan.receivers,
          msgs: this.counts.received,
          bytes: receivedBytes,
          seconds: seconds(lastReceipt || writingEnded),
          latency: receive,
        });
      }
      return { roles, expected, failures };
    } finally {
      closing = true;
      for (const stream of streams) stream.close();
      await Promise.allSettled(clients.map((c) => c.close()));
    }
  }

  /** One publisher: claims message numbers until there are none left, `pipeline` writes in flight. */
  private async publish(client: Client, claim: () => number | undefined, written: Samples): Promise<void> {
    const { plan } = this;
    const inFlight = new Set<Promise<void>>();
    for (let k = claim(); k !== undefined; k = claim()) {
      if (plan.rate !== undefined) {
        const wait = this.counts.started + (k * 1000) / plan.rate - performance.now();
        if (wait > 1) await Bun.sleep(wait);
      }
      const sent = performance.now();
      const write: Promise<void> = client.put(plan.topic, payload(plan.size, sent)).then(
        () => {
          written.add(performance.now() - sent);
          this.counts.written++;
          inFlight.delete(write);
        },
        (error: unknown) => {
          this.failure ??= error;
          inFlight.delete(write);
        },
      );
      inFlight.add(write);
      if (inFlight.size >= plan.pipeline) await Promise.race(inFlight);
    }
    await Promise.all(inFlight);
  }
}
