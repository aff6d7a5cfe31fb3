// Push frames: the fan-out group's PushEncoder (head and nulls encoded once per topic and form)
// writes exactly the bytes encodePush writes, in every form, and falls back for what it does not
// cache (a dead letter's origin, another RESP version); numbers written from the last ones' text
// (Digits) are the numbers given.

import { describe, expect, test } from "bun:test";
import type { Message } from "../../src/core/message.ts";
import { encodePush, PushEncoder } from "../../src/protocol/frame.ts";
import { RespWriter } from "../../src/protocol/resp-writer.ts";

const payload = new TextEncoder().encode("héllo\r\nworld");

function message(topic: string, origin?: Message["origin"]): Message {
  return { id: 1234567, topic, created: 1764500000123, payload, deliveries: 2, origin };
}

function bytes(resp3: boolean, write: (out: RespWriter) => void): string {
  const out = new RespWriter(16);
  out.resp3 = resp3;
  write(out);
  return Buffer.from(out.take()).toString("latin1");
}

describe("PushEncoder", () => {
  for (const redisFrame of [false, true])
    for (const resp3 of [false, true])
      test(`${redisFrame ? "Redis" : "native"} frame, RESP${resp3 ? 3 : 2}: the bytes encodePush writes`, () => {
        for (const m of [message("fan"), message("jobs.dead", { topic: "jobs", id: 7, deliveries: 5 }), message("tëst/ünicode")]) {
          const encoder = new PushEncoder(m.topic, redisFrame, resp3);
          const expected = bytes(resp3, (out) => encodePush(out, m, redisFrame));
          expect(bytes(resp3, (out) => encoder.write(out, m))).toBe(expected);
          // Twice in a row into one buffer: nothing carried over between messages.
          const twice = (out: RespWriter) => {
            encoder.write(out, m);
            encoder.write(out, m);
          };
          expect(bytes(resp3, twice)).toBe(expected + expected);
        }
      });

  test("numbers of every length, an empty and a large payload: the bytes encodePush writes", () => {
    const numbers = [0, 1, 9, 10, 99, 100, 12345, 999999999, 1000000000, 1764500000123, 2 ** 53 - 1];
    const payloads = [new Uint8Array(0), payload, new Uint8Array(70000).fill(120)];
    for (const resp3 of [false, true])
      for (const redisFrame of [false, true]) {
        const encoder = new PushEncoder("fan", redisFrame, resp3);
        numbers.forEach((n, i) => {
          const m: Message = {
            id: n,
            topic: "fan",
            created: numbers[numbers.length - 1 - i]!,
            payload: payloads[i % payloads.length]!,
            deliveries: n,
            origin: undefined,
          };
          // A writer that starts small: the frame's room grows it.
          expect(bytes(resp3, (out) => encoder.write(out, m))).toBe(bytes(resp3, (out) => encodePush(out, m, redisFrame)));
        });
      }
  });

  test("runs of numbers (ids one apart across 9 -> 10 and 999 -> 1000, repeated and falling times, 2^53): the bytes encodePush writes", () => {
    const ids = [0, 1, 2, 8, 9, 10, 11, 98, 99, 100, 101, 999, 1000, 1000, 7, 8, 2 ** 53 - 2, 2 ** 53 - 1, 2 ** 53, 5];
    const times = [5, 5, 5, 6, 1764500000123, 1764500000123, 1764500000124, 9, 9, 10, 0, 0, 99, 100, 100, 2 ** 53, 2 ** 53, 1, 1, 0];
    for (const resp3 of [false, true]) {
      const encoder = new PushEncoder("fan", false, resp3);
      ids.forEach((id, i) => {
        const m: Message = { id, topic: "fan", created: times[i]!, payload, deliveries: i % 3 === 0 ? 0 : 10 ** (i % 16), origin: undefined };
        expect(bytes(resp3, (out) => encoder.write(out, m))).toBe(bytes(resp3, (out) => encodePush(out, m, false)));
      });
    }
  });

  test("writeFields: a payload given as a range of a larger array, as a queue chunk lends it", () => {
    const chunk = new Uint8Array(300).fill(46);
    chunk.set(payload, 123);
    for (const redisFrame of [false, true])
      for (const resp3 of [false, true]) {
        const encoder = new PushEncoder("fan", redisFrame, resp3);
        const m: Message = { id: 41, topic: "fan", created: 1764500000123, payload, deliveries: 0, origin: undefined };
        const expected = bytes(resp3, (out) => encodePush(out, m, redisFrame));
        expect(bytes(resp3, (out) => encoder.writeFields(out, 41, 1764500000123, 0, chunk, 123, 123 + payload.length))).toBe(expected);
        // A payload longer than the byte loop copies (the native copy of a range).
        const long = new Uint8Array(1000).fill(7);
        long.set(payload, 500);
        const big = new Uint8Array(400).fill(120);
        long.set(big, 100);
        const m2 = { ...m, id: 42, payload: big };
        expect(bytes(resp3, (out) => encoder.writeFields(out, 42, m.created, 0, long, 100, 500))).toBe(bytes(resp3, (out) => encodePush(out, m2, redisFrame)));
      }
  });

  test("a writer of the other RESP version gets its own form", () => {
    const m = message("fan");
    const encoder = new PushEncoder("fan", false, false);
    expect(bytes(true, (out) => encoder.write(out, m))).toBe(bytes(true, (out) => encodePush(out, m, false)));
  });
});
