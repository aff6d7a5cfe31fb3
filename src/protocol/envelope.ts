// The JSON envelope of a message, one shape wherever JSON carries messages (HTTP `?json`,
// SSE and WebSocket `?json`, the CLI's --json): text payloads as they are, other bytes base64.

import { isUtf8 } from "node:buffer";

/** What an envelope is made from (a core Message fits). */
export interface EnvelopeSource {
  readonly id: number;
  readonly topic: string;
  readonly created: number;
  readonly deliveries: number;
  readonly payload: Uint8Array;
  readonly origin?: { readonly topic: string; readonly id: number; readonly deliveries: number };
}

export interface Envelope {
  id: number;
  topic: string;
  created: number;
  deliveries: number;
  payload: string;
  /** Present when the payload is not UTF-8: `payload` is then base64. */
  encoding?: "base64";
  /** For a message in a dead-letter topic: where it came from, and how often it was delivered there. */
  origin?: { topic: string; id: number; deliveries: number };
}

const decoder = new TextDecoder();

/** The payload as envelope text: itself when it is UTF-8, else base64 with the marker. */
export function payloadText(payload: Uint8Array): { payload: string; encoding?: "base64" } {
  if (isUtf8(payload)) return { payload: decoder.decode(payload) };
  return { payload: Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength).toString("base64"), encoding: "base64" };
}

export function toEnvelope(message: EnvelopeSource): Envelope {
  const envelope: Envelope = {
    id: message.id,
    topic: message.topic,
    created: message.created,
    deliveries: message.deliveries,
    ...payloadText(message.payload),
  };
  if (message.origin) envelope.origin = { topic: message.origin.topic, id: message.origin.id, deliveries: message.origin.deliveries };
  return envelope;
}

/** The envelope as one line of JSON (no newline inside: JSON escapes them). */
export function encodeEnvelope(message: EnvelopeSource, type?: string): string {
  return JSON.stringify(type ? { type, ...toEnvelope(message) } : toEnvelope(message));
}

/** Reads an envelope back; throws a plain Error when `value` is not one. */
export function decodeEnvelope(value: unknown): EnvelopeSource {
  const v = value as Partial<Envelope> | null;
  if (!v || typeof v !== "object" || typeof v.id !== "number" || typeof v.topic !== "string" || typeof v.payload !== "string") {
    throw new Error("not a message envelope");
  }
  const payload = v.encoding === "base64" ? new Uint8Array(Buffer.from(v.payload, "base64")) : new TextEncoder().encode(v.payload);
  const o = v.origin;
  const origin =
    o && typeof o.topic === "string" && typeof o.id === "number"
      ? { topic: o.topic, id: o.id, deliveries: typeof o.deliveries === "number" ? o.deliveries : 0 }
      : undefined;
  return {
    id: v.id,
    topic: v.topic,
    created: typeof v.created === "number" ? v.created : 0,
    deliveries: typeof v.deliveries === "number" ? v.deliveries : 0,
    payload,
    ...(origin ? { origin } : {}),
  };
}
