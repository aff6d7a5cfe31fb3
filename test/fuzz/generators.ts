// Seeded input generators for the fuzzers: RESP commands of the real command set, raw HTTP
// requests, WebSocket frames and CLI argument vectors, each structure-aware first and then
// mutated byte by byte. Everything draws from one seeded PRNG, so a seed replays a run's inputs.

import { encodeCommand } from "../../src/protocol/resp-writer.ts";
import { prng } from "../helpers/prng.ts";

/** The topic that holds the sentinel message: no generator ever names it where a message could be taken. */
export const SENTINEL_TOPIC = "fuzz-sentinel";

/** MSGBUS_FUZZ_SEED, or a fixed default so the normal suite is reproducible. */
export function fuzzSeed(): number {
  const raw = process.env.MSGBUS_FUZZ_SEED;
  const seed = raw === undefined || raw === "" ? 20261130 : Number(raw);
  if (!Number.isInteger(seed)) throw new Error(`MSGBUS_FUZZ_SEED must be an integer (got "${raw}")`);
  return seed >>> 0;
}

/** MSGBUS_FUZZ_TIME_MS, or `fallback` (a few seconds, so the normal suite stays fast). */
export function fuzzTimeMs(fallback: number): number {
  const raw = process.env.MSGBUS_FUZZ_TIME_MS;
  const ms = raw === undefined || raw === "" ? fallback : Number(raw);
  if (!Number.isFinite(ms) || ms <= 0) throw new Error(`MSGBUS_FUZZ_TIME_MS must be a positive number (got "${raw}")`);
  return ms;
}

/**
 * Issue 8 items whose inputs the generators leave out (MSGBUS_FUZZ_SKIP_ITEMS=1,9,12): for
 * looking past a known, unfixed bug to what else a run finds. The suite sets nothing: every
 * generator can produce every known bug, so a regression is caught.
 */
export function skipsItem(item: number): boolean {
  return (process.env.MSGBUS_FUZZ_SKIP_ITEMS ?? "")
    .split(",")
    .map((s) => Number(s.trim()))
    .includes(item);
}

export class Rng {
  private readonly next: () => number;
  constructor(readonly seed: number) {
    this.next = prng(seed);
  }
  float(): number {
    return this.next();
  }
  /** An integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.next() * n);
  }
  range(lo: number, hi: number): number {
    return lo + this.int(hi - lo + 1);
  }
  chance(p: number): boolean {
    return this.next() < p;
  }
  pick<T>(items: readonly T[]): T {
    return items[this.int(items.length)]!;
  }
  bytes(n: number): Uint8Array {
    const out = new Uint8Array(n);
    for (let i = 0; i < n; i++) out[i] = this.int(256);
    return out;
  }
  /** A child generator with its own stream, so concurrent connections do not share one sequence. */
  fork(): Rng {
    return new Rng((this.int(0x100000000) ^ this.seed) >>> 0);
  }
}

const enc = new TextEncoder();
export const utf8 = (s: string) => enc.encode(s);

// ---- the values inside commands ----

/**
 * Topic names: a few valid ones (so writes and reads meet), then every kind of bad one. Fresh
 * names come only for reads ("write": never), so the topics writes create stay few and a write
 * to a new topic after the run shows whether reads used up --max-topics (issue 8 item 11).
 */
export function topicName(rng: Rng, use: "read" | "write" = "read"): string {
  if (use === "write") {
    const name = topicName(rng, "read");
    const fresh = /^t\d+$/.test(name) || (/^[A-Za-z0-9.:-][A-Za-z0-9._:-]{0,2}$/.test(name) && !/^(f\d|\.|\.\.)$/.test(name));
    return fresh ? `f${rng.int(6)}` : name;
  }
  const roll = rng.float();
  if (roll < 0.55) return `f${rng.int(6)}`; // a small pool, so puts and takes meet
  if (roll < 0.65) return `f${rng.int(6)}.dead`;
  const name = rng.pick([
    ".",
    "..",
    "",
    "_",
    "_x",
    "a/b",
    "a b",
    "a%2Fb",
    "x".repeat(128),
    "y".repeat(129),
    "z".repeat(rng.range(130, 5000)),
    "ü",
    "a\u0000b",
    "a\r\nb",
    "*",
    "f?",
    `${SENTINEL_TOPIC}.dead`,
    `${SENTINEL_TOPIC}x`,
    skipsItem(11) ? "f3" : `t${rng.int(100000)}`, // fresh topics, to pressure --max-topics
    String.fromCharCode(...rng.bytes(rng.range(1, 12))),
  ]);
  return name === SENTINEL_TOPIC ? "f0" : name;
}

