// `msgbus sub <topic> [-- command…]`: every message written to the topic from now on (fan-out,
// at-most-once), printed or handed to a command, one at a time and in order.

import { defineCommand, parseArgs } from "citty";
import { BusError } from "../core/errors.ts";
import type { ReceivedMessage } from "../client/client.ts";
import { commandAfterDashes, checkRunnable, dashesBeforeCommand, runHandler, type HandlerRun } from "./_handler.ts";
import { connectFromArgs, handlerEnvironment } from "./_connect.ts";
import { connectionArgs, countOption, outputArgs, reconnectArg, topicArg } from "./_args.ts";
import { EXIT_CODES, guarded, usage } from "./_exit.ts";
import { messageOutput, writeStdout } from "./_io.ts";
import { Session } from "./_session.ts";

/** Messages received but not yet printed or handled, at most; past it we cannot keep up. */
const MAX_BEHIND = 10000;

const subArgs = {
  topic: { type: "positional" as const, required: false, description: "topic to subscribe to" },
  "-- command": {
    type: "positional" as const,
    required: false,
    description:
      "run per message, one at a time and in order (the -- is optional, as in prologic's msgbus: everything after the command's name is its own); payload on stdin; MSGBUS_ID, MSGBUS_TOPIC, MSGBUS_DELIVERY, MSGBUS_CREATED in the environment. " +
      "Without it, each payload is printed, a newline added unless it ends with one. Nothing is acked. Exit code 4 when the server goes away (unless --reconnect: it resumes after the last message seen, from what the topic still holds), 10 when this cannot keep up",
  },
  since: { type: "string" as const, valueHint: "id", description: "first replay the messages still queued with an id greater than this, then continue live" },
  ...reconnectArg,
  ...outputArgs,
  ...connectionArgs,
};

/** `sub <topic> <command> [args…]` (prologic's form) is `sub <topic> -- <command> [args…]`. */
export function normalizeArgs(rawArgs: string[]): string[] {
  return dashesBeforeCommand(rawArgs, subArgs);
}

export default defineCommand({
  meta: {
    name: "sub",
    description: "Subscribe to a topic: print every message written from now on, or run a command per message (at-most-once)",
  },
  args: subArgs,
  run: ({ rawArgs: given }) =>
    guarded(async () => {
      const rawArgs = normalizeArgs(given);
      const args = parseArgs(rawArgs, subArgs) as Record<string, unknown> & { _: string[] };
      const command = commandAfterDashes(rawArgs);
      const topic = topicArg(args, "sub", "msgbus sub <topic> [--] [command…]");
      if (args._.length - (command?.length ?? 0) > 1) throw usage("sub takes one topic; put the command to run after --");
      const since = countOption(args.since, "since", 0);
      if (command) checkRunnable(command);

      const behind: ReceivedMessage[] = [];
      let current: HandlerRun | undefined;
      let busy = false;
      let handlerEnv: Record<string, string> = {};
      let lastSeen = since;
      const warn = (text: string) => process.stderr.write(`msgbus: ${text}\n`);

      const onMessage = (m: ReceivedMessage) => {
        if (behind.length >= MAX_BEHIND) {
          throw new BusError("SLOW_CONSUMER", `cannot keep up with ${topic}: ${behind.length} messages waiting to be ${command ? "handled" : "printed"}`);
        }
        lastSeen = m.id;
        behind.push(m);
        next();
      };

      // One session per connection; with --reconnect, the next one resumes after the last message
      // seen, from what the topic still holds.
      const session: Session = new Session({
        connect: () => connectFromArgs(args),
        open: (connected) => {
          handlerEnv = handlerEnvironment(connected);
          return connected.client.subscribe(topic, { since: lastSeen }, onMessage);
        },
        drain: next,
        busy: () => busy,
        abandon: () => current?.kill("SIGTERM"),
        kill: () => current?.kill("SIGKILL"),
        reconnect: Boolean(args.reconnect),
        warn,
      });

      const handle = async (m: ReceivedMessage) => {
        if (!command) {
          await writeStdout(messageOutput(m, Boolean(args.json)));
          return;
        }
        current = runHandler(command, m, { env: handlerEnv });
        const result = await current.exited;
        current = undefined;
        if (result.error) warn(result.error);
        else if (result.code !== 0) warn(`handler exited with code ${result.code} for message ${m.id} of ${topic}`);
      };

      function next() {
        if (busy) return;
        if (session.stopping) {
          session.drained();
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
            session.stop();
          },
        );
      }

      await session.run();
      process.exit(EXIT_CODES.OK);
    }),
});
