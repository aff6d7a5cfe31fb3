// The RESP codec: the incremental command parser (whole, byte by byte, split at every boundary,
// randomized), its limits and fatal problems, detach(), the reply writer and the reply reader.

import { prng } from "../helpers/prng.ts";
import { describe, expect, test } from "bun:test";
import { ARGUMENT_COST, hashUpper, isProblem, type RespCommand, RespParser, type RespItem, type RespLimits } from "../../src/protocol/resp-parser.ts";
import { encodeCommand, RespWriter } from "../../src/protocol/resp-writer.ts";
import { RespErrorValue, RespPush, RespReader, type RespValue } from "../../src/protocol/resp-reader.ts";

// Test inputs are written as latin1 strings: one character is one byte, so "\0", "\r\n" and
// "\xff" are exactly the bytes they look like.
const latin1 = (s: string) => Uint8Array.from(s, (c) => c.charCodeAt(0));
const unlatin1 = (b: Uint8Array) => Array.from(b, (x) => String.fromCharCode(x)).join("");
const utf8 = (s: string) => new TextEncoder().encode(s);

/** A multibulk command as a latin1 string, built by hand (independent of encodeCommand). */
const cmd = (...args: string[]) => `*${args.length}\r\n` + args.map((a) => `$${a.length}\r\n${a}\r\n`).join("");

const LIMITS: RespLimits = { maxBulk: 16, maxCommandBytes: 40, maxArgs: 8, maxInline: 32 };
const ROOMY: RespLimits = { maxBulk: 1 << 20, maxCommandBytes: 1 << 22, maxArgs: 1024, maxInline: 1 << 16 };

type Parsed = string[] | { problem: string; fatal: boolean; error: string };

function normalize(item: RespItem): Parsed {
  if (isProblem(item)) return { problem: item.code, fatal: item.fatal, error: item.error };
  return item.map(unlatin1);
}

/** Feeds the chunks one by one, collecting every item as soon as it is complete. */
function parseChunks(chunks: Uint8Array[], limits = LIMITS): Parsed[] {
  const parser = new RespParser(limits);
  const out: Parsed[] = [];
  for (const chunk of chunks) {
    parser.feed(chunk);
    for (let item = parser.next(); item !== undefined; item = parser.next()) out.push(normalize(item));
  }
  return out;
}

/** The short form used in expectations: a command's words, or "ERR CODE" / "FATAL CODE". */
function summary(parsed: Parsed[]): (string[] | string)[] {
  return parsed.map((p) => (Array.isArray(p) ? p : `${p.fatal ? "FATAL" : "ERR"} ${p.problem}`));
}

const bytewise = (input: Uint8Array) => Array.from(input, (_, i) => input.slice(i, i + 1));

/** Parses the input whole, byte by byte, and split in two at every boundary: all must agree. */
function parseEverySplit(input: Uint8Array, limits = LIMITS): Parsed[] {
  const whole = parseChunks([input.slice()], limits);
  expect({ split: "bytewise", parsed: parseChunks(bytewise(input), limits) }).toEqual({ split: "bytewise", parsed: whole });
  for (let i = 1; i < input.length; i++) {
    const parsed = parseChunks([input.slice(0, i), input.slice(i)], limits);
    expect({ split: i, parsed }).toEqual({ split: i, parsed: whole });
  }
  return whole;
}

/** Every pair of boundaries: three chunks. Quadratic, so only for a few inputs. */
function parseEveryThreeWaySplit(input: Uint8Array, limits = LIMITS): Parsed[] {
  const whole = parseChunks([input.slice()], limits);
  for (let i = 1; i < input.length; i++) {
    for (let j = i + 1; j < input.length; j++) {
      const parsed = parseChunks([input.slice(0, i), input.slice(i, j), input.slice(j)], limits);
      if (JSON.stringify(parsed) !== JSON.stringify(whole)) {
        expect({ split: [i, j], parsed }).toEqual({ split: [i, j], parsed: whole });
      }
    }
  }
  return whole;
}

interface Case {
  name: string;
  input: string;
  expected: (string[] | string)[];
  threeWay?: boolean;
}

const PING = cmd("PING");

