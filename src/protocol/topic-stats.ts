// One topic's counters as the wire carries them: `/_/topics` and `/_/topics/{topic}` (JSON), `STATS
// topic` (RESP). The server builds it (server/metrics.ts), the client library returns it and the web
// console reads it, so it imports nothing: the console type-checks it with browser types only.

/** One topic's counters, as `/_/topics/{topic}` and `STATS topic` report them. */
export interface TopicStats {
  name: string;
  /** Queued, ready to take. */
  depth: number;
  /** Leased, not yet acked. */
  inflight: number;
  /** Nacked with a delay, not yet back. */
  delayed: number;
  bytes: number;
  lastId: number;
  subscribers: number;
  consumers: number;
  /** Messages per second written and taken, over the last second. */
  rateIn: number;
  rateOut: number;
  published: number;
  consumed: number;
  acked: number;
  redelivered: number;
  dropped: number;
  expired: number;
  deadLettered: number;
  bytesIn: number;
}
