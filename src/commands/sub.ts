// `msgbus sub <topic> [-- command…]`: every message written to the topic from now on (fan-out,
// at-most-once), printed or handed to a command, one at a time and in order.

import { defineCommand } from "citty";
import { BusError } from "../core/errors.ts";
import type { ReceivedMessage, Stream } from "../client/client.ts";
import {
  EXIT_CODES,
  checkRunnable,
  connectionArgs,
  commandAfterDashes,
  connectFromArgs,
  countOption,
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

/** Messages received but not yet printed or handled, at most; past it we cannot keep up. */
const MAX_BEHIND = 10000;

export default defineCommand({
  meta: {
    name: "sub",
    description: "Subscribe to a topic: print every message written from now on, or run a command per message (at-most-once)",
  },
  args: {
    topic: { type: "positional" as const, required: false, description: "topic to subscribe to" },
    "-- command": {
      type: "positional" as const,
      required: false,
      description:
        "run per message, one at a time and in order: payload on stdin; MSGBUS_ID, MSGBUS_TOPIC, MSGBUS_DELIVERY, MSGBUS_CREATED in the environment. " +
        "Without it, each payload is printed, a newline added unless it ends with one. Nothing is acked. Exit code 4 when the server goes away, 10 when this cannot keep up",
    },
    since: { type: "string" as const, valueHint: "id", description: "first replay the messages still queued with an id greater than this, then continue live" },
    ...outputArgs,
    ...connectionArgs,
  },
  run: ({ args, rawArgs }) =>
    guarded(async () => {
      const command = commandAfterDashes(rawArgs);
      const topic = topicArg(args, "sub", "msgbus sub <topic> [-- command…]");
      if (args._.length - (command?.length ?? 0) > 1) throw usage("sub takes one topic; put the command to run after --");
      const since = countOption(args.since, "since", 0);
      if (command) checkRunnable(command);

      const { client, url, token } = await connectFromArgs(args);
      const handlerEnv: Record<string, string> = { MSGBUS_URL: url, ...(token ? { MSGBUS_TOKEN: token } : {}) };
      const behind: ReceivedMessage[] = [];
      let current: HandlerRun | undefined;
      let busy = false;
      let stopping = false;
      let stream: Stream | undefined;

      const handle = async (m: ReceivedMessage) => {
        if (!command) {
          await writeStdout(messageOutput(m, Boolean(args.json)));
          return;
        }
        current = runHandler(command, m, { env: handlerEnv });
        const result = await current.exited;
        current = undefined;
        if (result.error) process.stderr.write(`msgbus: ${result.error}\n`);
        else if (result.code !== 0) process.stderr.write(`msgbus: handler exited with code ${result.code} for message ${m.id} of ${topic}\n`);
      };

      function next() {
        if (busy) return;
        if (stopping) {
          stream?.close();
          return;
        }
        const m = behind.shift();
        if (!m) return;
        busy = true;
        handle(m).then(
          () => {
            busy = false;
            next();
          },
          () => {
            // stdout is closed (`msgbus sub t | head -1`): nothing more to do.
            busy = false;
            stopping = true;
            next();
          },
        );
      }

      onStopSignals(
        () => {
          stopping = true;
          next();
        },
        () => {
          current?.kill("SIGKILL");
          process.exit(130);
        },
      );

      stream = await client.subscribe(topic, { since }, (m) => {
        if (behind.length >= MAX_BEHIND) {
          throw new BusError("SLOW_CONSUMER", `cannot keep up with ${topic}: ${behind.length} messages waiting to be ${command ? "handled" : "printed"}`);
        }
        behind.push(m);
        next();
      });
      next();
      try {
        await stream.done;
      } catch (error) {
        current?.kill("SIGTERM");
        throw error;
      }
      await client.close();
      process.exit(EXIT_CODES.OK);
    }),
});
