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
 * there is no origin) encoded once, so a message costs its payload and three integers. The
 * integers are written from the text of the last ones (Digits): a burst of messages has ids one
 * apart and times, lengths and delivery counts that repeat.
 */
export class PushEncoder {
  private readonly head: Uint8Array;
  private readonly nulls: Uint8Array;
  private readonly length = new Digits(36); // $
  private readonly id = new Digits(58); // :
  private readonly created = new Digits(58);
  private readonly deliveries = new Digits(58);

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
    this.writeFields(out, message.id, message.created, message.deliveries, message.payload, 0, message.payload.length);
  }

  /**
   * Appends the push of a message of this topic with no origin, whose payload is bytes[start, end)
   * (a range of the topic's queue: no view of it is made), to `out`, whose RESP version is this
   * encoder's.
   */
  writeFields(out: RespWriter, id: number, created: number, deliveries: number, bytes: Uint8Array, start: number, end: number): void {
    // One bounds check for the frame, then its fields by hand: the head, the payload and the
    // nulls copied, each number from its Digits. Less to run per message, and less for the JIT
    // to compile (by hand rather than through RespWriter's methods: 7.5 -> 4.9 KB of optimized code).
    const { head, nulls } = this;
    const length = end - start;
    const buf = out.room(head.length + length + nulls.length + 4 * NUMBER_MAX);
    let at = copyInto(buf, out.length, head, 0, head.length);
    at = this.length.write(buf, at, length);
    at = copyInto(buf, at, bytes, start, end);
    buf[at++] = CR;
    buf[at++] = LF;
    if (!this.redisFrame) {
      at = this.id.write(buf, at, id);
      at = this.created.write(buf, at, created);
      at = this.deliveries.write(buf, at, deliveries);
      at = copyInto(buf, at, nulls, 0, nulls.length);
    }
    out.commit(at);
  }
}

const CR = 13;
const LF = 10;
/** The most bytes a number takes in a frame: a prefix, 16 digits (2^53), CRLF. */
const NUMBER_MAX = 19;
/** Below this a byte loop beats the native copy's call (as in the packed queue's copyRange). */
const COPY_LOOP_MAX = 32;
/** Buffer.prototype.copy takes any Uint8Array as its source, and a range of it: no view made. */
const bufferCopy = Buffer.prototype.copy;

/** Copies source[start, end) into target at `at`, without making a view; returns the end. */
function copyInto(target: Uint8Array, at: number, source: Uint8Array, start: number, end: number): number {
  if (end - start <= COPY_LOOP_MAX) {
    for (let i = start; i < end; i++) target[at++] = source[i]!;
    return at;
  }
  bufferCopy.call(source, target, at, start, end);
  return at + end - start;
}

/**
 * One integer field of a run of frames (`prefix`, the number in decimal, CRLF), kept as the text
 * of the last number written: the same number again is a copy of its digits, the next one up
 * (ids) carries in place. Only a number unlike the last one is divided into digits, which for a
 * millisecond time is 13 dependent divisions (some 100 ns).
 */
class Digits {
  /** The last number written (-1: none yet) and its decimal digits, text[0, size). */
  private last = -1;
  private readonly text = new Uint8Array(16);
  private size = 0;

  constructor(private readonly prefix: number) {}

  /** Writes the field for `n`, a whole number from 0 to 2^53, into `buf` at `at`; returns the end. */
  write(buf: Uint8Array, at: number, n: number): number {
    const text = this.text;
    if (n !== this.last) {
      if (n === this.last + 1 && this.last >= 0 && this.carry()) this.last = n;
      else this.encode(n);
    }
    buf[at++] = this.prefix;
    const size = this.size;
    for (let i = 0; i < size; i++) buf[at++] = text[i]!;
    buf[at] = CR;
    buf[at + 1] = LF;
    return at + 2;
  }

  /** Adds one to the digits in place; false (nothing changed) when that takes one digit more. */
  private carry(): boolean {
    const text = this.text;
    let i = this.size - 1;
    while (i >= 0 && text[i] === 57) i--; // trailing 9s
    if (i < 0) return false;
    text[i] = text[i]! + 1;
    for (let k = i + 1; k < this.size; k++) text[k] = 48;
    return true;
  }

  private encode(n: number): void {
    let digits = 1;
    while (digits < 16 && n >= POWERS[digits]!) digits++;
    const text = this.text;
    let rest = n;
    for (let i = digits - 1; i >= 0; i--) {
      const q = Math.floor(rest / 10);
      text[i] = 48 + (rest - q * 10);
      rest = q;
    }
    this.size = digits;
    this.last = n;
  }
}

/** 10^i, for counting a number's digits without dividing. */
const POWERS = Array.from({ length: 16 }, (_, i) => 10 ** i);

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
