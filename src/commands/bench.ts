// `msgbus bench pub|sub|queue|latency [topic]`: a load test any user can run against any msgbus,
// over any transport (--url), as `nats bench` and `redis-benchmark` do. What each mode measures is
// said in src/bench/modes.ts; the topic it used is deleted at the end.

import { defineCommand } from "citty";
import { Bench, MODES, STAMP_BYTES, type Mode, type Plan } from "../bench/modes.ts";
import { startProgress, summaryCsv, summaryTable } from "../bench/report.ts";
import type { Client } from "../client/client.ts";
import { isBusError } from "../core/errors.ts";
import { connectionArgs, countOption, durationOption } from "./_args.ts";
import { connectFromArgs } from "./_connect.ts";
import { fail, guarded, usage } from "./_exit.ts";
import { writeStdout } from "./_io.ts";

const DEFAULT_MSGS = 100_000;
/** latency mode: a steady rate for a few seconds, unless told otherwise. */
const LATENCY_RATE = 1000;
const LATENCY_MSGS = 5000;
const DEFAULT_SIZE = 128;
const DEFAULT_PIPELINE = 64;
/** After the last write, receivers going this long without a message end the run short. */
const IDLE_MS = 2000;

export default defineCommand({
  meta: {
    name: "bench",
    description: "Measure a msgbus: writes, fan-out, work queues or latency, with a summary (msgs/s, bytes/s, latency percentiles)",
  },
  args: {
    mode: {
      type: "positional" as const,
      required: false,
      description:
        "pub: publishers write, each write timed to its acknowledgement; sub: publishers write and subscribers receive every message; " +
        "queue: producers write and competing consumers take each message once (leased, acked); latency: one publisher at --rate, subscribers time write to receipt",
    },
    topic: { type: "positional" as const, required: false, description: "topic to use (default: a fresh bench.<mode>.<random>); it is deleted at the end" },
    clients: {
      type: "string" as const,
      valueHint: "n",
      description: "publishers (pub), subscribers (sub, latency) or consumers (queue); default 1",
    },
    publishers: { type: "string" as const, valueHint: "n", description: "sub, queue and latency: publishers writing (default 1)" },
    msgs: {
      type: "string" as const,
      valueHint: "n",
      description: `messages to write in all (default ${DEFAULT_MSGS}; latency: ${LATENCY_MSGS}); with --duration, no limit`,
    },
    size: { type: "string" as const, valueHint: "bytes", description: `payload size (default ${DEFAULT_SIZE}; at least ${STAMP_BYTES} but in pub mode)` },
    duration: { type: "string" as const, valueHint: "duration", description: "write for this long (e.g. 10s) instead of a number of messages" },
    rate: {
      type: "string" as const,
      valueHint: "msgs/s",
      description: `writes per second, all publishers together (default: as fast as acknowledgements come; latency: ${LATENCY_RATE})`,
    },
    pipeline: {
      type: "string" as const,
      valueHint: "n",
      description: `writes in flight per publisher, and a consumer's prefetch (default ${DEFAULT_PIPELINE})`,
    },
    csv: { type: "string" as const, valueHint: "file", description: "also write the summary to this file as CSV (a header, one row per role)" },
    progress: { type: "boolean" as const, default: true, description: "a live progress line on stderr (only when stderr is a terminal)" },
    ...connectionArgs,
  },
  run: ({ args }) =>
    guarded(async () => {
      const plan = planFrom(args);
      const first = await connectFromArgs(args);
      const url = first.url;
      const pool: Client[] = [first.client];
      const open = async () => pool.pop() ?? (await connectFromArgs(args)).client;
      const bench = new Bench(plan, open);

      let interrupted = false;
      const onInterrupt = () => {
        if (interrupted) process.exit(130);
        interrupted = true;
        bench.stop();
      };
      process.on("SIGINT", onInterrupt);
      const showProgress = args.progress !== false && process.stderr.isTTY === true;
      const stopProgress = showProgress ? startProgress(plan, bench.counts, (text) => process.stderr.write(text)) : () => {};

      const receivers = plan.mode === "queue" ? "consumer" : "subscriber";
      const who = plan.mode === "pub" ? plural(plan.publishers, "publisher") : `${plural(plan.publishers, "publisher")}, ${plural(plan.receivers, receivers)}`;
      const amount = plan.msgs !== undefined ? `${plan.msgs.toLocaleString("en-US")} msgs` : `${plan.duration! / 1000} s of msgs`;
      const rate = plan.rate !== undefined ? ` at ${plan.rate.toLocaleString("en-US")}/s` : "";
      const headline = `msgbus bench ${plan.mode}: ${url}, topic ${plan.topic}, ${who}, ${amount} of ${plan.size} B${rate}\n`;

      let outcome: Awaited<ReturnType<Bench["run"]>>;
      try {
        outcome = await bench.run();
      } finally {
        stopProgress();
        process.off("SIGINT", onInterrupt);
        await cleanUp(plan, () => connectFromArgs(args).then((c) => c.client));
      }

      await writeStdout(`${headline}\n${summaryTable(outcome.roles)}\n`);
      if (args.csv) await Bun.write(String(args.csv), summaryCsv(plan, url, outcome.roles));
      const received = outcome.roles[1]?.msgs ?? 0;
      if (plan.mode !== "pub" && received < outcome.expected) {
        process.stderr.write(
          `msgbus: bench: ${received.toLocaleString("en-US")} of ${outcome.expected.toLocaleString("en-US")} deliveries arrived (none for ${IDLE_MS / 1000} s after the last write)\n`,
        );
      }
      if (outcome.failures.length > 0) fail(outcome.failures[0]);
    }),
});