const CASES: Case[] = [
  { name: "a multibulk command", input: cmd("PUT", "jobs", "hello"), expected: [["PUT", "jobs", "hello"]], threeWay: true },
  {
    name: "many pipelined commands",
    input: cmd("PING") + cmd("PUT", "q", "1") + cmd("GET", "q") + cmd("ACK", "q", "17") + cmd("QUIT"),
    expected: [["PING"], ["PUT", "q", "1"], ["GET", "q"], ["ACK", "q", "17"], ["QUIT"]],
    threeWay: true,
  },
  {
    name: "a binary payload containing CR LF, NUL and RESP-looking bytes",
    input: cmd("PUT", "b", "\r\n\0*1\r\n$4\xff\xfe\n\r") + PING,
    expected: [["PUT", "b", "\r\n\0*1\r\n$4\xff\xfe\n\r"], ["PING"]],
    threeWay: true,
  },
  { name: "an empty bulk ($0)", input: cmd("PUT", "q", "") + cmd(""), expected: [["PUT", "q", ""], [""]] },
  { name: "*0 and *-1 are skipped as in Redis", input: "*0\r\n*-1\r\n" + PING, expected: [["PING"]] },
  { name: "an inline PING", input: "PING\r\n", expected: [["PING"]] },
  { name: "an inline command with words", input: "PUT jobs hello\r\n", expected: [["PUT", "jobs", "hello"]] },
  { name: "inline words separated by several spaces and tabs", input: "  PUT \t jobs   x \r\n", expected: [["PUT", "jobs", "x"]] },
  {
    name: "inline quoted words with escapes",
    input: 'PUT j "a b" "x\\"y\\n" ""\r\n',
    expected: [["PUT", "j", "a b", 'x"y\n', ""]],
    threeWay: true,
  },
  { name: "inline commands ending in a bare LF", input: "PING\nPUT a b\n", expected: [["PING"], ["PUT", "a", "b"]] },
  { name: "blank inline lines are ignored", input: "\r\n\n   \r\nPING\r\n", expected: [["PING"]] },
  {
    name: "inline and multibulk commands mixed",
    input: "PING\r\n" + cmd("GET", "q") + "QUIT\r\n",
    expected: [["PING"], ["GET", "q"], ["QUIT"]],
  },
  {
    name: "unbalanced inline quotes are a non-fatal error",
    input: 'PUT q "open\r\n' + PING,
    expected: ["ERR PROTOCOL", ["PING"]],
  },
  {
    name: "an inline line of exactly maxInline characters",
    input: "A".repeat(32) + "\r\n" + PING,
    expected: [["A".repeat(32)], ["PING"]],
  },
  { name: "an inline line of maxInline + 1 characters is fatal", input: "A".repeat(33) + "\r\n" + PING, expected: ["FATAL PROTOCOL"] },
  {
    name: "an inline line of maxInline + 1 characters ending in a bare LF is fatal",
    input: "A".repeat(33) + "\n" + PING,
    expected: ["FATAL PROTOCOL"],
  },
  { name: "a bulk of exactly maxBulk", input: cmd("PUT", "q", "x".repeat(16)), expected: [["PUT", "q", "x".repeat(16)]] },
  {
    name: "a bulk of maxBulk + 1 is refused, and the next pipelined command is still parsed",
    input: cmd("PUT", "q", "x".repeat(17)) + PING,
    expected: ["ERR TOO_LARGE", ["PING"]],
    threeWay: true,
  },
  {
    name: "a refused bulk whose bytes look like commands is skipped by its length",
    input: cmd("PUT", "q", "*1\r\n$4\r\nPING\r\n\r\n\r\n") + cmd("GET", "q"),
    expected: ["ERR TOO_LARGE", ["GET", "q"]],
  },
  {
    name: "a command with several too-large arguments is refused once",
    input: cmd("PUT", "y".repeat(17), "z".repeat(30), "ok") + PING,
    expected: ["ERR TOO_LARGE", ["PING"]],
  },
  {
    name: "a command of exactly maxCommandBytes",
    input: cmd("A".repeat(8), "b".repeat(16), "c".repeat(16)),
    expected: [["A".repeat(8), "b".repeat(16), "c".repeat(16)]],
  },
  {
    name: "a command of maxCommandBytes + 1 is refused, and the next one is still parsed",
    input: cmd("A".repeat(9), "b".repeat(16), "c".repeat(16)) + PING,
    expected: ["ERR TOO_LARGE", ["PING"]],
  },
  {
    name: "a command of exactly maxArgs arguments",
    input: cmd("1", "2", "3", "4", "5", "6", "7", "8"),
    expected: [["1", "2", "3", "4", "5", "6", "7", "8"]],
  },
  {
    // Up to 15 digits a header is read in one pass; longer ones (leading zeros) by the line reader.
    name: "header lengths with leading zeros, of 15 digits and more",
    input: "*0003\r\n$03\r\nGET\r\n$" + "0".repeat(14) + "1\r\nq\r\n$" + "0".repeat(20) + "\r\n\r\n" + PING,
    expected: [["GET", "q", ""], ["PING"]],
    threeWay: true,
  },
  { name: "header lines ending in a bare LF", input: "*2\n$3\nGET\r\n$1\nq\r\n" + PING, expected: [["GET", "q"], ["PING"]], threeWay: true },
  // Fatal: the stream cannot be trusted, so the PING after it must never come out.
  { name: "a non-numeric multibulk length is fatal", input: "*x\r\n" + PING, expected: ["FATAL PROTOCOL"] },
  { name: "an empty multibulk length is fatal", input: "*\r\n" + PING, expected: ["FATAL PROTOCOL"] },
  { name: "a multibulk length with trailing junk is fatal", input: "*1x\r\n" + PING, expected: ["FATAL PROTOCOL"] },
  { name: "a non-numeric bulk length is fatal", input: "*1\r\n$x\r\n" + PING, expected: ["FATAL PROTOCOL"] },
  { name: "an empty bulk length is fatal", input: "*1\r\n$\r\n" + PING, expected: ["FATAL PROTOCOL"] },
  { name: "a negative bulk length is fatal", input: "*1\r\n$-5\r\n" + PING, expected: ["FATAL PROTOCOL"] },
  { name: "another byte where '$' is expected is fatal", input: "*2\r\n$3\r\nGET\r\n:5\r\n" + PING, expected: ["FATAL PROTOCOL"] },
  {
    name: "more than maxArgs arguments is fatal, even when they are well formed",
    input: cmd("1", "2", "3", "4", "5", "6", "7", "8", "9") + PING,
    expected: ["FATAL PROTOCOL"],
  },
  { name: "a bulk not followed by CRLF is fatal", input: "*1\r\n$3\r\nabcXY" + PING, expected: ["FATAL PROTOCOL"] },
  { name: "a bulk followed by LF alone is fatal", input: "*1\r\n$3\r\nabc\n" + PING, expected: ["FATAL PROTOCOL"] },
  { name: "a bulk followed by CR and another byte is fatal", input: "*1\r\n$3\r\nabc\rX" + PING, expected: ["FATAL PROTOCOL"] },
  { name: "a bulk header line that is too long is fatal", input: "*1\r\n$" + "1".repeat(40) + "\r\n" + PING, expected: ["FATAL PROTOCOL"] },
  { name: "a multibulk header line that is too long is fatal", input: "*" + "0".repeat(40) + "1\r\n" + PING, expected: ["FATAL PROTOCOL"] },
  { name: "a bulk length over 512 MiB is fatal", input: "*1\r\n$536870913\r\n" + PING, expected: ["FATAL PROTOCOL"] },
];

