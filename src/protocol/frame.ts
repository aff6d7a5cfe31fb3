// The native message frame, written by the server (GET replies, SUB and ON pushes) and read by the
// client: ["message", topic, payload, id, created, deliveries, originTopic|nil, originId|nil,
// originDeliveries|nil]. See docs/PROTOCOL.md.

import { BusError } from "../core/errors.ts";
import type { Message } from "../core/message.ts";
import type { RespValue } from "./resp-reader.ts";
import { RespWriter } from "./resp-writer.ts";

const encoder = new TextEncoder();
const MESSAGE = encoder.encode("message");

/** The last topic name encoded: a burst of messages names the same topic again and again. */
let topicText = "";
let topicBytes = new Uint8Array(0);

function encodedTopic(topic: string): Uint8Array {
  if (topic !== topicText) {
    topicBytes = encoder.encode(topic);
    topicText = topic;
  }
  return topicBytes;
}

/** Writes `message` as a frame: a reply (an array) or, with `push`, a push. */
export function writeMessage(out: RespWriter, message: Message, push: boolean): void {
  if (push) out.push(9);
  else out.array(9);
  out.bulk(MESSAGE).bulk(encodedTopic(message.topic)).bulk(message.payload);
  out.integer(message.id).integer(message.created).integer(message.deliveries);
  const origin = message.origin;
  if (origin) out.bulkString(origin.topic).integer(origin.id).integer(origin.deliveries);
  else out.nullBulk().nullBulk().nullBulk();
}

/**
 * The push frames of the message being fanned out, one per form (native or Redis `message`,
 * RESP2 or RESP3), each encoded once and copied to every subscriber's buffer, as Redis's
 * pubsub.c shares one reply object among its subscribers. A slot holds the last message of its
 * form (and the delivery count it was encoded with).
 */
const frames = Array.from({ length: 4 }, () => ({
  message: undefined as Message | undefined,
  deliveries: 0,
  out: new RespWriter(256),
  bytes: new Uint8Array(0) as Uint8Array,
}));

/** Appends the push of `message` to `out`: a native frame (SUB, ON) or, with `redisFrame`, Redis's ["message", topic, payload]. */
export function writePush(out: RespWriter, message: Message, redisFrame: boolean): void {
  const slot = frames[(redisFrame ? 2 : 0) + (out.resp3 ? 1 : 0)]!;
  const frame = slot.out;
  if (slot.message !== message || slot.deliveries !== message.deliveries) {
    frame.reset();
    frame.resp3 = out.resp3;
    encodePush(frame, message, redisFrame);
    slot.message = message;
    slot.deliveries = message.deliveries;
    slot.bytes = frame.bytes.subarray(0, frame.length);
  }
  out.raw(slot.bytes);
}

/** Encodes the push of `message` into `out` (in its RESP version): the native frame or, with `redisFrame`, Redis's. */
export function encodePush(out: RespWriter, message: Message, redisFrame: boolean): void {
  if (redisFrame) out.push(3).bulk(MESSAGE).bulk(encodedTopic(message.topic)).bulk(message.payload);
  else writeMessage(out, message, true);
}

/**
 * One topic's pushes in one form (native or Redis frame, RESP2 or RESP3), for a fan-out group: the
 * part every frame shares (its header up to the payload, and a native frame's three nulls when
 * there is no origin) encoded once, so a message costs its payload and three integers.
 */
export class PushEncoder {
  private readonly head: Uint8Array;
  private readonly nulls: Uint8Array;

  constructor(
    private readonly topic: string,
    private readonly redisFrame: boolean,
    private readonly resp3: boolean,
  ) {
    const out = new RespWriter(256);
    out.resp3 = resp3;
    out
      .push(redisFrame ? 3 : 9)
      .bulk(MESSAGE)
      .bulkString(topic);
    this.head = out.take().slice();
    this.nulls = out.nullBulk().nullBulk().nullBulk().take().slice();
  }