/** Numbers and durations as a careless or hostile client writes them. */
export function numberArg(rng: Rng): string {
  return rng.pick([
    "0",
    "1",
    "-1",
    "2",
    "0.1",
    "0.0004",
    "1.5",
    "NaN",
    "nan",
    "inf",
    "-inf",
    "+inf",
    "Infinity",
    "1e308",
    "-0",
    "2147483648",
    "99999999999",
    "2592000",
    "9007199254740993",
    "18446744073709551616",
    "0x10",
    "",
    " 1",
    "1 ",
    "25d",
    "30d",
    "100ms",
    "500ms",
    "1s",
    "5m",
    "1h",
    "10y",
    "1ms",
    "abc",
    String(rng.int(1000)),
    String(-rng.int(1000)),
  ]);
}

/** Short waits most of the time, so connections are not all parked in BLPOP. */
function anyWait(rng: Rng): string {
  if (rng.chance(0.7)) return rng.pick(["0.05", "0.1", "100ms", "50ms", "1ms"]);
  const value = numberArg(rng);
  return skipsItem(12) && ["2147483648", "99999999999", "2592000", "9007199254740993", "18446744073709551616", "25d", "30d", "10y", "1e308"].includes(value)
    ? "0.1"
    : value;
}

/** A CONFIG GET pattern: mostly harmless, sometimes the backtracking bomb of issue 8 item 1. */
function configPattern(rng: Rng): string {
  const roll = rng.float();
  if (roll < 0.5 || skipsItem(1)) return rng.pick(["*", "maxmemory", "save", "appendonly", "*max*", "?", "[a-z]*", "\\*", "*".repeat(rng.range(2, 6)) + "#"]);
  // Many stars and a tail that never matches: exponential for a backtracking RegExp.
  return "*".repeat(rng.range(8, 40)) + rng.pick(["#", "x", "\u0000", "[", "\\"]);
}

function payload(rng: Rng): string | Uint8Array {
  const roll = rng.float();
  if (roll < 0.4) return `m${rng.int(1000)}`;
  if (roll < 0.6) return rng.bytes(rng.int(64));
  if (roll < 0.7) return "";
  if (roll < 0.8) return rng.bytes(rng.range(1000, 70000)); // around --max-message-size
  return rng.pick([SENTINEL_TOPIC, "\r\n", "*1\r\n$4\r\nPING\r\n", "x".repeat(rng.int(4096))]);
}

type Arg = string | Uint8Array;

/** Commands that change what a connection may send next, or end it: left out of clean sessions. */
const MODE_CHANGING = new Set(["ON", "SUB", "SUBSCRIBE", "UNSUBSCRIBE", "QUIT", "HELLO", "RESET"]);

/**
 * One command of the real command set with plausible-to-hostile arguments. `clean`: no command
 * that changes the connection's mode and only short waits, so every command must be answered.
 */
export function respCommand(rng: Rng, clean = false): Arg[] {
  for (;;) {
    const command = anyCommand(rng, clean);
    if (!clean || !MODE_CHANGING.has(String(command[0]).toUpperCase())) return command;
  }
}

