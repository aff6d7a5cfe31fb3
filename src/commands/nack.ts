// `msgbus nack <topic> <id>`: give a leased message back (after --delay), with its delivery count
// raised; past its maximum it goes to <topic>.dead.

import { defineCommand } from "citty";
import { connectionArgs, durationOption } from "./_args.ts";
import { connectFromArgs } from "./_connect.ts";
import { guarded } from "./_exit.ts";
import { leaseArgs, leaseTarget } from "./ack.ts";

export default defineCommand({
  meta: { name: "nack", description: "Give a leased message back to be delivered again (exit code 8: no such lease)" },
  args: {
    ...leaseArgs,
    delay: { type: "string" as const, valueHint: "duration", description: "hold it back this long before it can be delivered again (500ms, 30s, 5m)" },
    ...connectionArgs,
  },
  run: ({ args }) =>
    guarded(async () => {
      const { topic, id, delivery } = leaseTarget("nack", args);
      const delay = durationOption(args.delay, "delay");
      const { client } = await connectFromArgs(args);
      await client.nack(topic, id, { delay, delivery });
      await client.close();
    }),
});
