// `msgbus ack <topic> <id>`: a leased message is done (taken with `get --lease` or by `on`).

import { defineCommand } from "citty";
import { parseWholeNumber } from "../core/numbers.ts";
import { connectionArgs, countOption, topicArg } from "./_args.ts";
import { connectFromArgs } from "./_connect.ts";
import { guarded, usage } from "./_exit.ts";

export const leaseArgs = {
  topic: { type: "positional" as const, required: false, description: "the message's topic" },
  id: { type: "positional" as const, required: false, description: "the message's id (printed by `get --lease --json`)" },
  delivery: {
    type: "string" as const,
    valueHint: "n",
    description: 'only if this is still delivery n (its "deliveries"): refuses to settle a lease that expired and was handed to someone else',
  },
};

/** The message a lease command names: topic, id and the optional delivery guard. */
export function leaseTarget(name: string, args: Record<string, unknown>): { topic: string; id: number; delivery: number | undefined } {
  const topic = topicArg(args, name, `msgbus ${name} <topic> <id>`);
  const id = args.id === undefined ? undefined : parseWholeNumber(String(args.id));
  if (id === undefined || id < 1) throw usage(`${name} needs the message's id, a whole number of at least 1 (usage: msgbus ${name} <topic> <id>)`);
  return { topic, id, delivery: countOption(args.delivery, "delivery") };
}

export default defineCommand({
  meta: { name: "ack", description: "Acknowledge a leased message: it is done (exit code 8: no such lease)" },
  args: { ...leaseArgs, ...connectionArgs },
  run: ({ args }) =>
    guarded(async () => {
      const { topic, id, delivery } = leaseTarget("ack", args);
      const { client } = await connectFromArgs(args);
      await client.ack(topic, id, delivery);
      await client.close();
    }),
});
