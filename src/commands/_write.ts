// The write behind `put` and `pub`: one message from the arguments or from stdin (bytes as they
// are), or with --lines one message per stdin line. No citty here: src/cli.ts runs a write of
// plain words (`msgbus put t hello`) without loading the command parser at all.

import type { WriteResult } from "../client/client.ts";
import { writeLines, LONG_LINES, type LongLines } from "./_lines.ts";
import { clientArgs, connectionArgs, countOption, topicArg } from "./_args.ts";
import { connectFromArgs } from "./_connect.ts";
import { guarded, usage } from "./_exit.ts";
import { messageLimit, readStdin, tooLarge, writeStdout } from "./_io.ts";
import { Backoff, connectRetrying, isUnavailable, retryLine } from "./_session.ts";

export const writeArgs = {
  topic: { type: "positional" as const, required: false, description: "topic to write to (1-128 characters: A-Z a-z 0-9 . _ - :)" },
  message: {
    type: "positional" as const,
    required: false,
    description:
      "the message: the remaining arguments joined by spaces (one that starts with - goes after --); without any, the whole of stdin (binary-safe; empty is a valid message), read only up to the message limit. Prints nothing unless --json or --print-id",
  },
  lines: { type: "boolean" as const, description: "each stdin line is its own message (without its newline, or CRLF), sent as it arrives" },
  "long-lines": {
    type: "string" as const,
    valueHint: "skip|truncate|fail",
    description: "with --lines, a line over the message limit: skip it (default) or truncate it, with a warning naming its line number, or fail (exit code 6)",
  },
  buffer: {
    type: "string" as const,
    valueHint: "n",
    description:
      "with --lines, lines read but not yet acknowledged, at most (default 1000); with --reconnect, while the server is away the oldest are dropped past it, with a warning",
  },
  reconnect: {
    type: "boolean" as const,
    description:
      "when the server cannot be reached or goes away, try again (after 1 s, doubling up to 30 s) instead of exiting with code 4; lines not acknowledged are sent again (a line may arrive twice)",
  },
  json: { type: "boolean" as const, description: 'print {"id":N,"topic":"..."} per message written (default: print nothing)' },
  "print-id": { type: "boolean" as const, description: "print the id of each message written, one per line" },
  "max-message-size": clientArgs["max-message-size"]!,
  ...connectionArgs,
};

export type WriteArgs = {
  topic?: string;
  _: string[];
  lines?: boolean;
  json?: boolean;
  "print-id"?: boolean;
  reconnect?: boolean;
  buffer?: string;
  "long-lines"?: string;
} & Record<string, unknown>;

/** The whole write: shared by `put` and `pub` (the same operation under its msgbus name). */
export function runWrite(name: string, args: WriteArgs): Promise<void> {
  return guarded(async () => {
    const topic = topicArg(args, name, `msgbus ${name} <topic> [message…]`);
    const words = args._.slice(1);
    if (args.lines && words.length > 0) throw usage(`${name} --lines reads stdin: give no message arguments`);
    if (!args.lines && (args.buffer !== undefined || args["long-lines"] !== undefined)) throw usage(`--buffer and --long-lines go with --lines`);
    const buffer = countOption(args.buffer, "buffer") ?? DEFAULT_BUFFER;
    const longLines = (args["long-lines"] ?? "skip") as LongLines;
    if (!LONG_LINES.includes(longLines)) throw usage(`--long-lines: expected one of ${LONG_LINES.join(", ")} (got "${longLines}")`);
    const reconnect = Boolean(args.reconnect);
    const print = args.json ? "json" : args["print-id"] ? "id" : undefined;
    const report = async (written: WriteResult) => {
      if (print === "json") await writeStdout(JSON.stringify({ id: written.id, topic: written.topic }) + "\n");
      else if (print === "id") await writeStdout(`${written.id}\n`);
    };
    const warn = (text: string) => process.stderr.write(`msgbus: ${text}\n`);
    const connect = () => connectFromArgs(args);

    if (args.lines) {
      await writeLines({ topic, connect, reconnect, buffer, longLines, report, warn });
      return;
    }

    const backoff = new Backoff();
    let connected = await connectRetrying(connect, reconnect, backoff, warn);
    let payload: Uint8Array;
    if (words.length > 0) {
      payload = new TextEncoder().encode(words.join(" "));
      const max = connected.maxMessageSize;
      if (max !== undefined && payload.length > max) throw tooLarge(`message of ${payload.length} bytes`, { bytes: max, source: "--max-message-size" });
    } else {
      if (process.stdin.isTTY) process.stderr.write("msgbus: reading the message from stdin (end it with Ctrl-D)\n");
      payload = await readStdin(await messageLimit(connected));
    }
    for (;;) {
      try {
        await report(await connected.client.put(topic, payload));
        break;
      } catch (error) {
        if (!reconnect || !isUnavailable(error)) throw error;
        // Lost before the reply: written or not, it is sent again (at-least-once).
        await connected.client.close();
        warn(retryLine(error, backoff));
        await backoff.wait();
        connected = await connectRetrying(connect, reconnect, backoff, warn);
      }
    }
    await connected.client.close();
  });
}

/** --buffer's default: lines read but not yet acknowledged. */
const DEFAULT_BUFFER = 1000;
