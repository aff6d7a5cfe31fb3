// `msgbus peek <topic>`: look at the queued messages without taking them (RESP PEEK, HTTP ?peek):
// one line per message for a person, or with --json one envelope per line, exact for any payload.

import { defineCommand } from "citty";
import { DEFAULT_PEEK, MAX_PEEK } from "../core/bus.ts";
import { connectionArgs, countOption, topicArg } from "./_args.ts";
import { connectFromArgs } from "./_connect.ts";
import { guarded, usage } from "./_exit.ts";
import { messageJson, writeStdout } from "./_io.ts";
import { formatTime, payloadPreview, stdoutIsTerminal, table } from "./_table.ts";

/** The preview's width when stdout is not a terminal (a terminal's own width otherwise). */
const PIPE_WIDTH = 200;

export default defineCommand({
  meta: {
    name: "peek",
    description: "Look at the queued messages of a topic, oldest id first, without taking them",
  },
  args: {
    topic: { type: "positional" as const, required: false, description: "topic to look at" },
    count: { type: "string" as const, alias: "n", valueHint: "n", description: `at most this many messages (default ${DEFAULT_PEEK}, at most ${MAX_PEEK})` },
    since: { type: "string" as const, valueHint: "id", description: "only messages with an id greater than this" },
    json: {
      type: "boolean" as const,
      description: 'one JSON object per line and message: id, topic, created, deliveries, payload (base64 with "encoding":"base64" when not UTF-8)',
    },
    ...connectionArgs,
  },
  run: ({ args }) =>
    guarded(async () => {
      const topic = topicArg(args, "peek", "msgbus peek <topic> [-n count] [--since id] [--json]");
      if (args._.length > 1) throw usage("peek takes one topic");
      const count = countOption(args.count, "count");
      if (count !== undefined && count > MAX_PEEK) throw usage(`--count: at most ${MAX_PEEK}`);
      const since = countOption(args.since, "since", 0);
      const { client } = await connectFromArgs(args);
      const messages = await client.peek(topic, { count, since });
      await client.close();
      if (args.json) {
        await writeStdout(messages.map((m) => messageJson(m) + "\n").join(""));
      } else if (messages.length === 0) {
        process.stderr.write(`msgbus: nothing queued in ${topic}\n`);
      } else {
        const rows = messages.map((m) => [String(m.id), formatTime(m.created), String(m.deliveries), String(m.payload.length), m.payload]);
        const fixed = table(
          ["ID", "CREATED", "DELIVERED", "SIZE"],
          rows.map((r) => r.slice(0, 4) as string[]),
          [true, false, true, true],
        ).split("\n");
        const width = Math.max(20, (stdoutIsTerminal() ? process.stdout.columns || 100 : PIPE_WIDTH + fixed[0]!.length + 2) - fixed[0]!.length - 2);
        const lines = [`${fixed[0]}  PAYLOAD`, ...rows.map((r, i) => `${fixed[i + 1]}  ${payloadPreview(r[4] as Uint8Array, width)}`)];
        await writeStdout(lines.join("\n") + "\n");
      }
      process.exit(0);
    }),
});