function anyCommand(rng: Rng, clean: boolean): Arg[] {
  const t = () => topicName(rng);
  const waitArg = (rng: Rng) => (clean ? rng.pick(["0.05", "0.1", "100ms", "50ms", "1ms", "0.0004"]) : anyWait(rng));
  const name = rng.pick([
    "PUT",
    "PUB",
    "GET",
    "ON",
    "OFF",
    "SUB",
    "UNSUB",
    "ACK",
    "NACK",
    "TOUCH",
    "STATS",
    "TOPICS",
    "PURGE",
    "DEL",
    "LPUSH",
    "RPUSH",
    "LPOP",
    "RPOP",
    "BLPOP",
    "BRPOP",
    "LLEN",
    "PUBLISH",
    "SUBSCRIBE",
    "UNSUBSCRIBE",
    "PING",
    "ECHO",
    "HELLO",
    "AUTH",
    "RESET",
    "CONFIG",
    "CLIENT",
    "SELECT",
    "INFO",
    "COMMAND",
    "QUIT",
    "NOSUCH",
    "",
    "get",
    "Put",
  ]);
  switch (name.toUpperCase()) {
    case "PUT":
    case "PUB":
    case "LPUSH":
    case "RPUSH":
      return [name, topicName(rng, "write"), ...Array.from({ length: rng.range(0, 3) }, () => payload(rng))];
    case "GET": {
      const args: Arg[] = [name, t()];
      for (let i = rng.int(4); i > 0; i--) {
        const option = rng.pick(["WAIT", "LEASE", "MAXDELIVERIES", "wait", "BOGUS"]);
        args.push(option, option.toUpperCase() === "WAIT" ? waitArg(rng) : numberArg(rng));
      }
      return args;
    }
    case "ON": {
      const args: Arg[] = [name, t()];
      for (let i = rng.int(3); i > 0; i--) args.push(rng.pick(["LEASE", "PREFETCH", "MAXDELIVERIES", "X"]), numberArg(rng));
      return args;
    }
    case "SUB":
      return rng.chance(0.5) ? [name, t()] : [name, rng.chance(0.3) ? SENTINEL_TOPIC : t(), "SINCE", numberArg(rng)]; // SUB only peeks
    case "ACK":
    case "NACK":
    case "TOUCH": {
      const args: Arg[] = [name, t(), numberArg(rng)];
      if (rng.chance(0.5)) args.push(rng.pick(["DELAY", "DELIVERY", "LEASE"]), numberArg(rng));
      return args;
    }
    case "LPOP":
    case "RPOP":
      return rng.chance(0.5) ? [name, t()] : [name, t(), numberArg(rng)];
    case "BLPOP":
    case "BRPOP": {
      const keys =
        rng.chance(0.05) && !skipsItem(11)
          ? Array.from({ length: rng.range(100, 3000) }, (_, i) => `k${rng.int(1e6)}-${i}`)
          : Array.from({ length: rng.range(1, 3) }, t);
      return [name, ...keys, waitArg(rng)];
    }
    case "STATS":
    case "LLEN":
      return [name, rng.chance(0.2) ? SENTINEL_TOPIC : t()]; // reads that must not take
    case "PURGE":
    case "DEL":
    case "OFF":
    case "UNSUB":
      return [name, t()];
    case "PUBLISH":
      return [name, topicName(rng, "write"), payload(rng)];
    case "SUBSCRIBE":
    case "UNSUBSCRIBE":
      return [name, ...Array.from({ length: rng.range(0, 3) }, t)];
    case "PING":
    case "ECHO":
      return rng.chance(0.5) ? [name] : [name, payload(rng)];
    case "HELLO":
      return [name, ...rng.pick<Arg[]>([[], ["2"], ["3"], ["4"], ["-1"], ["3", "AUTH", "u", "p"], ["3", "SETNAME", "x"], ["AUTH"], [numberArg(rng)]])];
    case "AUTH":
      return [name, ...rng.pick<Arg[]>([[], ["tok"], ["user", "tok"], ["a", "b", "c"]])];
    case "CONFIG":
      return [name, rng.pick(["GET", "get", "SET", "RESETSTAT"]), configPattern(rng)];
    case "CLIENT":
      return [name, rng.pick(["SETNAME", "LIST", "KILL", "ID"]), t()];
    case "SELECT":
      return [name, numberArg(rng)];
    default:
      return [name, ...Array.from({ length: rng.int(3) }, () => payload(rng))];
  }
}

// ---- bytes: encodings and mutations ----

export function concat(parts: Uint8Array[]): Uint8Array {
  return new Uint8Array(Buffer.concat(parts));
}

/** An inline command (`PUT jobs hello\r\n`), sometimes with quotes and junk. */
function inlineCommand(rng: Rng, args: Arg[]): Uint8Array {
  const words = args.map((a) => (typeof a === "string" ? a : new TextDecoder().decode(a)).slice(0, 200));
  let line = words.map((w) => (rng.chance(0.2) ? `"${w}` + (rng.chance(0.7) ? '"' : "") : w)).join(rng.pick([" ", "  ", "\t"]));
  if (rng.chance(0.2)) line += rng.pick(['"', "'", "\\", "\u0000", ' "a\\x4', "\\xZZ"]);
  return utf8(line + rng.pick(["\r\n", "\n", "\r\n", "\r"]));
}