describe("RespParser: every input gives the same commands however it is split", () => {
  for (const c of CASES) {
    test(`${c.name}: whole, byte by byte and split at every boundary`, () => {
      const parsed = parseEverySplit(latin1(c.input));
      expect(summary(parsed)).toEqual(c.expected);
    });
    if (c.threeWay) {
      test(`${c.name}: split at every pair of boundaries`, () => {
        const parsed = parseEveryThreeWaySplit(latin1(c.input));
        expect(summary(parsed)).toEqual(c.expected);
      });
    }
  }
});

describe("RespParser: problems", () => {
  test("a too-large argument is reported as TOO_LARGE with the sizes, not fatal", () => {
    const [problem] = parseChunks([latin1(cmd("PUT", "q", "x".repeat(17)))]);
    expect(problem).toEqual({ problem: "TOO_LARGE", fatal: false, error: expect.stringContaining("17") });
    expect((problem as { error: string }).error).toContain("16");
  });

  test("a too-large command names the command limit", () => {
    const [problem] = parseChunks([latin1(cmd("A".repeat(9), "b".repeat(16), "c".repeat(16)))]);
    expect(problem).toEqual({ problem: "TOO_LARGE", fatal: false, error: expect.stringContaining("40") });
  });

  test("too many arguments is reported as such", () => {
    const [problem] = parseChunks([latin1("*9\r\n")]);
    expect(problem).toEqual({ problem: "PROTOCOL", fatal: true, error: expect.stringContaining("too many arguments (9, limit 8)") });
  });

  test("a fatal problem says 'Protocol error' and what was wrong", () => {
    const [problem] = parseChunks([latin1("*1\r\n:5\r\n")]);
    expect(problem).toEqual({ problem: "PROTOCOL", fatal: true, error: expect.stringMatching(/^Protocol error: .*'\$'/) });
  });

  test("after a fatal problem nothing more is parsed, whatever is fed later", () => {
    const parser = new RespParser(LIMITS);
    parser.feed(latin1("*x\r\n" + PING));
    const first = parser.next();
    expect(first !== undefined && isProblem(first) && first.fatal).toBe(true);
    expect(parser.next()).toBeUndefined();
    parser.feed(latin1(PING + "PING\r\n"));
    expect(parser.next()).toBeUndefined();
  });

  test("a bulk of exactly 512 MiB over maxBulk is skipped as too large, not treated as nonsense", () => {
    const parser = new RespParser(LIMITS);
    parser.feed(latin1("*1\r\n$536870912\r\n"));
    expect(parser.next()).toBeUndefined(); // waiting to skip the bytes, not dead
    parser.feed(new Uint8Array(1 << 20));
    expect(parser.next()).toBeUndefined();
  });

  test("a refused bulk is skipped without being kept in memory", () => {
    const parser = new RespParser(LIMITS);
    parser.feed(latin1("*1\r\n$100000\r\n"));
    expect(parser.next()).toBeUndefined();
    for (let i = 0; i < 10; i++) {
      parser.feed(new Uint8Array(10_000));
      expect(parser.next()).toBeUndefined();
      expect(parser.buffered).toBe(0);
    }
    parser.feed(latin1("\r\n" + PING));
    expect(summary([normalize(parser.next()!), normalize(parser.next()!)])).toEqual(["ERR TOO_LARGE", ["PING"]]);
  });

  test("an inline line longer than maxInline is fatal before its end arrives", () => {
    const parser = new RespParser(LIMITS);
    parser.feed(latin1("A".repeat(40)));
    const item = parser.next();
    expect(item !== undefined && isProblem(item) && item.fatal).toBe(true);
  });
});

