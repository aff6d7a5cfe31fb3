// SSE framing and the JSON envelope as pure functions: what the server writes, what the parser
// reads back (at every split, with every line ending), and exact round trips of any payload.

import { describe, expect, test } from "bun:test";
import { decodeEnvelope, encodeEnvelope, toEnvelope } from "../../src/protocol/envelope.ts";
import { BASE64_EVENT, SseParser, encodeComment, encodeEvent, encodeMessageEvent, type SseEvent } from "../../src/protocol/sse.ts";

const bytes = (s: string) => new TextEncoder().encode(s);
const message = (payload: Uint8Array, id = 7) => ({ id, topic: "t", created: 1700000000000, deliveries: 0, payload });

/** Parses a whole stream fed in the given pieces. */
function parse(pieces: (string | Uint8Array)[]): SseEvent[] {
  const parser = new SseParser();
  return pieces.flatMap((p) => parser.feed(p));
}

/** Every way of cutting `stream` in two, plus byte by byte. */
function splits(stream: Uint8Array): Uint8Array[][] {
  const ways: Uint8Array[][] = [[...stream].map((b) => new Uint8Array([b]))];
  for (let i = 0; i <= stream.length; i++) ways.push([stream.subarray(0, i), stream.subarray(i)]);
  return ways;
}

/** A small deterministic generator, so a failure can be replayed. */
function random(seed: number): () => number {
  let s = seed;
  return () => {
    s = (s * 1103515245 + 12345) & 0x7fffffff;
    return s / 0x7fffffff;
  };
}

describe("encoding events", () => {
  test("an event is id, then data, then a blank line; the default event type is left out", () => {
    expect(encodeEvent({ id: 3, data: "hello" })).toBe("id: 3\ndata: hello\n\n");
    expect(encodeEvent({ data: "x", event: "message" })).toBe("data: x\n\n");
    expect(encodeEvent({ data: "x", event: "ping", retry: 500 })).toBe("event: ping\nretry: 500\ndata: x\n\n");
  });

  test("every line of the data gets its own data: line, whatever ended it", () => {
    expect(encodeEvent({ data: "a\nb\r\nc\rd" })).toBe("data: a\ndata: b\ndata: c\ndata: d\n\n");
    expect(encodeEvent({ data: "" })).toBe("data: \n\n");
    expect(encodeEvent({ data: "end\n" })).toBe("data: end\ndata: \n\n");
  });

  test("a comment cannot break out of its line", () => {
    expect(encodeComment("ping")).toBe(": ping\n\n");
    expect(encodeComment("a\r\nb")).toBe(": a b\n\n");
  });

  test("a text payload goes as it is; one with a CR or not UTF-8 goes as an event: base64", () => {
    expect(encodeMessageEvent(message(bytes("21.5")), false)).toBe("id: 7\ndata: 21.5\n\n");
    expect(encodeMessageEvent(message(bytes("a\nb")), false)).toBe("id: 7\ndata: a\ndata: b\n\n");
    expect(encodeMessageEvent(message(bytes("a\r\nb")), false)).toBe(`id: 7\nevent: ${BASE64_EVENT}\ndata: ${btoa("a\r\nb")}\n\n`);
    expect(encodeMessageEvent(message(new Uint8Array([0xff])), false)).toBe(`id: 7\nevent: ${BASE64_EVENT}\ndata: /w==\n\n`);
  });

  test("json mode puts the whole envelope on one data: line", () => {
    const event = encodeMessageEvent(message(bytes("two\nlines")), true);
    expect(event).toBe(`id: 7\ndata: {"id":7,"topic":"t","created":1700000000000,"deliveries":0,"payload":"two\\nlines"}\n\n`);
  });
});

describe("the envelope", () => {
  test("text stays text; other bytes are base64 with a marker; a dead letter names its origin", () => {
    expect(toEnvelope(message(bytes("héllo")))).toEqual({ id: 7, topic: "t", created: 1700000000000, deliveries: 0, payload: "héllo" });
    expect(toEnvelope(message(new Uint8Array([0, 0xff])))).toMatchObject({ payload: "AP8=", encoding: "base64" });
    const dead = { ...message(bytes("x")), origin: { topic: "jobs", id: 3, deliveries: 5 } };
    expect(JSON.parse(encodeEnvelope(dead, "message"))).toMatchObject({ type: "message", origin: { topic: "jobs", id: 3, deliveries: 5 } });
    expect(decodeEnvelope(JSON.parse(encodeEnvelope(dead))).origin).toEqual({ topic: "jobs", id: 3, deliveries: 5 });
  });

  test("decoding refuses what is not an envelope", () => {
    expect(() => decodeEnvelope(null)).toThrow();
    expect(() => decodeEnvelope({ id: "1", topic: "t", payload: "" })).toThrow();
    expect(() => decodeEnvelope({ id: 1, topic: "t" })).toThrow();
  });

  test("any payload survives encode -> JSON -> decode byte for byte", () => {
    const next = random(42);
    for (let i = 0; i < 500; i++) {
      const payload = new Uint8Array(Math.floor(next() * 64));
      // Mostly ASCII, sometimes any byte: both envelope forms get exercised.
      const binary = next() < 0.5;
      for (let j = 0; j < payload.length; j++) payload[j] = binary ? Math.floor(next() * 256) : 32 + Math.floor(next() * 95);
      const back = decodeEnvelope(JSON.parse(encodeEnvelope(message(payload, i + 1))));
      expect(back.id).toBe(i + 1);
      expect(Buffer.from(back.payload).equals(Buffer.from(payload))).toBe(true);
    }
  });
});

