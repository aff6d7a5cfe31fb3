// `msgbus on <topic> [-- command…]`: consume forever with leases (at-least-once). Without a command
// each payload is printed, then acked; with one, the command runs per message (payload on stdin)
// and exit 0 acks, anything else nacks. SIGTERM/SIGINT: finish what runs, settle it, exit 0.

import { defineCommand } from "citty";
import { SETTINGS } from "../config.ts";
import { checkDelay, checkLease } from "../core/durations.ts";
import type { ReceivedMessage } from "../client/client.ts";
import { commandAfterDashes, checkRunnable, runHandler, type HandlerRun } from "./_handler.ts";
import { connectFromArgs, handlerEnvironment } from "./_connect.ts";
import { connectionArgs, countOption, durationOption, outputArgs, reconnectArg, topicArg } from "./_args.ts";
import { EXIT_CODES, guarded, usage } from "./_exit.ts";
import { messageOutput, writeStdout } from "./_io.ts";
import { isUnavailable, Session } from "./_session.ts";

const MAX_CONCURRENCY = 10000;
/** The server's default --max-deliveries, assumed when the client is not told (for the log line only). */
const DEFAULT_MAX_DELIVERIES = Number(SETTINGS.find((s) => s.key === "maxDeliveries")!.default);

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
        "SIGTERM/SIGINT: running handlers finish and are settled, then exit 0; a second signal kills them. The server going away: exit code 4, unless --reconnect",
    },
    lease: {
      type: "string" as const,
      valueHint: "duration",
      description:
        "lease per message (default: the server's --lease-time, 30s; at most 12h), renewed every third of it while the handler runs, so a long handler keeps its message; if this process dies, the message goes to another consumer after at most this long",
    },
    concurrency: { type: "string" as const, valueHint: "n", description: "handlers running at once, and messages held at once (default 1)" },
    timeout: { type: "string" as const, valueHint: "duration", description: "kill a handler that runs longer (SIGTERM, then SIGKILL) and nack its message" },
    "max-deliveries": {
      type: "string" as const,
      valueHint: "n",
      description: "after n deliveries a failed message goes to <topic>.dead (MSGBUS_MAX_DELIVERIES; default: the server's, 5)",
    },
    "retry-delay": {
      type: "string" as const,
      valueHint: "duration",
      description: "a nacked message is held back this long before it is delivered again (default 0)",
    },
    ...reconnectArg,
    ...outputArgs,
    ...connectionArgs,
  },
  run: ({ args, rawArgs }) =>
    guarded(async () => {
      const command = commandAfterDashes(rawArgs);
      const topic = topicArg(args, "on", "msgbus on <topic> [-- command…]");
      if (args._.length - (command?.length ?? 0) > 1) throw usage("on takes one topic; put the command to run after --");
      const leaseOption = durationOption(args.lease, "lease");
      const lease = leaseOption === undefined ? undefined : checkLease(leaseOption, "--lease");
      const concurrency = countOption(args.concurrency, "concurrency") ?? 1;
      if (concurrency > MAX_CONCURRENCY) throw usage(`--concurrency: at most ${MAX_CONCURRENCY}`);
      const timeoutMs = durationOption(args.timeout, "timeout");
      countOption(args["max-deliveries"], "max-deliveries"); // checked here; connectFromArgs resolves it with MSGBUS_MAX_DELIVERIES
      const retryDelayOption = durationOption(args["retry-delay"], "retry-delay");
      const retryDelay = retryDelayOption === undefined ? undefined : checkDelay(retryDelayOption, "--retry-delay");
      if (command) checkRunnable(command);

      const received: ReceivedMessage[] = [];
      const running = new Set<HandlerRun>();
      let busy = 0; // handlers running, or a message being printed
      let handlerEnv: Record<string, string> = {};

      const warn = (text: string) => process.stderr.write(`msgbus: ${text}\n`);
      // One session per connection; with --reconnect a lost server means another session.
      const session: Session = new Session({
        connect: () => connectFromArgs(args),
        open: (connected) => {
          handlerEnv = handlerEnvironment(connected);
          const options = { lease, prefetch: concurrency, maxDeliveries: connected.maxDeliveries };
          return connected.client.consume(topic, options, (m) => {
            received.push(m);
            pump();
          });
        },
        drain: pump,
        busy: () => busy > 0,
        lost: () => {
          received.length = 0; // their leases went back with the connection
        },
        abandon: () => {
          for (const run of running) run.kill("SIGTERM");
        },
        kill: () => {
          for (const run of running) run.kill("SIGKILL");
        },
        reconnect: Boolean(args.reconnect),
        warn,
      });

      const settle = async (m: ReceivedMessage, ok: boolean) => {
        const client = session.connected?.client;
        if (!client) return; // disconnected: the server has given the message back already
        try {
          if (ok) await client.ack(topic, m.id, m.deliveries);
          else await client.nack(topic, m.id, { delivery: m.deliveries, delay: retryDelay });
        } catch (error) {
          // A lost connection ends the stream; a lost lease is worth a line.
          if (isUnavailable(error)) return;
          warn(`could not ${ok ? "ack" : "nack"} message ${m.id} of ${topic}: ${error instanceof Error ? error.message : String(error)}`);
        }
      };

      /** What a failure does to the message: back to the topic, or on to <topic>.dead at its last delivery. */
      const failed = (m: ReceivedMessage) => {
        const max = session.connected?.maxDeliveries ?? DEFAULT_MAX_DELIVERIES;
        return m.deliveries >= max && !topic.endsWith(".dead") ? `moved to ${topic}.dead` : "nacked";
      };

      const handle = async (m: ReceivedMessage) => {
        const run = runHandler(command!, m, { timeoutMs, env: handlerEnv });
        running.add(run);
        const result = await run.exited;
        running.delete(run);
        if (result.error) warn(`${result.error}; message ${m.id} ${failed(m)}`);
        else if (result.timedOut)
          warn(`handler ran longer than ${args.timeout} for message ${m.id} of ${topic} (delivery ${m.deliveries}): killed, ${failed(m)}`);
        else if (result.code !== 0) warn(`handler exited with code ${result.code} for message ${m.id} of ${topic} (delivery ${m.deliveries}): ${failed(m)}`);
        await settle(m, result.code === 0);
      };

      /**
       * Renews a message's lease every third of its length while it is worked on, so a long job
       * is not delivered again meanwhile. Without --lease the length is the server's: the first
       * renewal (after 1 s) answers when the lease now ends. A failed renewal is a warning.
       */
      const renewWhileWorking = (m: ReceivedMessage): (() => void) => {
        let timer: ReturnType<typeof setTimeout> | undefined;
        let done = false;
        const schedule = (ms: number) => {
          if (!done) timer = setTimeout(renew, ms);
        };
        const renew = async () => {
          const client = session.connected?.client;
          if (done || !client) return;
          try {
            const expires = await client.touch(topic, m.id, { lease, delivery: m.deliveries });
            schedule(lease !== undefined ? lease / 3 : Math.min(10000, Math.max(250, (expires - Date.now()) / 3)));
          } catch (error) {
            if (done || isUnavailable(error)) return; // a lost connection gives the lease back anyway
            warn(
              `could not renew the lease on message ${m.id} of ${topic}: ${error instanceof Error ? error.message : String(error)}; it may be delivered again while its handler runs`,
            );
          }
        };
        schedule(lease !== undefined ? lease / 3 : 1000);
        return () => {
          done = true;
          clearTimeout(timer);
        };
      };

      const print = async (m: ReceivedMessage) => {
        try {
          await writeStdout(messageOutput(m, Boolean(args.json)));
        } catch {
          // Whoever read our output is gone (`msgbus on jobs | head -1`): give it back and stop.
          session.stop();
          await settle(m, false);
          return;
        }
        await settle(m, true);
      };

      const work = (m: ReceivedMessage) => {
        busy++;
        const stopRenewing = renewWhileWorking(m);
        (command ? handle(m) : print(m)).finally(() => {
          stopRenewing();
          busy--;
          pump();
        });
      };

      // Messages the server sent while we are stopping are not started: closing returns them.
      function pump() {
        const limit = command ? concurrency : 1;
        while (!session.stopping && busy < limit && received.length > 0) work(received.shift()!);
        if (session.stopping && busy === 0) session.drained();
      }

      await session.run();
      process.exit(EXIT_CODES.OK);
    }),
});