describe("RespParser: memory", () => {
  test("detach keeps unparsed bytes valid after the original chunk is overwritten", () => {
    const input = latin1(cmd("PUT", "jobs", "hello"));
    const chunk = input.slice(0, 12); // "*3\r\n$3\r\nPUT\r" : mid-argument
    const parser = new RespParser(LIMITS);
    parser.feed(chunk);
    expect(parser.next()).toBeUndefined();
    parser.detach();
    chunk.fill(0x58); // the transport reuses its read buffer
    parser.feed(input.slice(12));
    expect(summary([normalize(parser.next()!)])).toEqual([["PUT", "jobs", "hello"]]);
  });

  test("detach keeps the arguments already parsed of an incomplete command valid", () => {
    const input = latin1(cmd("PUT", "jobs", "hello"));
    const cut = input.length - 4; // "PUT" and "jobs" complete, "hello" not
    const chunk = input.slice(0, cut);
    const parser = new RespParser(LIMITS);
    parser.feed(chunk);
    expect(parser.next()).toBeUndefined();
    parser.detach();
    chunk.fill(0x58);
    parser.feed(input.slice(cut));
    expect(summary([normalize(parser.next()!)])).toEqual([["PUT", "jobs", "hello"]]);
  });

  test("detach with nothing buffered is harmless", () => {
    const parser = new RespParser(LIMITS);
    parser.detach();
    parser.feed(latin1(PING));
    parser.detach();
    parser.feed(latin1(PING));
    expect(summary([normalize(parser.next()!), normalize(parser.next()!)])).toEqual([["PING"], ["PING"]]);
  });

  test("a bulk split across reads is assembled in memory of its own", () => {
    const input = latin1(cmd("PUT", "q", "0123456789"));
    const first = input.slice(0, input.length - 6);
    const parser = new RespParser(LIMITS);
    parser.feed(first);
    expect(parser.next()).toBeUndefined();
    parser.feed(input.slice(input.length - 6));
    const item = parser.next() as Uint8Array[];
    expect(unlatin1(item[2]!)).toBe("0123456789");
    expect(item[2]!.buffer).not.toBe(first.buffer);
  });

  test("buffered counts the bytes received but not yet parsed", () => {
    const parser = new RespParser(LIMITS);
    expect(parser.buffered).toBe(0);
    parser.feed(latin1("*1\r\n$4\r\nPI"));
    expect(parser.next()).toBeUndefined();
    expect(parser.buffered).toBeGreaterThan(0);
    parser.feed(latin1("NG\r\n"));
    parser.next();
    expect(parser.buffered).toBe(0);
  });
});