describe("parsing a stream", () => {
  const stream = bytes(": hello\n\nid: 1\ndata: a\n\nid: 2\nevent: base64\ndata: /w==\n\ndata: x\ndata: y\n\n");
  const expected: SseEvent[] = [
    { type: "message", id: "1", data: "a" },
    { type: "base64", id: "2", data: "/w==" },
    { type: "message", id: "2", data: "x\ny" },
  ];

  test("events come out the same at every split of the stream, and byte by byte", () => {
    for (const pieces of splits(stream)) expect(parse(pieces)).toEqual(expected);
  });

  test("CRLF, CR and LF all end lines, also when a CRLF is split between chunks", () => {
    const crlf = bytes(new TextDecoder().decode(stream).replace(/\n/g, "\r\n"));
    const cr = bytes(new TextDecoder().decode(stream).replace(/\n/g, "\r"));
    for (const variant of [crlf, cr]) for (const pieces of splits(variant)) expect(parse(pieces)).toEqual(expected);
  });

  test("a CR, then an empty chunk, then LF: still one line end", () => {
    const parser = new SseParser();
    expect(parser.feed(bytes("data: a\r"))).toEqual([]);
    expect(parser.feed(new Uint8Array(0))).toEqual([]);
    // Were the CR forgotten, this LF would end a second, empty line and dispatch "a" too early.
    expect(parser.feed(bytes("\n"))).toEqual([]);
    expect(parser.feed(bytes("\n"))).toEqual([{ type: "message", id: "", data: "a" }]);
  });

  test("a byte-order mark at the start is skipped; a multi-byte character may be split anywhere", () => {
    const withBom = new Uint8Array([0xef, 0xbb, 0xbf, ...bytes("data: héllo ✓\n\n")]);
    for (const pieces of splits(withBom)) expect(parse(pieces)).toEqual([{ type: "message", id: "", data: "héllo ✓" }]);
  });

  test("fields follow the format's rules: no space after the colon, no colon at all, unknown fields, ids with NUL", () => {
    expect(parse(["data:tight\n\n"])).toEqual([{ type: "message", id: "", data: "tight" }]);
    expect(parse(["data:  two spaces\n\n"])).toEqual([{ type: "message", id: "", data: " two spaces" }]);
    expect(parse(["data\n\n"])).toEqual([{ type: "message", id: "", data: "" }]);
    expect(parse(["whatever: x\ndata: y\n\n"])).toEqual([{ type: "message", id: "", data: "y" }]);
    expect(parse(["id: 5\ndata: a\n\nid: 6\0\ndata: b\n\n"]).map((e) => e.id)).toEqual(["5", "5"]);
  });

  test("an event without data is not dispatched, and neither is an unfinished one", () => {
    expect(parse(["event: lonely\n\n", "id: 9\n\n"])).toEqual([]);
    const parser = new SseParser();
    expect(parser.feed("data: half")).toEqual([]);
    expect(parser.feed("\n")).toEqual([]);
    expect(parser.lastEventId).toBe("");
    expect(parser.feed("\n")).toEqual([{ type: "message", id: "", data: "half" }]);
  });

  test("retry: sets the reconnection time", () => {
    const parser = new SseParser();
    parser.feed("retry: 2500\n\nretry: soon\n\n");
    expect(parser.reconnectMs).toBe(2500);
  });

  test("what the server encodes, the parser reads back: random payloads in both modes", () => {
    const next = random(7);
    const messages = Array.from({ length: 200 }, (_, i) => {
      const payload = new Uint8Array(Math.floor(next() * 40));
      for (let j = 0; j < payload.length; j++) payload[j] = next() < 0.9 ? 32 + Math.floor(next() * 95) : [10, 13, 0xff, 0xc3][Math.floor(next() * 4)]!;
      return message(payload, i + 1);
    });
    for (const json of [false, true]) {
      const wire = bytes(messages.map((m) => encodeMessageEvent(m, json)).join(""));
      // Random cuts, as a network would make them.
      const pieces: Uint8Array[] = [];
      for (let at = 0; at < wire.length; ) {
        const size = 1 + Math.floor(next() * 50);
        pieces.push(wire.subarray(at, at + size));
        at += size;
      }
      const events = parse(pieces);
      expect(events.length).toBe(messages.length);
      for (const [i, event] of events.entries()) {
        const sent = messages[i]!.payload;
        expect(event.id).toBe(String(i + 1));
        let received: Uint8Array;
        if (json) received = decodeEnvelope(JSON.parse(event.data)).payload;
        else if (event.type === BASE64_EVENT) received = new Uint8Array(Buffer.from(event.data, "base64"));
        else received = bytes(event.data);
        expect(Buffer.from(received).equals(Buffer.from(sent))).toBe(true);
      }
    }
  });
});
