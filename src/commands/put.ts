// `msgbus put <topic> [message…]`: write one message from the arguments or from stdin (bytes as
// they are), or with --lines one message per stdin line, streamed while the pipe stays open.

import { defineCommand } from "citty";
import { BusError } from "../core/errors.ts";
import type { Client, WriteResult } from "../client/client.ts";
import { connectionArgs, connectFromArgs, guarded, readStdin, stdinChunks, topicArg, usage, writeStdout } from "./_shared.ts";

/** Lines written but not yet acknowledged, at most (they are pipelined). */
const LINES_IN_FLIGHT = 1000;

export const writeArgs = {
  topic: { type: "positional" as const, required: false, description: "topic to write to (1-128 characters: A-Z a-z 0-9 . _ - :)" },
  message: {
    type: "positional" as const,
    required: false,
    description: "the message: the remaining arguments joined by spaces; without any, the whole of stdin (binary-safe; empty is a valid message). Prints nothing unless --json or --print-id",
  },
  lines: { type: "boolean" as const, description: "each stdin line is its own message (without its newline, or CRLF), sent as it arrives" },
  json: { type: "boolean" as const, description: 'print {"id":N,"topic":"..."} per message written (default: print nothing)' },
  "print-id": { type: "boolean" as const, description: "print the id of each message written, one per line" },
  ...connectionArgs,
};

type WriteArgs = { topic?: string; _: string[]; lines?: boolean; json?: boolean; "print-id"?: boolean } & Record<string, unknown>;

/** The whole write: shared by `put` and `pub` (the same operation under its msgbus name). */
export function runWrite(name: string, args: WriteArgs): Promise<void> {
  return guarded(async () => {
    const topic = topicArg(args, name, `msgbus ${name} <topic> [message…]`);
    const words = args._.slice(1);
    if (args.lines && words.length > 0) throw usage(`${name} --lines reads stdin: give no message arguments`);
    const print = args.json ? "json" : args["print-id"] ? "id" : undefined;
    const report = async (written: WriteResult) => {
      if (print === "json") await writeStdout(JSON.stringify({ id: written.id, topic: written.topic }) + "\n");
      else if (print === "id") await writeStdout(`${written.id}\n`);
    };

    if (args.lines) {
      const { client, maxMessageSize } = await connectFromArgs(args);
      await writeLines(client, topic, maxMessageSize, report);
      await client.close();
      return;
    }

    const { client, maxMessageSize } = await connectFromArgs(args);
    let payload: Uint8Array;
    if (words.length > 0) {
      payload = new TextEncoder().encode(words.join(" "));
    } else {
      if (process.stdin.isTTY) process.stderr.write("msgbus: reading the message from stdin (end it with Ctrl-D)\n");
      payload = await readStdin(maxMessageSize);
    }
    checkSize(payload, maxMessageSize);
    await report(await client.put(topic, payload));
    await client.close();
  });
}

function checkSize(payload: Uint8Array, max: number | undefined): void {
  if (max !== undefined && payload.length > max) {
    throw new BusError("TOO_LARGE", `message of ${payload.length} bytes is larger than the limit of ${max} bytes`);
  }
}

/** Streams stdin line by line: each complete line is written at once, pipelined, in order. */
async function writeLines(client: Client, topic: string, maxMessageSize: number | undefined, report: (w: WriteResult) => Promise<void>): Promise<void> {
  // Replies come in order, so the oldest entry is always the next to be acknowledged.
  const inFlight: { written: Promise<WriteResult>; settled: boolean }[] = [];
  let failure: unknown;
  const reportOldest = async () => report(await inFlight.shift()!.written);
  const send = async (line: Uint8Array) => {
    if (line.length > 0 && line[line.length - 1] === 13) line = line.subarray(0, line.length - 1);
    checkSize(line, maxMessageSize);
    const entry = { written: client.put(topic, line.slice()), settled: false };
    entry.written.then(
      () => (entry.settled = true),
      (error: unknown) => {
        entry.settled = true;
        failure ??= error;
      },
    );
    inFlight.push(entry);
    if (inFlight.length >= LINES_IN_FLIGHT) await reportOldest();
    if (failure) throw failure;
  };
  let rest: Uint8Array = new Uint8Array(0);
  for await (const chunk of stdinChunks()) {
    let data: Uint8Array = chunk;
    if (rest.length > 0) {
      data = new Uint8Array(rest.length + chunk.length);
      data.set(rest);
      data.set(chunk, rest.length);
    }
    let start = 0;
    for (let nl = data.indexOf(10, start); nl >= 0; nl = data.indexOf(10, start)) {
      await send(data.subarray(start, nl));
      start = nl + 1;
    }
    rest = data.slice(start);
    // A line longer than any message can be refused before its end arrives.
    if (maxMessageSize !== undefined && rest.length > maxMessageSize + 1) checkSize(rest, maxMessageSize);
    // Report what is acknowledged so far, so --print-id keeps pace with a live pipe.
    while (inFlight.length > 0 && inFlight[0]!.settled) await reportOldest();
  }
  if (rest.length > 0) await send(rest);
  while (inFlight.length > 0) await reportOldest();
  if (failure) throw failure;
}

export default defineCommand({
  meta: {
    name: "put",
    description: "Write a message to a topic: the arguments, else stdin (--lines: one message per line)",
  },
  args: writeArgs,
  run: ({ args }) => runWrite("put", args as WriteArgs),
});