describe("RespParser: what pending input holds", () => {
  test("held counts an unfinished command's arguments at their bytes plus ARGUMENT_COST each", () => {
    const parser = new RespParser(ROOMY);
    parser.feed(latin1("*1000\r\n" + "$0\r\n\r\n".repeat(100)));
    expect(parser.next()).toBeUndefined();
    expect(parser.held).toBe(7 + 100 * 6 + 100 * ARGUMENT_COST);
    expect(parser.partial).toBe(true);
  });

  test("a bulk announced large is assembled in a buffer that grows with the bytes, and the result is whole", () => {
    const parser = new RespParser(ROOMY);
    parser.feed(latin1("*3\r\n$3\r\nPUT\r\n$1\r\nq\r\n$1000000\r\n"));
    expect(parser.next()).toBeUndefined();
    expect(parser.held).toBeLessThan(20000); // not 1 MB before the bytes come
    const payload = new Uint8Array(1000000).map((_, i) => i % 251);
    for (let i = 0; i < payload.length; i += 4096) parser.feed(payload.subarray(i, i + 4096));
    expect(parser.held).toBeGreaterThanOrEqual(1000000);
    parser.feed(latin1("\r\n"));
    const item = parser.next() as Uint8Array[];
    expect(item[2]!.length).toBe(1000000);
    expect(item[2]!.every((b, i) => b === i % 251)).toBe(true);
    expect(parser.held).toBe(0);
    expect(parser.partial).toBe(false);
  });

  test("with overLimitFatal an argument over the limit is fatal, not skipped", () => {
    const strict: RespLimits = { ...LIMITS, overLimitFatal: true };
    expect(summary(parseChunks([latin1(cmd("AUTH", "x".repeat(17)) + PING)], strict))).toEqual(["FATAL PROTOCOL"]);
    expect(summary(parseChunks([latin1(cmd("AUTH", "x".repeat(16)) + PING)], strict))).toEqual([["AUTH", "x".repeat(16)], ["PING"]]);
  });

  test("setLimits applies from the next argument on; discard lets go of everything", () => {
    const parser = new RespParser({ ...LIMITS, overLimitFatal: true });
    parser.feed(latin1(cmd("AUTH", "t")));
    expect(normalize(parser.next()!)).toEqual(["AUTH", "t"]);
    parser.setLimits(ROOMY);
    parser.feed(latin1(cmd("PUT", "q", "y".repeat(100))));
    expect(normalize(parser.next()!)).toEqual(["PUT", "q", "y".repeat(100)]);
    parser.feed(latin1("*2\r\n$3\r\nPUT\r\n"));
    expect(parser.next()).toBeUndefined();
    parser.discard();
    expect(parser.held).toBe(0);
    parser.feed(latin1(PING));
    expect(parser.next()).toBeUndefined();
  });
});

describe("RespParser: nextCommand and RespCommand (the server's allocation-free path)", () => {
  function commandOf(input: string): RespCommand {
    const parser = new RespParser(LIMITS);
    parser.feed(latin1(input));
    const item = parser.nextCommand();
    if (item === undefined || isProblem(item)) throw new Error("expected a command");
    return item;
  }

  test("nextCommand gives the same arguments as next, for multibulk and inline commands", () => {
    for (const input of [cmd("PUT", "jobs", "a\r\nb"), "PUT jobs hello\r\n", cmd("PING")]) {
      const command = commandOf(input);
      const expected = parseChunks([latin1(input)])[0] as string[];
      expect(command.count).toBe(expected.length);
      expect(command.toArray().map(unlatin1)).toEqual(expected);
      expect(Array.from({ length: command.count }, (_, i) => command.size(i))).toEqual(expected.map((a) => a.length));
    }
  });

  test("unquoted inline words are the bytes sent (not re-encoded text), quoted ones are unescaped", () => {
    const plain = commandOf("PUT t \xff\xfe\r\n");
    expect(Array.from(plain.view(2))).toEqual([0xff, 0xfe]);
    const quoted = commandOf('PUT t "a\\tb c"\r\n');
    expect(quoted.text(2)).toBe("a\tb c");
  });

  test("text decodes an argument as UTF-8, and an argument past the end is empty", () => {
    const command = commandOf(cmd("PUT", "caf\xc3\xa9", "x"));
    expect(command.text(1)).toBe("café");
    expect(command.text(2)).toBe("x");
    expect(command.text(3)).toBe("");
  });

  test("text never answers from its cache for different bytes, of the same length or a prefix", () => {
    const parser = new RespParser(LIMITS);
    parser.feed(latin1(cmd("GET", "aaaa") + cmd("GET", "aaab") + cmd("GET", "aaab") + cmd("GET", "aaa") + cmd("GET", "aaaaa")));
    const seen: string[] = [];
    for (let item = parser.nextCommand(); item !== undefined; item = parser.nextCommand()) {
      if (isProblem(item)) throw new Error(item.error);
      seen.push(item.text(1));
    }
    expect(seen).toEqual(["aaaa", "aaab", "aaab", "aaa", "aaaaa"]);
  });

  test("is compares an argument with an upper-case word, ignoring the argument's case", () => {
    const command = commandOf(cmd("lPuSh", "q"));
    expect(command.is(0, "LPUSH")).toBe(true);
    expect(command.is(0, "LPUSHX")).toBe(false);
    expect(command.is(0, "RPUSH")).toBe(false);
    expect(command.is(1, "Q")).toBe(true);
  });

  test("hashUpper of an argument equals hashUpper of the same word as a string, whatever its case", () => {
    const command = commandOf(cmd("subscribe", "SUBSCRIBE", "Publish"));
    expect(command.hashUpper(0)).toBe(hashUpper("SUBSCRIBE"));
    expect(command.hashUpper(1)).toBe(hashUpper("subscribe"));
    expect(command.hashUpper(2)).toBe(hashUpper("PUBLISH"));
    expect(command.hashUpper(0)).not.toBe(command.hashUpper(2));
  });

  test("copy gives bytes that survive the chunk being overwritten; view does not copy", () => {
    const chunk = latin1(cmd("PUT", "q", "payload"));
    const parser = new RespParser(LIMITS);
    parser.feed(chunk);
    const command = parser.nextCommand() as RespCommand;
    const copy = command.copy(2);
    const view = command.view(2);
    chunk.fill(0x5a);
    expect(unlatin1(copy)).toBe("payload");
    expect(unlatin1(view)).toBe("ZZZZZZZ");
  });
});

