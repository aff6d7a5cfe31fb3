// What /_/topics (JSON), /_/metrics (Prometheus text format) and STATS report: the bus's counters,
// every topic's depth and rates, and the transports' connections. Counts come from Topic, never here.

import type { TopicView as Topic } from "../core/engine.ts";
import type { TopicStats } from "../protocol/topic-stats.ts";
import { VERSION } from "./command-helpers.ts";
import type { ServerContext, Transport } from "./context.ts";

export function topicJson(topic: Topic): TopicStats {
  const c = topic.counters;
  return {
    name: topic.name,
    depth: topic.queue.length,
    inflight: topic.leased.size,
    delayed: topic.delayed,
    bytes: topic.bytes,
    lastId: topic.lastId,
    subscribers: topic.subscriberCount,
    consumers: topic.consumerCount,
    rateIn: round(topic.rateIn),
    rateOut: round(topic.rateOut),
    published: c.published,
    consumed: c.consumed,
    acked: c.acked,
    redelivered: c.redelivered,
    dropped: c.dropped,
    expired: c.expired,
    deadLettered: c.deadLettered,
    bytesIn: c.bytesIn,
  };
}

/** The bus's counters over every topic. */
export function totalsJson(ctx: ServerContext) {
  const { bus } = ctx;
  return {
    ...bus.totals,
    bytes: bus.bytes,
    maxMemory: bus.limits.maxMemory,
    topics: bus.topicList().length,
    connections: ctx.stats.openConnections,
    uptime: Math.floor((Date.now() - ctx.stats.started) / 1000),
  };
}

/** `visible`: the topics listed (those the token may read); the totals are the server's. */
export function topicsJson(ctx: ServerContext, visible: (topic: string) => boolean = () => true) {
  const { bus, stats } = ctx;
  const topics = bus
    .topicList()
    .filter((t) => visible(t.name))
    .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  const { connections: _open, uptime, ...totals } = totalsJson(ctx);
  return {
    topics: topics.map((t) => topicJson(t)),
    totals,
    connections: { ...stats.connections },
    slowConsumers: stats.slowConsumers,
    protocolErrors: stats.protocolErrors,
    authFailures: ctx.auth.failures,
    uptime,
    // For the web console's header: the process's resident memory beside the bus's own budget.
    rss: process.memoryUsage.rss(),
    version: VERSION,
  };
}

type Sample = [labels: string, value: number];

/** The Prometheus text exposition format (version 0.0.4); per-topic samples for the `visible` topics only. */
export function prometheus(ctx: ServerContext, visible: (topic: string) => boolean = () => true): string {
  const { bus, stats } = ctx;
  const t = bus.totals;
  const lines: string[] = [];
  const metric = (name: string, type: "counter" | "gauge", help: string, samples: Sample[] | number) => {
    lines.push(`# HELP msgbus_${name} ${help}`, `# TYPE msgbus_${name} ${type}`);
    if (typeof samples === "number") lines.push(`msgbus_${name} ${samples}`);
    else for (const [labels, value] of samples) lines.push(`msgbus_${name}${labels} ${value}`);
  };
  metric("messages_in_total", "counter", "Messages written.", t.messagesIn);
  metric("messages_out_total", "counter", "Messages handed to consumers (taken or leased).", t.messagesOut);
  metric("dropped_total", "counter", "Messages dropped unconsumed (topic or memory limit, purge).", t.dropped);
  metric("expired_total", "counter", "Messages expired unconsumed (--max-age).", t.expired);
  metric("redelivered_total", "counter", "Deliveries of a message handed out before.", t.redelivered);
  metric("dead_lettered_total", "counter", "Messages moved to a dead-letter topic.", t.deadLettered);
  metric("acked_total", "counter", "Leases acknowledged.", t.acked);
  metric("bytes_held", "gauge", "Bytes held over every topic (payload plus per-message overhead).", bus.bytes);
  metric("memory_limit_bytes", "gauge", "The global byte budget (--max-memory).", bus.limits.maxMemory);
  metric("topics", "gauge", "Topics the bus knows.", bus.topicList().length);
  const transports = Object.keys(stats.connections) as Transport[];
  metric(
    "connections",
    "gauge",
    "Open connections by transport (http: requests in flight).",
    transports.map((tr) => [`{transport="${tr}"}`, stats.connections[tr]]),
  );
  metric(
    "connections_opened_total",
    "counter",
    "Connections opened by transport (http: requests).",
    transports.map((tr) => [`{transport="${tr}"}`, stats.connectionsTotal[tr]]),
  );
  metric("slow_consumers_total", "counter", "Readers cut off for falling more than --send-buffer behind.", stats.slowConsumers);
  metric("protocol_errors_total", "counter", "Malformed requests.", stats.protocolErrors);
  metric("auth_failures_total", "counter", "Wrong tokens, and tokens a reload of --acl removed, refused.", ctx.auth.failures);
  metric("uptime_seconds", "gauge", "Seconds since the server started.", Math.floor((Date.now() - stats.started) / 1000));
  metric("resident_memory_bytes", "gauge", "Resident set size of the server process.", process.memoryUsage.rss());

  const topics = bus.topicList().filter((t) => visible(t.name));
  const perTopic = (get: (topic: Topic) => number): Sample[] => topics.map((topic) => [`{topic="${label(topic.name)}"}`, get(topic)]);
  metric(
    "queue_depth",
    "gauge",
    "Messages queued, ready to take.",
    perTopic((x) => x.queue.length),
  );
  metric(
    "queue_inflight",
    "gauge",
    "Messages leased and not yet acked.",
    perTopic((x) => x.leased.size),
  );
  metric(
    "queue_delayed",
    "gauge",
    "Messages nacked with a delay, not yet back.",
    perTopic((x) => x.delayed),
  );
  metric(
    "queue_bytes",
    "gauge",
    "Bytes a topic holds (payload plus overhead).",
    perTopic((x) => x.bytes),
  );
  metric(
    "subscribers",
    "gauge",
    "Live subscribers of a topic.",
    perTopic((x) => x.subscriberCount),
  );
  metric(
    "consumers",
    "gauge",
    "Consumers waiting on a topic.",
    perTopic((x) => x.consumerCount),
  );
  metric(
    "topic_messages_in_total",
    "counter",
    "Messages written to a topic.",
    perTopic((x) => x.counters.published),
  );
  metric(
    "topic_messages_out_total",
    "counter",
    "Messages handed out from a topic.",
    perTopic((x) => x.counters.consumed),
  );
  metric(
    "topic_dropped_total",
    "counter",
    "Messages a topic dropped unconsumed.",
    perTopic((x) => x.counters.dropped),
  );
  return lines.join("\n") + "\n";
}

/** Topic names cannot hold these, but a label must never break the format. */
function label(value: string): string {
  return value.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n");
}

function round(n: number): number {
  return Math.round(n * 100) / 100;
}
