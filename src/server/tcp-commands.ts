// The RESP command table and runCommand, the one place that checks what the table declares: a
// command's arity and the modes it is allowed in (before AUTH, subscribed in RESP2, consuming),
// as Redis's command table does. The handlers are in native-commands and redis-commands.

import { BusError, isBusError } from "../core/errors.ts";
import { respError } from "../protocol/resp-errors.ts";
import { type RespCommand, hashUpper } from "../protocol/resp-parser.ts";
import { logFor } from "../log.ts";
import * as native from "./native-commands.ts";
import * as redis from "./redis-commands.ts";
import type { Connection } from "./tcp.ts";

const tcpLog = logFor("tcp");

type Handler = (c: Connection, cmd: RespCommand) => void;

/** Allowed before AUTH. */
const BEFORE_AUTH = 1;
/** Allowed while subscribed on a RESP2 connection (RESP3 connections may send anything). */
const SUBSCRIBED = 2;
/** Allowed while consuming with ON: its acks and more ONs. */
const CONSUMING = 4;

interface Entry {
  /** Upper case, as matched. */
  readonly name: string;
  readonly handler: Handler;
  /** Fewest and most arguments, the command's name included (Redis counts it too). */
  readonly min: number;
  readonly max: number;
  /** BEFORE_AUTH | SUBSCRIBED | CONSUMING. */
  readonly modes: number;
}

const ANY = Infinity;

/**
 * name, fewest and most arguments (with the name), modes allowed beyond the normal one, handler.
 * The order is the order a refusal in a mode lists what that mode allows.
 */
const COMMANDS: [string, number, number, number, Handler][] = [
  ["SUBSCRIBE", 2, ANY, SUBSCRIBED, redis.subscribe],
  ["UNSUBSCRIBE", 1, ANY, SUBSCRIBED, redis.unsubscribe],
  ["SUB", 2, ANY, SUBSCRIBED, native.sub],
  ["UNSUB", 2, 2, SUBSCRIBED, native.unsub],
  ["ACK", 3, ANY, CONSUMING, native.ack],
  ["NACK", 3, ANY, CONSUMING, native.nack],
  ["TOUCH", 3, ANY, CONSUMING, native.touch],
  ["ON", 2, ANY, CONSUMING, native.on],
  ["OFF", 2, 2, CONSUMING, native.off],
  ["PING", 1, 2, BEFORE_AUTH | SUBSCRIBED | CONSUMING, native.ping],
  ["QUIT", 1, ANY, BEFORE_AUTH | SUBSCRIBED | CONSUMING, native.quit],
  ["RESET", 1, ANY, SUBSCRIBED, native.reset],
  ["AUTH", 2, 3, BEFORE_AUTH, native.auth],
  ["HELLO", 1, ANY, BEFORE_AUTH, native.hello],
  ["PUT", 3, ANY, 0, native.put],
  ["PUB", 3, ANY, 0, native.put],
  ["GET", 2, ANY, 0, native.get],
  ["PEEK", 2, 6, 0, native.peek],
  ["STATS", 1, 2, 0, native.stats],
  ["TOPICS", 1, 1, 0, native.topics],
  ["PURGE", 2, 2, 0, native.purge],
  ["RM", 2, 2, 0, native.rm],
  ["DEL", 2, ANY, 0, redis.del],
  ["LPUSH", 3, ANY, 0, redis.push],
  ["RPUSH", 3, ANY, 0, redis.push],
  ["LPOP", 2, 3, 0, redis.pop],
  ["RPOP", 2, 3, 0, redis.pop],
  ["BLPOP", 3, ANY, 0, redis.blockingPop],
  ["BRPOP", 3, ANY, 0, redis.blockingPop],
  ["LLEN", 2, 2, 0, redis.llen],
  ["PUBLISH", 3, 3, 0, redis.publish],
  ["ECHO", 2, 2, 0, redis.echo],
  ["COMMAND", 1, ANY, 0, (c, cmd) => redis.command(c, cmd, COMMANDS.length)],
  ["CONFIG", 2, ANY, 0, redis.config],
  ["INFO", 1, ANY, 0, redis.info],
  ["CLIENT", 1, ANY, 0, redis.ok],
  ["SELECT", 1, ANY, 0, redis.ok],
];

/** Entries by the hash of their name: a command is found from its bytes, without decoding them. */
const TABLE = new Map<number, Entry[]>();
for (const [name, min, max, modes, handler] of COMMANDS) {
  const h = hashUpper(name);
  const list = TABLE.get(h) ?? [];
  list.push({ name, handler, min, max, modes });
  TABLE.set(h, list);
}

/** The commands allowed in a mode, for its refusal (RESET goes unmentioned, as it always has). */
function allowedIn(mode: number): string {
  return COMMANDS.filter(([name, , , modes]) => modes & mode && name !== "RESET")
    .map(([name]) => name)
    .join(" / ");
}
const ALLOWED_SUBSCRIBED = allowedIn(SUBSCRIBED);
const ALLOWED_CONSUMING = allowedIn(CONSUMING);

export function runCommand(c: Connection, cmd: RespCommand): void {
  const entry = lookup(cmd);
  const replyStart = c.out.length;
  try {
    if (!entry) throw new BusError("BAD_REQUEST", `unknown command '${cmd.text(0).slice(0, 64)}'`);
    if (!c.authenticated && !(entry.modes & BEFORE_AUTH)) {
      throw new BusError("UNAUTHORIZED", "Authentication required.");
    }
    if (c.mode !== "normal") {
      if (c.mode === "subscribed" && !c.out.resp3 && !(entry.modes & SUBSCRIBED)) {
        throw new BusError("BAD_REQUEST", `Can't execute '${entry.name.toLowerCase()}': only ${ALLOWED_SUBSCRIBED} are allowed in this context`);
      }
      if (c.mode === "consuming" && !(entry.modes & CONSUMING)) {
        throw new BusError("BAD_REQUEST", `Can't execute '${entry.name.toLowerCase()}': only ${ALLOWED_CONSUMING} are allowed while consuming`);
      }
    }
    if (cmd.count < entry.min || cmd.count > entry.max) {
      throw new BusError("BAD_REQUEST", `wrong number of arguments for '${cmd.text(0).toLowerCase()}' command`);
    }
    entry.handler(c, cmd);
  } catch (error) {
    if (isBusError(error)) {
      c.out.error(respError(error));
    } else {
      // A bug, not the client's mistake: say so in the log, drop any half-written reply and
      // answer, so the connection stays in step and the replies before it still go out.
      tcpLog.error(`internal error running ${entry?.name ?? "a command"}: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
      c.out.truncate(replyStart);
      c.out.error("ERR internal error");
    }
  }
}

/** Finds a command by its name's bytes, without decoding them. */
function lookup(cmd: RespCommand): Entry | undefined {
  if (cmd.count === 0) return undefined;
  const candidates = TABLE.get(cmd.hashUpper(0));
  if (!candidates) return undefined;
  for (const entry of candidates) if (cmd.is(0, entry.name)) return entry;
  return undefined;
}