describe("RespParser: randomized", () => {
  // Bytes that matter to the framing come up far more often than chance would have them.
  const INTERESTING = [13, 10, 0, 36, 42, 48, 49, 45, 32, 255];

  function randomArg(random: () => number): Uint8Array {
    const length = random() < 0.1 ? 0 : Math.floor(random() ** 2 * 300);
    const arg = new Uint8Array(length);
    for (let i = 0; i < length; i++) {
      arg[i] = random() < 0.3 ? INTERESTING[Math.floor(random() * INTERESTING.length)]! : Math.floor(random() * 256);
    }
    return arg;
  }

  test("random commands encoded with encodeCommand, concatenated and split at random points parse back identical (400 seeds)", () => {
    for (let seed = 1; seed <= 400; seed++) {
      const random = prng(seed);
      const commands: Uint8Array[][] = [];
      const encoded: Uint8Array[] = [];
      const count = 1 + Math.floor(random() * 8);
      for (let c = 0; c < count; c++) {
        const argc = random() < 0.05 ? 0 : 1 + Math.floor(random() * 6);
        const args = Array.from({ length: argc }, () => randomArg(random));
        encoded.push(encodeCommand(args).slice());
        if (argc > 0) commands.push(args); // "*0" is skipped
      }
      const stream = new Uint8Array(encoded.reduce((n, e) => n + e.length, 0));
      let offset = 0;
      for (const e of encoded) {
        stream.set(e, offset);
        offset += e.length;
      }
      const cuts = new Set<number>();
      const cutCount = Math.floor(random() * 10);
      for (let k = 0; k < cutCount; k++) cuts.add(Math.floor(random() * stream.length));
      const points = [0, ...[...cuts].sort((a, b) => a - b), stream.length];
      const chunks: Uint8Array[] = [];
      for (let k = 1; k < points.length; k++) if (points[k]! > points[k - 1]!) chunks.push(stream.slice(points[k - 1], points[k]));

      const parsed = parseChunks(chunks, ROOMY);
      const expected = commands.map((args) => args.map(unlatin1));
      if (JSON.stringify(parsed) !== JSON.stringify(expected)) {
        expect({ seed, parsed }).toEqual({ seed, parsed: expected });
      }
    }
  });

  test("random commands fed one byte at a time parse back identical (20 seeds)", () => {
    for (let seed = 1000; seed < 1020; seed++) {
      const random = prng(seed);
      const args = Array.from({ length: 1 + Math.floor(random() * 4) }, () => randomArg(random));
      const parsed = parseChunks(bytewise(encodeCommand(args).slice()), ROOMY);
      expect({ seed, parsed }).toEqual({ seed, parsed: [args.map(unlatin1)] });
    }
  });
});