/** Headers that announce far more than will come: the pending-input growth of issue 8 item 9. */
export function inflatedHeader(rng: Rng): Uint8Array {
  if (skipsItem(9)) return utf8(rng.pick(["*3\r\n$3\r\nPUT\r\n", "*2\r\n$4\r\nECHO\r\n$10\r\nabc", "$5\r\n"]));
  return utf8(
    rng.pick([
      "*1048576\r\n",
      "*1048577\r\n",
      "*2147483648\r\n",
      "*-5\r\n",
      "*3\r\n$3\r\nPUT\r\n$2\r\nf1\r\n$999999999\r\n",
      "*2\r\n$4\r\nECHO\r\n$65600\r\n",
      "$999999999\r\n",
      "*1048576\r\n" + "$0\r\n\r\n".repeat(rng.range(100, 5000)),
      "*" + "9".repeat(rng.range(10, 40)) + "\r\n",
      "*1\r\n$" + "9".repeat(rng.range(10, 40)) + "\r\n",
    ]),
  );
}

/**
 * A command announcing 1,048,576 arguments followed by most of them, empty, and never finished:
 * ~52 MB of server memory per connection for ~6 MB sent before issue 8 item 9 was fixed.
 */
export function pendingArguments(rng: Rng): Uint8Array {
  if (skipsItem(9)) return utf8("*2\r\n$4\r\nECHO\r\n");
  return utf8("*1048576\r\n" + "$0\r\n\r\n".repeat(rng.range(400000, 1048575)));
}

/** Byte-level mutations of an encoded command. */
export function mutate(rng: Rng, bytes: Uint8Array): Uint8Array {
  let out: Uint8Array = bytes.slice();
  for (let n = rng.range(1, 3); n > 0; n--) {
    switch (rng.int(7)) {
      case 0: // flip bits
        if (out.length) for (let i = rng.range(1, 4); i > 0; i--) out[rng.int(out.length)]! ^= 1 << rng.int(8);
        break;
      case 1: // truncate
        out = out.slice(0, rng.int(out.length + 1));
        break;
      case 2: // duplicate a slice
        if (out.length) {
          const a = rng.int(out.length);
          const b = Math.min(out.length, a + rng.range(1, 64));
          out = concat([out.slice(0, b), out.slice(a, b), out.slice(b)]);
        }
        break;
      case 3: // insert junk
        {
          const at = rng.int(out.length + 1);
          out = concat([
            out.slice(0, at),
            rng.pick([utf8("\r\n"), utf8("*"), utf8("$"), utf8(":1\r\n"), utf8("-1"), rng.bytes(rng.range(1, 16))]),
            out.slice(at),
          ]);
        }
        break;
      case 4: // replace a length with a larger or a negative one
        {
          const text = Buffer.from(out).toString("latin1");
          const replaced = text.replace(
            /([*$])(\d+)/,
            (_m, kind: string) => kind + rng.pick(["0", "-1", "-2", "1048576", "999999999", "2", "4294967297", "x"]),
          );
          out = new Uint8Array(Buffer.from(replaced, "latin1"));
        }
        break;
      case 5: // drop a CR or an LF
        {
          const at = out.indexOf(rng.chance(0.5) ? 13 : 10, rng.int(out.length + 1));
          if (at >= 0) out = concat([out.slice(0, at), out.slice(at + 1)]);
        }
        break;
      default: {
        // a RESP3 type byte where a bulk is expected
        const at = out.indexOf(36 /* $ */, rng.int(out.length + 1));
        if (at >= 0) out[at] = rng.pick([43, 45, 58, 95, 44, 35, 33, 61, 40, 37, 126, 62, 0]);
      }
    }
  }
  return out;
}

/** Some bytes to write on a RESP connection: valid commands most of the time, then broken ones. */
export function respChunk(rng: Rng): Uint8Array {
  const roll = rng.float();
  if (roll < 0.55) {
    const commands = Array.from({ length: rng.chance(0.2) ? rng.range(2, 50) : 1 }, () => encodeCommand(respCommand(rng)));
    return concat(commands);
  }
  if (roll < 0.7) return inlineCommand(rng, respCommand(rng));
  if (roll < 0.9) return mutate(rng, encodeCommand(respCommand(rng)));
  if (roll < 0.97) return inflatedHeader(rng);
  return rng.bytes(rng.range(1, 256));
}

