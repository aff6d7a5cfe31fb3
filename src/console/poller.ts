// One poll of /_/topics a second, shared by every view: the overview's table, the topic view's
// counters and the server line in the header. Rate history is kept here, in the page.

import { ApiError, getJson, Unreachable } from "./api.ts";
import type { TopicStats } from "../protocol/topic-stats.ts";
import { RateHistory } from "./sparkline.ts";

export type { TopicStats };

export interface Snapshot {
  topics: TopicStats[];
  totals: { bytes: number; maxMemory: number; topics: number; messagesIn: number; messagesOut: number };
  connections: Record<string, number>;
  uptime: number;
  rss?: number;
  version?: string;
}

export type PollResult = { snapshot: Snapshot } | { error: string };
type Listener = (result: PollResult) => void;

const INTERVAL_MS = 1000;
const RETRY_MS = 2000;

export class Poller {
  readonly history = new RateHistory();
  latest: Snapshot | undefined;
  private readonly listeners = new Set<Listener>();
  private timer: ReturnType<typeof setTimeout> | undefined;

  subscribe(listener: Listener): () => void {
    this.listeners.add(listener);
    if (this.latest) listener({ snapshot: this.latest });
    return () => this.listeners.delete(listener);
  }

  /** Polls now (after an action, so the numbers follow at once) and then every second. */
  async poll(): Promise<void> {
    clearTimeout(this.timer);
    let next = INTERVAL_MS;
    let result: PollResult;
    try {
      const snapshot = await getJson<Snapshot>("_/topics");
      const now = Date.now();
      const names = new Set<string>();
      for (const t of snapshot.topics) {
        names.add(t.name);
        this.history.record(t.name, t.published, t.consumed, now, t);
      }
      for (const name of this.history.names()) if (!names.has(name)) this.history.forget(name);
      this.latest = snapshot;
      result = { snapshot };
    } catch (error) {
      next = RETRY_MS;
      result = { error: error instanceof Unreachable || error instanceof ApiError ? error.message : String(error) };
    }
    for (const listener of this.listeners) listener(result);
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.poll(), next);
  }
}