describe("RespWriter", () => {
  const written = (write: (w: RespWriter) => unknown, resp3 = false) => {
    const w = new RespWriter(8);
    w.resp3 = resp3;
    write(w);
    return unlatin1(w.take());
  };

  test.each([
    [0, ":0\r\n"],
    [9, ":9\r\n"],
    [10, ":10\r\n"],
    [42, ":42\r\n"],
    [-1, ":-1\r\n"],
    [-10, ":-10\r\n"],
    [1234567890, ":1234567890\r\n"],
    [2 ** 53 - 1, ":9007199254740991\r\n"],
    [-(2 ** 53 - 1), ":-9007199254740991\r\n"],
  ])("the integer %p is written as %p", (n, expected) => {
    expect(written((w) => w.integer(n))).toBe(expected);
  });

  test("a bulk is its length, CRLF, the bytes and CRLF, binary-safe", () => {
    expect(written((w) => w.bulk(latin1("hello")))).toBe("$5\r\nhello\r\n");
    expect(written((w) => w.bulk(new Uint8Array(0)))).toBe("$0\r\n\r\n");
    expect(written((w) => w.bulk(latin1("\r\n\0\xff")))).toBe("$4\r\n\r\n\0\xff\r\n");
    expect(written((w) => w.bulkString("é"))).toBe("$2\r\n\xc3\xa9\r\n");
  });

  test("simple strings, OK and arrays", () => {
    expect(written((w) => w.simple("PONG"))).toBe("+PONG\r\n");
    expect(written((w) => w.ok())).toBe("+OK\r\n");
    expect(written((w) => w.array(0))).toBe("*0\r\n");
    expect(written((w) => w.array(2).bulkString("a").integer(1))).toBe("*2\r\n$1\r\na\r\n:1\r\n");
  });

  test("null bulk and null array are $-1 and *-1 in RESP2, _ in RESP3", () => {
    expect(written((w) => w.nullBulk())).toBe("$-1\r\n");
    expect(written((w) => w.nullArray())).toBe("*-1\r\n");
    expect(written((w) => w.nullBulk(), true)).toBe("_\r\n");
    expect(written((w) => w.nullArray(), true)).toBe("_\r\n");
  });

  test("a map is a flat array of pairs in RESP2 and a % map in RESP3", () => {
    expect(written((w) => w.map(2))).toBe("*4\r\n");
    expect(written((w) => w.map(2), true)).toBe("%2\r\n");
    expect(written((w) => w.map(0), true)).toBe("%0\r\n");
  });

  test("a push is an array in RESP2 and a > push in RESP3", () => {
    expect(written((w) => w.push(3))).toBe("*3\r\n");
    expect(written((w) => w.push(3), true)).toBe(">3\r\n");
  });

  test("an error reply has CR and LF replaced so it stays one line", () => {
    expect(written((w) => w.error("ERR bad\r\ntopic\nname\rhere"))).toBe("-ERR bad topic name here\r\n");
    expect(written((w) => w.error("NOAUTH token required"))).toBe("-NOAUTH token required\r\n");
  });

  test("replies are batched in one buffer that grows as needed, and take() resets it", () => {
    const w = new RespWriter(4);
    for (let i = 0; i < 100; i++) w.integer(i);
    const big = new Uint8Array(5000).fill(0x61);
    w.bulk(big);
    const expected = Array.from({ length: 100 }, (_, i) => `:${i}\r\n`).join("") + "$5000\r\n" + "a".repeat(5000) + "\r\n";
    expect(w.length).toBe(expected.length);
    expect(unlatin1(w.take())).toBe(expected);
    expect(w.length).toBe(0);
    w.simple("OK");
    expect(unlatin1(w.take())).toBe("+OK\r\n");
  });

  test("after a reply over 1 MiB the writer still writes correctly", () => {
    const w = new RespWriter();
    const huge = new Uint8Array(3 << 20).fill(0x62);
    w.bulk(huge);
    const out = w.take();
    expect(out.length).toBe(huge.length + `$${huge.length}\r\n\r\n`.length);
    w.integer(7);
    expect(unlatin1(w.take())).toBe(":7\r\n");
  });

  test("encodeCommand writes a multibulk of bulks, numbers as their decimal text", () => {
    expect(unlatin1(encodeCommand(["PUT", "q", 42, latin1("\r\n\0")]))).toBe("*4\r\n$3\r\nPUT\r\n$1\r\nq\r\n$2\r\n42\r\n$3\r\n\r\n\0\r\n");
    expect(unlatin1(encodeCommand([]))).toBe("*0\r\n");
  });
});

