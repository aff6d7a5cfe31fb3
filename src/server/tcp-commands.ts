// The RESP command table and runCommand, the one place that checks what the table declares: a
// command's arity and the modes it is allowed in (before AUTH, subscribed in RESP2, consuming),
// as Redis's command table does. The handlers are in native-commands and redis-commands.

import { BusError, isBusError } from "../core/errors.ts";
import { respError } from "../protocol/resp-errors.ts";
import { type RespCommand, hashUpper } from "../protocol/resp-parser.ts";
import { logFor } from "../log.ts";
import type { Need } from "./auth.ts";
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
  readonly needs: Needs;
}

const ANY = Infinity;

/** Which arguments are topics: the first after the name, all of them, all but the last (BLPOP's timeout). */
const FIRST = 1;
const ALL = 2;
const KEYS = 3;

/**
 * The right a command needs (auth.ts: read, write, take, admin) on which of its arguments; null:
 * any accepted token (TOPICS lists only what the token may read; the connection's own commands).
 */
type Needs = readonly [Need, typeof FIRST | typeof ALL | typeof KEYS] | null;

/**
 * name, fewest and most arguments (with the name), modes allowed beyond the normal one, the right
 * it needs, handler.
 * The order is the order a refusal in a mode lists what that mode allows.
 */
const COMMANDS: [string, number, number, number, Needs, Handler][] = [
  ["SUBSCRIBE", 2, ANY, SUBSCRIBED, ["read", ALL], redis.subscribe],
  ["UNSUBSCRIBE", 1, ANY, SUBSCRIBED, null, redis.unsubscribe],
  ["SUB", 2, ANY, SUBSCRIBED, ["read", FIRST], native.sub],
  ["UNSUB", 2, 2, SUBSCRIBED, null, native.unsub],
  ["ACK", 3, ANY, CONSUMING, ["take", FIRST], native.ack],
  ["NACK", 3, ANY, CONSUMING, ["take", FIRST], native.nack],
  ["TOUCH", 3, ANY, CONSUMING, ["take", FIRST], native.touch],
  ["ON", 2, ANY, CONSUMING, ["take", FIRST], native.on],
  ["OFF", 2, 2, CONSUMING, null, native.off],
  ["PING", 1, 2, BEFORE_AUTH | SUBSCRIBED | CONSUMING, null, native.ping],
  ["QUIT", 1, ANY, BEFORE_AUTH | SUBSCRIBED | CONSUMING, null, native.quit],
  ["RESET", 1, ANY, SUBSCRIBED, null, native.reset],
  ["AUTH", 2, 3, BEFORE_AUTH, null, native.auth],
  ["HELLO", 1, ANY, BEFORE_AUTH, null, native.hello],
  ["PUT", 3, ANY, 0, ["write", FIRST], native.put],
  ["PUB", 3, ANY, 0, ["write", FIRST], native.put],
  ["GET", 2, ANY, 0, ["take", FIRST], native.get],
  ["PEEK", 2, 6, 0, ["read", FIRST], native.peek],
  ["STATS", 1, 2, 0, ["read", FIRST], native.stats],
  ["TOPICS", 1, 1, 0, null, native.topics],
  ["PURGE", 2, 2, 0, ["admin", FIRST], native.purge],
  ["RM", 2, 2, 0, ["admin", FIRST], native.rm],
  ["DEL", 2, ANY, 0, ["admin", ALL], redis.del],
  ["LPUSH", 3, ANY, 0, ["write", FIRST], redis.push],
  ["RPUSH", 3, ANY, 0, ["write", FIRST], redis.push],
  ["LPOP", 2, 3, 0, ["take", FIRST], redis.pop],
  ["RPOP", 2, 3, 0, ["take", FIRST], redis.pop],
  ["BLPOP", 3, ANY, 0, ["take", KEYS], redis.blockingPop],
  ["BRPOP", 3, ANY, 0, ["take", KEYS], redis.blockingPop],
  ["LLEN", 2, 2, 0, ["read", FIRST], redis.llen],
  ["PUBLISH", 3, 3, 0, ["write", FIRST], redis.publish],
  ["ECHO", 2, 2, 0, null, redis.echo],
  ["COMMAND", 1, ANY, 0, null, (c, cmd) => redis.command(c, cmd, COMMANDS.length)],
  ["CONFIG", 2, ANY, 0, null, redis.config],
  ["INFO", 1, ANY, 0, null, redis.info],
  ["CLIENT", 1, ANY, 0, null, redis.ok],
  ["SELECT", 1, ANY, 0, null, redis.ok],
];

/** Entries by the hash of their name: a command is found from its bytes, without decoding them. */
const TABLE = new Map<number, Entry[]>();
for (const [name, min, max, modes, needs, handler] of COMMANDS) {
  const h = hashUpper(name);
  const list = TABLE.get(h) ?? [];
  list.push({ name, handler, min, max, modes, needs });
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
    if (!(entry.modes & BEFORE_AUTH) && c.ctx.auth.required) checkRights(c, entry, cmd);
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

/**
 * The token's rights, looked up per command (a reload applies to the next one): -NOAUTH before AUTH
 * or once the token is no longer accepted, -NOPERM for a topic outside the token's rights.
 */
function checkRights(c: Connection, entry: Entry, cmd: RespCommand): void {
  const auth = c.ctx.auth;
  if (!c.authenticated || !auth.accepts(c.principal)) {
    const revoked = c.principal;
    c.authenticated = false;
    c.principal = undefined;
    if (revoked) auth.refused(c.remote, "tcp", revoked);
    throw new BusError("UNAUTHORIZED", revoked ? "the token is no longer accepted: AUTH again" : "Authentication required.");
  }
  if (!entry.needs) return;
  const [need, which] = entry.needs;
  const last = which === FIRST ? Math.min(2, cmd.count) : which === ALL ? cmd.count : cmd.count - 1;
  for (let i = 1; i < last; i++) auth.rights(c.principal, cmd.text(i), need);
}

/** The entry found last: a connection usually sends the same command again and again. */
let lastFound: Entry | undefined;

/** Finds a command by its name's bytes, without decoding them. */
function lookup(cmd: RespCommand): Entry | undefined {
  if (cmd.count === 0) return undefined;
  if (lastFound !== undefined && cmd.is(0, lastFound.name)) return lastFound;
  const candidates = TABLE.get(cmd.hashUpper(0));
  if (!candidates) return undefined;
  for (const entry of candidates) {
    if (cmd.is(0, entry.name)) {
      lastFound = entry;
      return entry;
    }
  }
  return undefined;
}
