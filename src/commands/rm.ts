// `msgbus rm <topic>`: delete a topic with every message it holds (queued, delayed and leased).
// Refused while it has subscribers or consumers. Asks first on a terminal, unless --yes.

import { defineCommand } from "citty";
import { connectionArgs, topicArg } from "./_args.ts";
import { yesArg, confirmed } from "./_confirm.ts";
import { connectFromArgs } from "./_connect.ts";
import { guarded, usage } from "./_exit.ts";
import { writeStdout } from "./_io.ts";

export default defineCommand({
  meta: {
    name: "rm",
    description: "Delete a topic and every message it holds (asks first on a terminal, unless --yes); exit code 2 when there is no such topic",
  },
  args: {
    topic: { type: "positional" as const, required: false, description: "topic to delete" },
    ...yesArg,
    json: { type: "boolean" as const, description: 'print {"topic":…,"deleted":true,"dropped":N}' },
    ...connectionArgs,
  },
  run: ({ args }) =>
    guarded(async () => {
      const topic = topicArg(args, "rm", "msgbus rm <topic> [--yes]");
      if (args._.length > 1) throw usage("rm takes one topic");
      const { client } = await connectFromArgs(args);
      if (!args.yes && process.stdin.isTTY) {
        const held = await client.topicStats(topic); // NOT_FOUND: exit 2 before asking
        const count = held.depth + held.inflight + held.delayed;
        if (!(await confirmed(`Delete topic ${topic} and the ${count} message${count === 1 ? "" : "s"} it holds?`, false))) {
          await client.close();
          process.stderr.write("msgbus: nothing deleted\n");
          process.exit(1);
        }
      }
      const dropped = await client.deleteTopic(topic);
      await client.close();
      await writeStdout(
        args.json ? JSON.stringify({ topic, deleted: true, dropped }) + "\n" : `deleted ${topic} (${dropped} message${dropped === 1 ? "" : "s"} dropped)\n`,
      );
      process.exit(0);
    }),
});
