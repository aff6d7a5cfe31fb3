// `msgbus purge <topic>`: drop every queued (and delayed) message of a topic; the topic stays and
// leased messages stay with their consumers. Asks first on a terminal, unless --yes.

import { defineCommand } from "citty";
import { isBusError } from "../core/errors.ts";
import { connectionArgs, topicArg } from "./_args.ts";
import { yesArg, confirmed } from "./_confirm.ts";
import { connectFromArgs } from "./_connect.ts";
import { guarded, usage } from "./_exit.ts";
import { writeStdout } from "./_io.ts";

export default defineCommand({
  meta: {
    name: "purge",
    description: "Drop every queued message of a topic (asks first on a terminal, unless --yes); the topic stays",
  },
  args: {
    topic: { type: "positional" as const, required: false, description: "topic to purge" },
    ...yesArg,
    json: { type: "boolean" as const, description: 'print {"topic":…,"purged":N}' },
    ...connectionArgs,
  },
  run: ({ args }) =>
    guarded(async () => {
      const topic = topicArg(args, "purge", "msgbus purge <topic> [--yes]");
      if (args._.length > 1) throw usage("purge takes one topic");
      const { client } = await connectFromArgs(args);
      if (!args.yes && process.stdin.isTTY) {
        const held = await client.topicStats(topic).catch((error: unknown) => {
          if (isBusError(error) && error.code === "NOT_FOUND") return undefined;
          throw error;
        });
        const count = held ? held.depth + held.delayed : 0;
        if (!(await confirmed(`Drop the ${count} message${count === 1 ? "" : "s"} queued in ${topic}?`, false))) {
          await client.close();
          process.stderr.write("msgbus: nothing purged\n");
          process.exit(1);
        }
      }
      const purged = await client.purge(topic);
      await client.close();
      await writeStdout(args.json ? JSON.stringify({ topic, purged }) + "\n" : `purged ${purged} message${purged === 1 ? "" : "s"} from ${topic}\n`);
      process.exit(0);
    }),
});
