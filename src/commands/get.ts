// `msgbus get <topic> [file]`: take one message and write its payload to stdout (bytes as they
// are, nothing else) or into the file. No message: exit code 3 and no output, so that
// `while msgbus get q > f; do …; done` works.

import { closeSync, constants, existsSync, fstatSync, ftruncateSync, openSync, unlinkSync, writeSync } from "node:fs";
import { resolve } from "node:path";
import { checkLease, checkWait } from "../core/durations.ts";
import { defineCommand, parseArgs } from "citty";
import { parseDuration } from "../config.ts";
import { connectionArgs, countOption, durationOption, outputArgs, topicArg } from "./_args.ts";
import { connectFromArgs } from "./_connect.ts";
import { EXIT_CODES, guarded, usage } from "./_exit.ts";
import { messageJson, writeStdout } from "./_io.ts";

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
  "max-deliveries": {
    type: "string" as const,
    valueHint: "n",
    description: "with --lease: after n deliveries a returned message goes to <topic>.dead (MSGBUS_MAX_DELIVERIES; default: the server's, 5)",
  },
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
    alias: ["pull"],
    description: "Take one message from a topic to stdout or a file; exit code 3 when there is none (pull is the same command)",
  },
  args: getArgs,
  run: ({ rawArgs }) =>
    guarded(async () => {
      const args = parseArgs(normalizeArgs(rawArgs), getArgs) as Record<string, unknown> & { _: string[] };
      const topic = topicArg(args, "get", "msgbus get <topic> [file] [--wait [duration]] [--lease duration]");
      if (args._.length > 2) throw usage(`get takes a topic and at most one file (got ${args._.length} arguments)`);
      const file = typeof args.file === "string" ? resolve(args.file) : undefined;
      const waitOption = args.wait === undefined ? undefined : args.wait === "" ? 0 : durationOption(args.wait, "wait");
      const wait = waitOption === undefined ? undefined : checkWait(waitOption, "--wait");
      const leaseOption = durationOption(args.lease, "lease");
      const lease = leaseOption === undefined ? undefined : checkLease(leaseOption, "--lease");
      if (countOption(args["max-deliveries"], "max-deliveries") !== undefined && lease === undefined) {
        throw usage("--max-deliveries needs --lease (without a lease a message is delivered once)");
      }
      // Open the output before taking anything: a file we cannot write must not cost a message.
      const output = file ? openOutput(file) : undefined;

      const connected = await connectFromArgs(args);
      const client = connected.client;
      const maxDeliveries = lease === undefined ? undefined : connected.maxDeliveries;
      // Without --lease the message is still taken with a lease, acked once written: if writing
      // fails (disk full, stdout closed) it goes back to the topic instead of being lost.
      const message = await client.get(topic, { wait, lease: lease ?? WRITE_LEASE_MS, maxDeliveries });
      if (!message) {
        output?.discard();
        await client.close();
        if (process.stderr.isTTY) process.stderr.write(`msgbus: no message in ${topic}\n`);
        process.exit(EXIT_CODES.NO_MESSAGE);
      }
      try {
        if (output) output.write(message.payload);
        else await writeStdout(args.json ? messageJson(message) + "\n" : message.payload);
      } catch (error) {
        output?.discard();
        const back = await client.nack(topic, message.id, { delivery: message.deliveries }).then(
          () => "it goes back to the topic",
          (nackError: unknown) =>
            `and could not give it back (${nackError instanceof Error ? nackError.message : String(nackError)}): it returns when its lease runs out`,
        );
        const reason = error instanceof Error ? error.message : String(error);
        throw Object.assign(new Error(`could not write message ${message.id} of ${topic}: ${reason}; ${back}`), {
          code: (error as { code?: string }).code ?? "EIO",
        });
      }
      if (lease === undefined) {
        try {
          await client.ack(topic, message.id, message.deliveries);
        } catch (error) {
          // Written, but the server did not hear that: it may deliver the message again.
          process.stderr.write(
            `msgbus: warning: message ${message.id} of ${topic} was written but could not be removed (${error instanceof Error ? error.message : String(error)}); it may be delivered again\n`,
          );
        }
      } else if (!args.json) {
        // stdout is the payload: what `msgbus ack` needs goes to stderr.
        process.stderr.write(
          `msgbus: leased id=${message.id} delivery=${message.deliveries} for ${lease} ms; done: msgbus ack ${topic} ${message.id} --delivery ${message.deliveries}\n`,
        );
      }
      await client.close();
      process.exit(0);
    }),
});

/** How long a plain `get` holds its message while writing it out, before it is acked. */
const WRITE_LEASE_MS = 60000;

interface Output {
  write(payload: Uint8Array): void;
  /** No message, or writing failed: close it, and remove it if we created it. */
  discard(): void;
}

/** Opens (creates) the file without truncating it: it is truncated only once a message is there to write. */
function openOutput(file: string): Output {
  const existed = existsSync(file);
  let fd: number;
  try {
    fd = openSync(file, constants.O_WRONLY | constants.O_CREAT, 0o666);
  } catch (error) {
    const code = (error as { code?: string }).code;
    const why =
      code === "EISDIR"
        ? "it is a directory"
        : code === "ENOENT"
          ? "its directory does not exist"
          : code === "EACCES" || code === "EPERM"
            ? "permission denied"
            : (error as Error).message;
    throw usage(`cannot write ${file}: ${why}`);
  }
  let open = true;
  const close = () => {
    if (open) closeSync(fd);
    open = false;
  };
  return {
    write(payload) {
      if (fstatSync(fd).isFile()) ftruncateSync(fd, 0);
      for (let at = 0; at < payload.length; ) at += writeSync(fd, payload, at, payload.length - at);
      close();
    },
    discard() {
      try {
        close();
      } catch {
        // Nothing was written that could be lost.
      }
      if (!existed) {
        try {
          unlinkSync(file);
        } catch {
          // Already gone.
        }
      }
    },
  };
}
