// The message as the bus keeps and hands it out.

export interface Message {
  /** Per-topic sequence number: starts at 1, strictly increasing, never reused. */
  readonly id: number;
  readonly topic: string;
  /** Server time in ms when the message was written. */
  readonly created: number;
  /** Bytes, delivered byte-for-byte. */
  readonly payload: Uint8Array;
  /** How many times it has been handed to a consumer (raised on every take). */
  deliveries: number;
  /** For a message in a dead-letter topic: where it came from, and how often it was delivered there. */
  readonly origin?: Origin;
}

export interface Origin {
  readonly topic: string;
  readonly id: number;
  readonly deliveries: number;
}

/**
 * What every message counts beyond its payload against the limits. A packed queued message holds
 * one to a few bytes more than its payload; the rest covers chunk slack and the heap's headroom.
 */
export const MESSAGE_OVERHEAD = 96;

/**
 * What a message held as an object counts on top of messageCost: a leased one (its Message, its
 * own payload copy, its Lease, its entries in the topic's lease map and the expiry heap), a
 * delayed one, one put back at the head of its queue, or an external queue entry (a payload too
 * large to pack, a dead letter). Measured (docs/ARCHITECTURE.md, Time and memory), rounded up.
 */
export const OBJECT_OVERHEAD = 500;

export function messageCost(payloadLength: number): number {
  return payloadLength + MESSAGE_OVERHEAD;
}
