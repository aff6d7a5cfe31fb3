// The bus's limits and their defaults: the one place a default is written (config.ts shows
// these in --help and resolves flags over them).

export type OverflowPolicy = "drop-oldest" | "reject";

export interface BusLimits {
  /** Largest payload in bytes. */
  maxMessageSize: number;
  /** Most messages a topic holds (queued + leased + delayed). */
  maxQueue: number;
  /** Most bytes a topic holds, payload plus per-message overhead. */
  maxQueueBytes: number;
  /** Global budget over every topic, same measure. */
  maxMemory: number;
  /** What a write to a full topic does. Dead-letter topics always drop their oldest. */
  overflow: OverflowPolicy;
  /** Queued messages older than this (ms) expire; 0 keeps them until consumed or dropped. */
  maxAge: number;
  /** Lease time in ms when a consumer asks for a lease without saying how long. */
  defaultLease: number;
  /** Deliveries before a returned message goes to `<topic>.dead`, unless the consumer says. */
  maxDeliveries: number;
  /** Most topics in use at once (holding a message, a subscriber or a consumer); idle ones do not count. */
  maxTopics: number;
  /** Most last ids of let-go topics remembered by name; older ones raise a bus-wide id floor. */
  maxTombstones: number;
}

const MiB = 1048576;

export const DEFAULT_LIMITS: Readonly<BusLimits> = {
  maxMessageSize: MiB,
  maxQueue: 100000,
  maxQueueBytes: 64 * MiB,
  maxMemory: 256 * MiB,
  overflow: "drop-oldest",
  maxAge: 0,
  defaultLease: 30000,
  maxDeliveries: 5,
  maxTopics: 10000,
  maxTombstones: 10000,
};