/** Splits bytes at random boundaries, so a command arrives in pieces. */
export function split(rng: Rng, bytes: Uint8Array): Uint8Array[] {
  if (bytes.length < 2 || rng.chance(0.6)) return [bytes];
  const pieces: Uint8Array[] = [];
  let at = 0;
  while (at < bytes.length) {
    const size = rng.chance(0.3) ? 1 : rng.range(1, Math.max(1, bytes.length - at));
    pieces.push(bytes.slice(at, at + size));
    at += size;
  }
  return pieces;
}

// ---- HTTP ----

function pathFor(rng: Rng, method: string): string {
  const t = () => encodeTopic(rng, topicName(rng, method === "POST" || method === "PUT" ? "write" : "read"));
  return rng.pick([
    () => `/${t()}`,
    () => `/${t()}/${numberArg(rng)}/ack`,
    () => `/${t()}/${numberArg(rng)}/nack`,
    () => `/${t()}/${rng.int(20)}/${rng.pick(["ack", "nack", "ACK", "touch", ""])}`,
    () => `/_/${rng.pick(["health", "topics", "metrics", "nope", "", SENTINEL_TOPIC])}`,
    () => `/_/topics/${rng.chance(0.3) ? SENTINEL_TOPIC : t()}`, // a read of counters: must not take
    () => `/x/${SENTINEL_TOPIC}`, // two segments: no route takes a message here
    () => `/health/../${t()}`,
    () => rng.pick(["/", "//", "///f1", "/./f1", "/../f1", "/f1/..", "/%2e%2e", "/%2E", "/.", "/..", "/f1%2Ff2", "/f%", "/f%zz", "/%00", "*"]),
    () => `/${"a".repeat(rng.range(100, 9000))}`,
    () => `http://127.0.0.1/${t()}`,
  ])();
}

function encodeTopic(rng: Rng, topic: string): string {
  if (rng.chance(0.3)) return [...topic].map((c) => "%" + c.charCodeAt(0).toString(16).padStart(2, "0")).join("");
  return encodeURIComponent(topic);
}

function queryFor(rng: Rng): string {
  if (rng.chance(0.4)) return "";
  const params = Array.from({ length: rng.range(1, 4) }, () => {
    const key = rng.pick([
      "wait",
      "lease",
      "since",
      "json",
      "sse",
      "binary",
      "publish-only",
      "delay",
      "delivery",
      "max-deliveries",
      "token",
      "wiat",
      "",
      "a%zz",
      "json",
    ]);
    const value = key === "wait" && rng.chance(0.7) ? rng.pick(["100ms", "0.05"]) : numberArg(rng);
    return rng.chance(0.2) ? key : `${key}=${encodeURIComponent(value)}`;
  });
  return "?" + params.join(rng.pick(["&", "&&", ";"]));
}

