// `msgbus put <topic> [message…]`: write one message from the arguments or from stdin (bytes as
// they are), or with --lines one message per stdin line, streamed while the pipe stays open.

import { defineCommand } from "citty";
import { runWrite, writeArgs, type WriteArgs } from "./_write.ts";

export default defineCommand({
  meta: {
    name: "put",
    description: "Write a message to a topic: the arguments, else stdin (--lines: one message per line)",
  },
  args: writeArgs,
  run: ({ args }) => runWrite("put", args as WriteArgs),
});
