// `msgbus stats [topic]`: one topic's counters in detail, or without a topic the server's totals;
// `--json` gives the same as one JSON object.

import { defineCommand } from "citty";
import type { ServerStats, TopicStats } from "../client/client.ts";
import { connectionArgs } from "./_args.ts";
import { connectFromArgs } from "./_connect.ts";
import { guarded, usage } from "./_exit.ts";
import { writeStdout } from "./_io.ts";
import { formatBytes, formatRate, formatUptime } from "./_table.ts";

type Row = [label: string, value: string];

function topicRows(t: TopicStats): Row[] {
  return [
    ["topic", t.name],
    ["depth", `${t.depth} queued, ready to take`],
    ["in flight", `${t.inflight} leased, not yet acked`],
    ["delayed", `${t.delayed} nacked with a delay`],
    ["bytes", formatBytes(t.bytes)],
    ["last id", String(t.lastId)],
    ["subscribers", String(t.subscribers)],
    ["consumers", String(t.consumers)],
    ["rate in", `${formatRate(t.rateIn)}/s`],
    ["rate out", `${formatRate(t.rateOut)}/s`],
    ["published", String(t.published)],
    ["consumed", String(t.consumed)],
    ["acked", String(t.acked)],
    ["redelivered", String(t.redelivered)],
    ["dropped", String(t.dropped)],
    ["expired", String(t.expired)],
    ["dead-lettered", String(t.deadLettered)],
    ["bytes in", formatBytes(t.bytesIn)],
  ];
}

function serverRows(s: ServerStats): Row[] {
  return [
    ["uptime", formatUptime(s.uptime)],
    ["topics", String(s.topics)],
    ["connections", String(s.connections)],
    ["memory", `${formatBytes(s.bytes)} of ${formatBytes(s.maxMemory)} (--max-memory)`],
    ["messages in", String(s.messagesIn)],
    ["messages out", String(s.messagesOut)],
    ["acked", String(s.acked)],
    ["redelivered", String(s.redelivered)],
    ["dropped", String(s.dropped)],
    ["expired", String(s.expired)],
    ["dead-lettered", String(s.deadLettered)],
  ];
}

function render(rows: Row[]): string {
  const width = Math.max(...rows.map(([label]) => label.length));
  return rows.map(([label, value]) => `${label.padEnd(width)}  ${value}\n`).join("");
}

export default defineCommand({
  meta: {
    name: "stats",
    description: "Show one topic's counters in detail, or without a topic the server's totals",
  },
  args: {
    topic: { type: "positional" as const, required: false, description: "the topic (without it: the server's totals)" },
    json: { type: "boolean" as const, description: "one JSON object: the counters of /_/topics/{topic} (or the server's totals)" },
    ...connectionArgs,
  },
  run: ({ args }) =>
    guarded(async () => {
      if (args._.length > 1) throw usage("stats takes at most one topic");
      const topic = typeof args.topic === "string" && args.topic !== "" ? args.topic : undefined;
      const { client } = await connectFromArgs(args);
      const stats = topic === undefined ? await client.serverStats() : await client.topicStats(topic);
      await client.close();
      if (args.json) await writeStdout(JSON.stringify(stats) + "\n");
      else await writeStdout(render(topic === undefined ? serverRows(stats as ServerStats) : topicRows(stats as TopicStats)));
      process.exit(0);
    }),
});
