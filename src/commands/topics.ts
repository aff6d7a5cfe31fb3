// `msgbus topics`: every topic with its depth, bytes, leases, subscribers, consumers and rates, as a
// table for a person, `--json` for a program, `--names` one name per line for a shell loop.

import { defineCommand } from "citty";
import { connectionArgs } from "./_args.ts";
import { connectFromArgs } from "./_connect.ts";
import { guarded, usage } from "./_exit.ts";
import { writeStdout } from "./_io.ts";
import { topicTable } from "./_table.ts";

export default defineCommand({
  meta: {
    name: "topics",
    description: "List the topics: depth, bytes, in flight, subscribers, consumers, rate in and out (messages/s)",
  },
  args: {
    json: {
      type: "boolean" as const,
      description: "one JSON array of every topic's counters (name, depth, inflight, delayed, bytes, lastId, subscribers, consumers, rateIn, rateOut, …)",
    },
    names: { type: "boolean" as const, description: "only the names, one per line" },
    ...connectionArgs,
  },
  run: ({ args }) =>
    guarded(async () => {
      if (args._.length > 0) throw usage(`topics takes no arguments (got "${args._[0]}"; for one topic: msgbus stats <topic>)`);
      if (args.json && args.names) throw usage("--json and --names exclude each other");
      const { client } = await connectFromArgs(args);
      const topics = await client.topics();
      await client.close();
      if (args.json) await writeStdout(JSON.stringify(topics) + "\n");
      else if (args.names) await writeStdout(topics.map((t) => `${t.name}\n`).join(""));
      else if (topics.length === 0) process.stderr.write("msgbus: no topics\n");
      else await writeStdout(topicTable(topics));
      process.exit(0);
    }),
});
