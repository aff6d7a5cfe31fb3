// `msgbus get <topic> [file]`: take one message and write its payload to stdout (bytes as they
// are, nothing else) or into the file. No message: exit code 3 and no output, so that
// `while msgbus get q > f; do …; done` works.

import { accessSync, constants } from "node:fs";
import { dirname, resolve } from "node:path";
import { defineCommand, parseArgs } from "citty";
import { parseDuration } from "../config.ts";
import {
  EXIT_CODES,
  connectionArgs,
  connectFromArgs,
  countOption,
  durationOption,
  guarded,
  messageJson,
  outputArgs,
  topicArg,
  usage,
  writeStdout,
} from "./_shared.ts";

const getArgs = {
  topic: { type: "positional" as const, required: false, description: "topic to take a message from" },
  file: { type: "positional" as const, required: false, description: "write the payload into this file (only when a message was taken) instead of stdout" },
  wait: {
    type: "string" as const,
    valueHint: "duration",
    description: "wait for a message up to this long (500ms, 30s, 5m; a plain number is seconds); without a value or 0: forever. Give the file before --wait",
  },
  lease: {
    type: "string" as const,
    valueHint: "duration",
    description: "at-least-once: the message stays hidden this long and comes back unless acked (`msgbus ack <topic> <id>`; --json shows id and deliveries)",
  },
  "max-deliveries": { type: "string" as const, valueHint: "n", description: "with --lease: after n deliveries a returned message goes to <topic>.dead (MSGBUS_MAX_DELIVERIES; default: the server's, 5)" },
  ...outputArgs,
  ...connectionArgs,
};

/** `--wait` takes an optional value: a following argument that is not a duration is not its value. */
export function normalizeArgs(rawArgs: string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < rawArgs.length; i++) {
    const arg = rawArgs[i]!;
    if (arg === "--") {
      out.push(...rawArgs.slice(i));
      break;
    }
    if (arg !== "--wait") {
      out.push(arg);
      continue;
    }
    const next = rawArgs[i + 1];
    if (next !== undefined && parseDuration(next) !== undefined) {
      out.push(`--wait=${next}`);
      i++;
    } else {
      out.push("--wait=");
    }
  }
  return out;
}

export default defineCommand({
  meta: {
    name: "get",
    description: "Take one message from a topic to stdout or a file; exit code 3 when there is none",
  },
  args: getArgs,
  run: ({ rawArgs }) =>
    guarded(async () => {
      const args = parseArgs(normalizeArgs(rawArgs), getArgs) as Record<string, unknown> & { _: string[] };
      const topic = topicArg(args, "get", "msgbus get <topic> [file] [--wait [duration]] [--lease duration]");
      if (args._.length > 2) throw usage(`get takes a topic and at most one file (got ${args._.length} arguments)`);
      const file = typeof args.file === "string" ? resolve(args.file) : undefined;
      const wait = args.wait === undefined ? undefined : args.wait === "" ? 0 : durationOption(args.wait, "wait");
      const lease = durationOption(args.lease, "lease");
      if (countOption(args["max-deliveries"], "max-deliveries") !== undefined && lease === undefined) {
        throw usage("--max-deliveries needs --lease (without a lease a message is delivered once)");
      }
      if (file) {
        try {
          accessSync(dirname(file), constants.W_OK);
        } catch {
          throw usage(`cannot write ${file}: its directory does not exist or is not writable`);
        }
      }

      const connected = await connectFromArgs(args);
      const client = connected.client;
      const maxDeliveries = lease === undefined ? undefined : connected.maxDeliveries;
      const message = await client.get(topic, { wait, lease, maxDeliveries });
      if (!message) {
        await client.close();
        if (process.stderr.isTTY) process.stderr.write(`msgbus: no message in ${topic}\n`);
        process.exit(EXIT_CODES.NO_MESSAGE);
      }
      try {
        if (file) await Bun.write(file, message.payload);
        else await writeStdout(args.json ? messageJson(message) + "\n" : message.payload);
      } catch (error) {
        // A leased message can go back at once; an at-most-once one is gone with this error.
        if (lease !== undefined) await client.nack(topic, message.id, { delivery: message.deliveries }).catch(() => {});
        const what = lease !== undefined ? "it goes back to the topic" : "it was taken and is lost (use --lease to be safe)";
        const reason = error instanceof Error ? error.message : String(error);
        throw Object.assign(new Error(`could not write message ${message.id} of ${topic}: ${reason}; ${what}`), { code: (error as { code?: string }).code ?? "EIO" });
      }
      if (lease !== undefined && process.stderr.isTTY) {
        process.stderr.write(`msgbus: message ${message.id} leased for ${lease} ms; done: msgbus ack ${topic} ${message.id} --delivery ${message.deliveries}\n`);
      }
      await client.close();
      process.exit(0);
    }),
});
