// Push frames: the fan-out group's PushEncoder (head and nulls encoded once per topic and form)
// writes exactly the bytes encodePush writes, in every form, and falls back for what it does not
// cache (a dead letter's origin, another RESP version).

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

  test("a writer of the other RESP version gets its own form", () => {
    const m = message("fan");
    const encoder = new PushEncoder("fan", false, false);
    expect(bytes(true, (out) => encoder.write(out, m))).toBe(bytes(true, (out) => encodePush(out, m, false)));
  });
});