/** One raw HTTP/1.x request (sometimes not quite one). */
export function httpRequest(rng: Rng): Uint8Array {
  const method = rng.pick(["GET", "GET", "POST", "PUT", "DELETE", "OPTIONS", "HEAD", "PATCH", "TRACE", "CONNECT", "get", "G\u0000T", "BREW"]);
  const target = method === "OPTIONS" && rng.chance(0.5) ? "*" : pathFor(rng, method) + queryFor(rng);
  const version = rng.pick(["HTTP/1.1", "HTTP/1.1", "HTTP/1.0", "HTTP/1.0", "HTTP/2.0", "HTTP/9", "", "HTTP/1.1 extra"]);
  const headers: string[] = [];
  // No Host (or an empty one) is what routed /_/health to topic "health" (issue 8 item 3).
  if (skipsItem(3)) headers.push("Host: 127.0.0.1");
  else if (rng.chance(0.7)) headers.push(`Host: ${rng.pick(["127.0.0.1", "localhost:1", "", "a b", "x".repeat(300)])}`);
  const content = payloadOf(rng);
  let body: Uint8Array = rng.chance(0.5) ? new Uint8Array(0) : typeof content === "string" ? utf8(content) : content;
  const framing = rng.int(6);
  if (framing === 0) headers.push(`Content-Length: ${body.length}`);
  else if (framing === 1)
    headers.push(`Content-Length: ${rng.pick(["-1", "abc", "99999999999", "18446744073709551616", String(body.length + 10), "0", "1, 2", " 5"])}`);
  else if (framing === 2) {
    headers.push("Transfer-Encoding: chunked");
    body = rng.chance(0.5)
      ? utf8(`${body.length.toString(16)}\r\n${new TextDecoder().decode(body)}\r\n0\r\n\r\n`)
      : utf8(rng.pick(["zz\r\nabc\r\n", "ffffffffffffffff\r\n", "5\r\nab", "1;ext=1\r\nx\r\n0\r\n\r\n", "-1\r\n\r\n"]));
  } else if (framing === 3) headers.push("Transfer-Encoding: chunked", `Content-Length: ${body.length}`);
  for (let i = rng.int(4); i > 0; i--) {
    headers.push(
      rng.pick([
        "Accept: text/event-stream",
        "Accept: application/json",
        `Last-Event-ID: ${numberArg(rng)}`,
        "Connection: close",
        "Connection: keep-alive",
        "Upgrade: websocket",
        "Connection: Upgrade",
        "Sec-WebSocket-Version: 13",
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==",
        "Authorization: Bearer nope",
        "Origin: https://evil.example",
        "Expect: 100-continue",
        `X-Long: ${"h".repeat(rng.range(100, 20000))}`,
        "NoColon",
        ": empty",
        "Bad Header: x",
        "X-Nul: a\u0000b",
      ]),
    );
  }
  const head = `${method} ${target}${version ? " " + version : ""}\r\n${headers.join("\r\n")}${headers.length ? "\r\n" : ""}\r\n`;
  const request = concat([utf8(head), body]);
  return rng.chance(0.15) ? mutate(rng, request) : request;
}

function payloadOf(rng: Rng): string | Uint8Array {
  return rng.chance(0.1) ? rng.bytes(rng.range(60000, 70000)) : payload(rng);
}

// ---- WebSocket frames ----

/** A client frame: opcode, FIN, mask and length chosen to be valid or not. */
export function wsFrame(rng: Rng): Uint8Array {
  const opcode = rng.chance(0.7) ? rng.pick([0x1, 0x2, 0x0, 0x9, 0xa]) : rng.pick([0x3, 0x7, 0xb, 0xf, 0x8]);
  const fin = rng.chance(0.8) ? 0x80 : 0;
  const rsv = rng.chance(0.05) ? rng.pick([0x40, 0x20, 0x10]) : 0;
  const masked = rng.chance(0.9);
  let data: Uint8Array =
    opcode === 0x8
      ? concat([new Uint8Array([rng.int(256), rng.int(256)]), utf8("bye")])
      : rng.chance(0.5)
        ? utf8(`w${rng.int(1000)}`)
        : rng.bytes(rng.int(rng.chance(0.1) ? 70000 : 200));
  if (opcode >= 0x8 && rng.chance(0.2)) data = rng.bytes(rng.range(126, 300)); // control frame too long
  const lengthMode = rng.int(10);
  const header: number[] = [fin | rsv | opcode];
  const declared = lengthMode === 0 ? rng.pick([2 ** 31, 2 ** 53, 65536 * 1024, data.length + 100]) : data.length;
  const maskBit = masked ? 0x80 : 0;
  if (declared < 126 && lengthMode !== 1) header.push(maskBit | declared);
  else if (declared < 65536 && lengthMode !== 2) header.push(maskBit | 126, declared >> 8, declared & 0xff);
  else {
    header.push(maskBit | 127);
    const big = BigInt(declared);
    for (let shift = 56n; shift >= 0n; shift -= 8n) header.push(Number((big >> shift) & 0xffn));
  }
  const key = rng.bytes(4);
  const body = masked ? data.map((b, i) => b ^ key[i % 4]!) : data;
  const frame = concat([new Uint8Array(header), masked ? key : new Uint8Array(0), body]);
  return rng.chance(0.1) ? mutate(rng, frame) : frame;
}

export function wsPath(rng: Rng): string {
  const topic = encodeURIComponent(topicName(rng, "write") || "f1"); // a socket publishes
  const query = rng.pick(["", "?json", "?binary", "?publish-only", "?json&publish-only", "?since=0", `?since=${numberArg(rng)}`, "?json&since=1"]);
  return `/${topic}${query}`;
}