  /** Appends the push of `message` (a message of this topic) to `out`, whose RESP version is this encoder's. */
  write(out: RespWriter, message: Message): void {
    if (message.topic !== this.topic || out.resp3 !== this.resp3 || (!this.redisFrame && message.origin)) {
      encodePush(out, message, this.redisFrame);
      return;
    }
    // One bounds check for the frame, then its fields by hand (copies of the head, the payload
    // and the nulls, one digit loop per number): less to run per message, and less for the JIT to
    // compile (this method's optimized code: 7.5 -> 4.9 KB, its FTL compile ~28 -> ~9 ms).
    const { head, nulls } = this;
    const payload = message.payload;
    const buf = out.room(head.length + payload.length + nulls.length + 4 * NUMBER_MAX);
    let at = out.length;
    buf.set(head, at);
    at = decimal(buf, at + head.length, 36, payload.length); // $
    buf.set(payload, at);
    at += payload.length;
    buf[at++] = CR;
    buf[at++] = LF;
    if (!this.redisFrame) {
      at = decimal(buf, at, 58, message.id); // :
      at = decimal(buf, at, 58, message.created);
      at = decimal(buf, at, 58, message.deliveries);
      buf.set(nulls, at);
      at += nulls.length;
    }
    out.commit(at);
  }
}

const CR = 13;
const LF = 10;
/** The most bytes decimal() writes: a prefix, 16 digits (2^53), CRLF. */
const NUMBER_MAX = 19;
/** 10^i, for counting a number's digits without dividing. */
const POWERS = Array.from({ length: 16 }, (_, i) => 10 ** i);

/** Writes `prefix`, the whole number `n` (0 to 2^53) in decimal, CRLF at `at`; returns the end. */
function decimal(buf: Uint8Array, at: number, prefix: number, n: number): number {
  buf[at++] = prefix;
  let digits = 1;
  while (digits < 16 && n >= POWERS[digits]!) digits++;
  const end = at + digits;
  for (let i = end - 1; i >= at; i--) {
    const q = Math.floor(n / 10);
    buf[i] = 48 + (n - q * 10);
    n = q;
  }
  buf[end] = CR;
  buf[end + 1] = LF;
  return end + 2;
}

/** A message as a frame carries it. */
export interface FrameMessage {
  id: number;
  topic: string;
  created: number;
  deliveries: number;
  payload: Uint8Array;
  /** For a dead-letter message: where it came from and how often it was delivered there. */
  origin?: { topic: string; id: number; deliveries: number };
}

/** Whether a reply is a message frame; elements past the ninth, added later, are ignored. */
export function isMessageFrame(value: RespValue): value is RespValue[] {
  return Array.isArray(value) && value.length >= 8 && value[0] instanceof Uint8Array && isWord(value[0], "message");
}

function isWord(bytes: Uint8Array, word: string): boolean {
  if (bytes.length !== word.length) return false;
  for (let i = 0; i < word.length; i++) if (bytes[i] !== word.charCodeAt(i)) return false;
  return true;
}

const decoder = new TextDecoder();

/** A frame's message; BAD_REQUEST when its fields are not what a frame holds. */
export function readMessage(frame: RespValue[]): FrameMessage {
  const [, topic, payload, id, created, deliveries, originTopic, originId, originDeliveries] = frame;
  if (
    !(topic instanceof Uint8Array) ||
    !(payload instanceof Uint8Array) ||
    typeof id !== "number" ||
    typeof created !== "number" ||
    typeof deliveries !== "number"
  ) {
    throw new BusError("BAD_REQUEST", "the server sent a malformed message frame");
  }
  const message: FrameMessage = { id, topic: decoder.decode(topic), created, deliveries, payload };
  if (originTopic instanceof Uint8Array && typeof originId === "number")
    message.origin = { topic: decoder.decode(originTopic), id: originId, deliveries: typeof originDeliveries === "number" ? originDeliveries : 0 };
  return message;
}