describe("RespReader", () => {
  function readAll(bytes: Uint8Array): RespValue[] {
    const reader = new RespReader();
    reader.feed(bytes);
    const out: RespValue[] = [];
    for (let r = reader.next(); r; r = reader.next()) out.push(r.value);
    return out;
  }

  test("writer to reader round trip in RESP2", () => {
    const w = new RespWriter();
    w.simple("OK").error("ERR nope").integer(0).integer(-12).integer(10);
    w.bulk(latin1("a\r\nb\0")).bulk(new Uint8Array(0)).nullBulk().nullArray();
    w.array(3).bulkString("x").array(2).integer(1).integer(2).nullBulk();
    w.map(1).bulkString("k").integer(5);
    w.push(2).bulkString("message").bulkString("hi");
    const values = readAll(w.take().slice());
    expect(values).toEqual([
      "OK",
      new RespErrorValue("ERR nope"),
      0,
      -12,
      10,
      latin1("a\r\nb\0"),
      new Uint8Array(0),
      null,
      null,
      [utf8("x"), [1, 2], null],
      [utf8("k"), 5],
      [utf8("message"), utf8("hi")],
    ]);
  });

  test("writer to reader round trip in RESP3: nulls, maps and pushes", () => {
    const w = new RespWriter();
    w.resp3 = true;
    w.nullBulk().nullArray();
    w.map(2).bulkString("id").integer(3).bulkString("topic").bulkString("q");
    w.push(3).bulkString("message").bulkString("q").bulk(latin1("\xff"));
    const values = readAll(w.take().slice());
    expect(values.slice(0, 3)).toEqual([null, null, [utf8("id"), 3, utf8("topic"), utf8("q")]]);
    expect(values[3]).toBeInstanceOf(RespPush);
    expect((values[3] as RespPush).items).toEqual([utf8("message"), utf8("q"), latin1("\xff")]);
  });

  test("the reader waits for incomplete values and then returns them whole", () => {
    const w = new RespWriter();
    w.array(3).bulkString("hello").array(1).integer(42).simple("done");
    w.error("ERR x");
    const bytes = w.take().slice();
    const reader = new RespReader();
    const values: RespValue[] = [];
    const completedAt: number[] = [];
    for (let i = 0; i < bytes.length; i++) {
      reader.feed(bytes.slice(i, i + 1));
      for (let r = reader.next(); r; r = reader.next()) {
        values.push(r.value);
        completedAt.push(i + 1);
      }
    }
    expect(values).toEqual([[utf8("hello"), [42], "done"], new RespErrorValue("ERR x")]);
    // "*3\r\n$5\r\nhello\r\n*1\r\n:42\r\n+done\r\n" is 31 bytes: nothing comes out before its last one.
    expect(completedAt).toEqual([31, bytes.length]);
  });

  test("the reader returns nothing for an incomplete bulk and keeps its bytes", () => {
    const reader = new RespReader();
    reader.feed(latin1("$10\r\n01234"));
    expect(reader.next()).toBeUndefined();
    expect(reader.next()).toBeUndefined();
    reader.feed(latin1("56789\r\n:1\r\n"));
    expect(reader.next()).toEqual({ value: latin1("0123456789") });
    expect(reader.next()).toEqual({ value: 1 });
    expect(reader.next()).toBeUndefined();
  });

  test("the reader knows RESP3 booleans, doubles, sets and verbatim strings", () => {
    expect(readAll(latin1("#t\r\n#f\r\n,1.5\r\n~2\r\n:1\r\n:2\r\n=7\r\ntxt:abc\r\n"))).toEqual([1, 0, 1.5, [1, 2], latin1("txt:abc")]);
  });

  test("a bulk the reader returns is a copy that survives the input being overwritten", () => {
    const input = latin1("$3\r\nabc\r\n");
    const reader = new RespReader();
    reader.feed(input);
    const value = reader.next()!.value as Uint8Array;
    input.fill(0);
    expect(unlatin1(value)).toBe("abc");
  });
});

describe("socket data arrives as Buffer, whose slice() is a view", () => {
  const limits = { maxBulk: 1024, maxCommandBytes: 4096, maxArgs: 16, maxInline: 1024 };

  test("RespCommand.copy gives bytes of their own, untouched when the read buffer is reused", () => {
    const parser = new RespParser(limits);
    const chunk = Buffer.from(encodeCommand(["PUT", "jobs", "payload"]));
    parser.feed(chunk);
    const command = parser.nextCommand();
    if (command === undefined || isProblem(command)) throw new Error("no command");
    const kept = command.copy(2);
    chunk.fill(0);
    expect(new TextDecoder().decode(kept)).toBe("payload");
  });

  test("detach() copies a Buffer's unparsed bytes and the arguments parsed so far", () => {
    const parser = new RespParser(limits);
    const whole = encodeCommand(["PUT", "jobs", "payload"]);
    const chunk = Buffer.from(whole.subarray(0, whole.length - 5));
    parser.feed(chunk);
    expect(parser.nextCommand()).toBeUndefined();
    parser.detach();
    chunk.fill(0);
    parser.feed(Buffer.from(whole.subarray(whole.length - 5)));
    const command = parser.nextCommand();
    if (command === undefined || isProblem(command)) throw new Error("no command");
    expect(command.toArray().map((a) => new TextDecoder().decode(a))).toEqual(["PUT", "jobs", "payload"]);
  });
});