// ---- CLI argument vectors ----

const DURATIONS = ["0", "1", "100ms", "0.0004", "-1", "NaN", "inf", "25d", "99999999999", "abc", "1x", "", "5m", "1e3"];

/** One msgbus argument vector: a subcommand (or none) with good, bad and unknown flags. */
export function cliArgs(rng: Rng, urls: string[]): string[] {
  // A bare `msgbus` and unknown flags are usage errors (issue 8 item 14).
  const sub = rng.pick(["put", "pub", "get", "ack", "nack", "on", "sub", "serve", "nosuch", skipsItem(14) ? "put" : "", "--version", "-h", "PUT"]);
  const args: string[] = sub ? [sub] : [];
  const topic = () => (rng.chance(0.8) ? topicName(rng) : rng.pick(["-", "--", "-x", "--json"]));
  if (sub === "put" || sub === "pub") {
    args.push(topic());
    for (let i = rng.int(3); i > 0; i--) {
      const word = payload(rng);
      // A word may end up the topic (`put --json fuzz-sentinel x`, `put -- fuzz-sentinel x`): never
      // the sentinel's, whose queue the run must leave as it was (found by seed 4243, 90 s).
      const text = typeof word === "string" ? word.replaceAll("\u0000", "").slice(0, 5000) : "bin";
      args.push(text === SENTINEL_TOPIC ? "f0" : text);
    }
  } else if (sub === "ack" || sub === "nack") {
    args.push(topic(), rng.pick(["1", "0", "-1", "abc", "1.5", "99999999999999999999", ""]));
  } else if (sub !== "serve" && sub) {
    if (rng.chance(0.9)) args.push(topic());
  }
  const flags: Record<string, () => string[]> = {
    wait: () => (rng.chance(0.3) ? ["--wait"] : ["--wait", rng.pick(DURATIONS.map((d) => (d === "0" ? "100ms" : d)))]),
    lease: () => ["--lease", rng.pick(DURATIONS)],
    delay: () => ["--delay", rng.pick(DURATIONS)],
    timeout: () => ["--timeout", rng.pick(DURATIONS)],
    concurrency: () => ["--concurrency", rng.pick(["1", "0", "-1", "abc", "1000000", "2"])],
    since: () => ["--since", rng.pick(["0", "1", "-1", "abc", "1e400"])],
    "max-deliveries": () => ["--max-deliveries", rng.pick(["1", "0", "-5", "x"])],
    "retry-delay": () => ["--retry-delay", rng.pick(DURATIONS)],
    url: () => [
      "--url",
      rng.pick([...urls, "tcp://127.0.0.1:1", "http://127.0.0.1:1", "ftp://x", "tcp://", "::::", "http://[::1", "ws://127.0.0.1:1/x", "tcp://256.0.0.1:1"]),
    ],
    port: () => ["--port", rng.pick(["0", "-1", "70000", "abc", "1"])],
    host: () => ["--host", rng.pick(["256.256.256.256", "", "localhost"])],
    token: () => ["--token", rng.pick(["", "x", "a b"])],
    json: () => ["--json"],
    lines: () => ["--lines"],
    "print-id": () => ["--print-id"],
    reconnect: () => ["--reconnect"],
    delivery: () => ["--delivery", rng.pick(["1", "x"])],
    odd: () => [rng.pick(["--json=maybe", "---", "--=", "--no-json", "--lease=", "-"]), ...(rng.chance(0.5) ? ["x"] : [])],
    "max-message-size": () => ["--max-message-size", rng.pick(["1", "0", "-1", "1x", "99999999999999"])],
  };
  const names = Object.keys(flags);
  for (let i = rng.int(4); i > 0; i--) args.push(...flags[rng.pick(names)]!());
  if (rng.chance(0.2) && !skipsItem(14)) args.splice(rng.range(Math.min(1, args.length), args.length), 0, rng.pick(["--bogus", "--wiat", "-z"]));
  if ((sub === "on" || sub === "sub") && rng.chance(0.4)) args.push("--", rng.pick(["true", "false", "cat", "/nonexistent/handler"]));
  return args.map((arg) => arg.replaceAll("\u0000", "")); // an argv cannot hold NUL
}
