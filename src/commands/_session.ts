// Staying connected: the one session loop of `on` and `sub` (connect, open the stream, on a lost
// server back off and connect again with --reconnect, stop on SIGTERM/SIGINT), and the back-off
// and retrying connect that `put` shares.

import { isBusError } from "../core/errors.ts";
import type { Stream } from "../client/client.ts";
import type { Connected } from "./_connect.ts";

/** Whether a failure is worth another attempt under --reconnect: the server is away, not refusing us. */
export function isUnavailable(error: unknown): boolean {
  return isBusError(error) && error.code === "UNAVAILABLE";
}

/** `--reconnect`: the waits between attempts, 1 s doubling up to 30 s; interrupt() ends a wait early. */
export class Backoff {
  private delay = 1000;
  private wake: (() => void) | undefined;

  get nextDelay(): number {
    return this.delay;
  }

  reset(): void {
    this.delay = 1000;
  }

  async wait(): Promise<void> {
    const ms = this.delay;
    this.delay = Math.min(this.delay * 2, 30000);
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, ms);
      this.wake = () => {
        clearTimeout(timer);
        resolve();
      };
    });
    this.wake = undefined;
  }

  interrupt(): void {
    this.wake?.();
  }
}

/** The line written before each wait: why the attempt failed, and when the next one comes. */
export function retryLine(error: unknown, backoff: Backoff): string {
  return `${(error as Error).message}; trying again in ${backoff.nextDelay / 1000} s`;
}

/** Connects; with --reconnect, tries again (1 s, doubling up to 30 s) while the server cannot be reached. */
export async function connectRetrying(
  connect: () => Promise<Connected>,
  reconnect: boolean,
  backoff: Backoff,
  warn: (text: string) => void,
): Promise<Connected> {
  for (;;) {
    try {
      const connected = await connect();
      backoff.reset();
      return connected;
    } catch (error) {
      if (!reconnect || !isUnavailable(error)) throw error;
      warn(retryLine(error, backoff));
      await backoff.wait();
    }
  }
}

/** Stops the process on the first SIGTERM/SIGINT via `graceful`; a second one runs `force`. */
export function onStopSignals(graceful: (signal: string) => void, force: (signal: string) => void): void {
  let signalled = false;
  for (const signal of ["SIGTERM", "SIGINT"] as const) {
    process.on(signal, () => {
      if (signalled) return force(signal);
      signalled = true;
      graceful(signal);
    });
  }
}

/** What a command that streams (`on`, `sub`) gives its session. */
export interface SessionOptions {
  /** One attempt to connect. */
  connect(): Promise<Connected>;
  /** Opens the stream on a new connection; its messages go to the command. */
  open(connected: Connected): Promise<Stream>;
  /** Works through the messages received (also called on stop: then it calls drained() once nothing runs). */
  drain(): void;
  /** Whether a handler runs or a message is being printed. */
  busy(): boolean;
  /** The connection is gone: messages received on it and not started went back with it. */
  lost?(): void;
  /** A failure ends the process: ask what runs to end too (SIGTERM). */
  abandon(): void;
  /** A second signal: kill what runs, at once. */
  kill(): void;
  /** --reconnect: a lost or unreachable server means another connection, after a back-off. */
  reconnect: boolean;
  warn(text: string): void;
}

/**
 * One connection after another until the stream ends or the command stops. A failure that ends it
 * (without --reconnect, or one that is not UNAVAILABLE) rejects run().
 */
export class Session {
  /** The current connection; undefined while disconnected. */
  connected: Connected | undefined;
  /** Set by stop(): no new messages are started. */
  stopping = false;
  private stream: Stream | undefined;
  private readonly backoff = new Backoff();
  private idle: (() => void) | undefined;

  constructor(private readonly o: SessionOptions) {}

  /** Runs until the stream ends, or until stopped and what ran has finished; then closes. */
  async run(): Promise<void> {
    const o = this.o;
    onStopSignals(
      () => this.stop(),
      () => {
        o.kill();
        process.exit(130);
      },
    );
    for (;;) {
      try {
        this.connected = await o.connect();
        this.stream = await o.open(this.connected);
        if (this.backoff.nextDelay > 1000) o.warn(`connected to ${this.connected.url}`);
        this.backoff.reset();
        o.drain();
        await this.stream.done;
        break;
      } catch (error) {
        this.stream = undefined;
        o.lost?.();
        await this.connected?.client.close();
        this.connected = undefined;
        if (!o.reconnect || this.stopping || !isUnavailable(error)) {
          o.abandon();
          throw error;
        }
        o.warn(retryLine(error, this.backoff));
        await this.backoff.wait();
        if (this.stopping) break;
      }
    }
    // Stopped while disconnected: still let running handlers finish.
    if (o.busy()) await new Promise<void>((resolve) => (this.idle = resolve));
    await this.connected?.client.close();
  }

  /** No new messages (a consumer keeps its leases meanwhile), no more waiting to reconnect; what runs finishes. */
  stop(): void {
    if (!this.stopping) this.stream?.stop?.().catch(() => {});
    this.stopping = true;
    this.backoff.interrupt();
    this.o.drain();
  }

  /** Stopping, and nothing runs any more: close the stream (what was not started goes back) and let run() end. */
  drained(): void {
    this.stream?.close();
    this.idle?.();
  }
}
