// `msgbus on <topic> [-- command…]`: consume forever with leases (at-least-once). Without a command
// each payload is printed, then acked; with one, the command runs per message (payload on stdin)
// and exit 0 acks, anything else nacks. SIGTERM/SIGINT: finish what runs, settle it, exit 0.

import { defineCommand } from "citty";
import { isBusError } from "../core/errors.ts";
import type { ReceivedMessage, Stream } from "../client/client.ts";
import {
  EXIT_CODES,
  checkRunnable,
  connectionArgs,
  commandAfterDashes,
  connectFromArgs,
  countOption,
  durationOption,
  guarded,
  messageOutput,
  onStopSignals,
  outputArgs,
  runHandler,
  topicArg,
  usage,
  writeStdout,
  type HandlerRun,
} from "./_shared.ts";

const MAX_CONCURRENCY = 10000;

export default defineCommand({
  meta: {
    name: "on",
    description: "Consume a topic forever, at-least-once: print each message, or run a command per message; ack on success",
  },
  args: {
    topic: { type: "positional" as const, required: false, description: "topic to consume" },
    "-- command": {
      type: "positional" as const,
      required: false,
      description:
        "run per message: payload on stdin; MSGBUS_ID, MSGBUS_TOPIC, MSGBUS_DELIVERY, MSGBUS_CREATED (and MSGBUS_URL) in the environment; " +
        "exit 0 acks, anything else nacks. Without it, each payload is printed (a newline added unless it ends with one) and acked once written. " +
        "SIGTERM/SIGINT: running handlers finish and are settled, then exit 0; a second signal kills them. The server going away: exit code 4 (no reconnect)",
    },
    lease: { type: "string" as const, valueHint: "duration", description: "how long a message stays leased before it is delivered again (default: the server's --lease-time, 30s)" },
    concurrency: { type: "string" as const, valueHint: "n", description: "handlers running at once, and messages held at once (default 1)" },
    timeout: { type: "string" as const, valueHint: "duration", description: "kill a handler that runs longer (SIGTERM, then SIGKILL) and nack its message" },
    "max-deliveries": { type: "string" as const, valueHint: "n", description: "after n deliveries a failed message goes to <topic>.dead (MSGBUS_MAX_DELIVERIES; default: the server's, 5)" },
    "retry-delay": { type: "string" as const, valueHint: "duration", description: "a nacked message is held back this long before it is delivered again (default 0)" },
    ...outputArgs,
    ...connectionArgs,
  },
  run: ({ args, rawArgs }) =>
    guarded(async () => {
      const command = commandAfterDashes(rawArgs);
      const topic = topicArg(args, "on", "msgbus on <topic> [-- command…]");
      if (args._.length - (command?.length ?? 0) > 1) throw usage("on takes one topic; put the command to run after --");
      const lease = durationOption(args.lease, "lease");
      const concurrency = countOption(args.concurrency, "concurrency") ?? 1;
      if (concurrency > MAX_CONCURRENCY) throw usage(`--concurrency: at most ${MAX_CONCURRENCY}`);
      const timeoutMs = durationOption(args.timeout, "timeout");
      countOption(args["max-deliveries"], "max-deliveries");
      const retryDelay = durationOption(args["retry-delay"], "retry-delay");
      if (command) checkRunnable(command);

      const { client, url, token, maxDeliveries } = await connectFromArgs(args);
      const handlerEnv: Record<string, string> = { MSGBUS_URL: url, ...(token ? { MSGBUS_TOKEN: token } : {}) };
      const received: ReceivedMessage[] = [];
      const running = new Set<HandlerRun>();
      let busy = 0; // handlers running, or a message being printed
      let stopping = false;
      let stream: Stream | undefined;

      const warn = (text: string) => process.stderr.write(`msgbus: ${text}\n`);
      const settle = async (m: ReceivedMessage, ok: boolean) => {
        try {
          if (ok) await client.ack(topic, m.id, m.deliveries);
          else await client.nack(topic, m.id, { delivery: m.deliveries, delay: retryDelay });
        } catch (error) {
          // A lost connection ends the stream and the command; a lost lease is worth a line.
          if (isBusError(error) && error.code === "UNAVAILABLE") return;
          warn(`could not ${ok ? "ack" : "nack"} message ${m.id} of ${topic}: ${error instanceof Error ? error.message : String(error)}`);
        }
      };

      const handle = async (m: ReceivedMessage) => {
        const run = runHandler(command!, m, { timeoutMs, env: handlerEnv });
        running.add(run);
        const result = await run.exited;
        running.delete(run);
        if (result.error) warn(`${result.error}; message ${m.id} nacked`);
        else if (result.timedOut) warn(`handler ran longer than ${args.timeout} for message ${m.id} of ${topic} (delivery ${m.deliveries}): killed, nacked`);
        else if (result.code !== 0) warn(`handler exited with code ${result.code} for message ${m.id} of ${topic} (delivery ${m.deliveries}): nacked`);
        await settle(m, result.code === 0);
      };

      const print = async (m: ReceivedMessage) => {
        try {
          await writeStdout(messageOutput(m, Boolean(args.json)));
        } catch {
          // Whoever read our output is gone (`msgbus on jobs | head -1`): give it back and stop.
          stopping = true;
          await settle(m, false);
          return;
        }
        await settle(m, true);
      };

      const work = (m: ReceivedMessage) => {
        busy++;
        (command ? handle(m) : print(m)).finally(() => {
          busy--;
          pump();
        });
      };

      // Messages the server sent while we are stopping are not started: closing returns them.
      function pump() {
        const limit = command ? concurrency : 1;
        while (!stopping && busy < limit && received.length > 0) work(received.shift()!);
        if (stopping && busy === 0) stream?.close();
      }

      onStopSignals(
        () => {
          stopping = true;
          pump();
        },
        () => {
          for (const run of running) run.kill("SIGKILL");
          process.exit(130);
        },
      );

      stream = await client.consume(topic, { lease, prefetch: concurrency, maxDeliveries }, (m) => {
        received.push(m);
        pump();
      });
      pump();
      try {
        await stream.done;
      } catch (error) {
        for (const run of running) run.kill("SIGTERM");
        throw error;
      }
      await client.close();
      process.exit(EXIT_CODES.OK);
    }),
});