function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? "" : "s"}`;
}

/** The arguments as a plan, every mistake a usage error (exit 2) before anything connects. */
function planFrom(args: Record<string, unknown>): Plan {
  const mode = args.mode as Mode | undefined;
  if (mode === undefined || !MODES.includes(mode)) {
    throw usage(`bench needs a mode: one of ${MODES.join(", ")} (usage: msgbus bench <mode> [topic])${mode ? ` (got "${String(mode)}")` : ""}`);
  }
  if ((args._ as string[]).length > 2) throw usage("bench takes a mode and at most one topic");
  const clients = countOption(args.clients, "clients") ?? 1;
  const publishers = countOption(args.publishers, "publishers");
  if (mode === "pub" && publishers !== undefined) throw usage("--publishers goes with sub, queue and latency (in pub mode, --clients are the publishers)");
  const duration = durationOption(args.duration, "duration");
  if (duration !== undefined && duration <= 0) throw usage("--duration: expected more than 0");
  const explicitMsgs = countOption(args.msgs, "msgs");
  if (duration !== undefined && explicitMsgs !== undefined) throw usage("give --msgs or --duration, not both");
  const size = countOption(args.size, "size", 0) ?? DEFAULT_SIZE;
  if (mode !== "pub" && size < STAMP_BYTES) throw usage(`--size: ${mode} carries the send time in each payload: at least ${STAMP_BYTES} bytes`);
  const topic = typeof args.topic === "string" && args.topic !== "" ? args.topic : `bench.${mode}.${crypto.randomUUID().slice(0, 8)}`;
  return {
    mode,
    topic,
    publishers: mode === "pub" ? clients : (publishers ?? 1),
    receivers: mode === "pub" ? 0 : clients,
    msgs: duration !== undefined ? undefined : (explicitMsgs ?? (mode === "latency" ? LATENCY_MSGS : DEFAULT_MSGS)),
    duration,
    size,
    rate: countOption(args.rate, "rate") ?? (mode === "latency" ? LATENCY_RATE : undefined),
    pipeline: countOption(args.pipeline, "pipeline") ?? DEFAULT_PIPELINE,
    idle: IDLE_MS,
  };
}

/**
 * Deletes the topic the run used (and its dead-letter topic, should a consumer have put one there).
 * The server may not have seen the run's connections leave yet: a topic "in use" is tried again.
 */
async function cleanUp(plan: Plan, open: () => Promise<Client>): Promise<void> {
  let client: Client | undefined;
  try {
    client = await open();
    const dead = `${plan.topic}.dead`;
    for (const topic of plan.mode === "queue" && dead.length <= 128 ? [plan.topic, dead] : [plan.topic]) {
      for (let attempt = 0; ; attempt++) {
        try {
          await client.deleteTopic(topic);
          break;
        } catch (error) {
          if (isBusError(error) && error.code === "NOT_FOUND") break; // never written (no dead letters)
          if (!isBusError(error) || error.code !== "BAD_REQUEST" || attempt >= 50) throw error;
          await Bun.sleep(20);
        }
      }
    }
  } catch (error) {
    process.stderr.write(`msgbus: bench: could not delete topic ${plan.topic}: ${error instanceof Error ? error.message : String(error)}\n`);
  } finally {
    await client?.close();
  }
}
