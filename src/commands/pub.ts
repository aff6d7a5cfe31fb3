// `msgbus pub <topic> [message…]`: the msgbus name for a broadcast write. It is the same write as
// `put` (every subscriber gets it, and it is queued for consumers), so it shares put's code.

import { defineCommand } from "citty";
import { runWrite, writeArgs, type WriteArgs } from "./_write.ts";

export default defineCommand({
  meta: {
    name: "pub",
    description: "Publish a message to a topic (the same write as put)",
  },
  args: writeArgs,
  run: ({ args }) => runWrite("pub", args as WriteArgs),
});
