// Lease and delayed-nack bookkeeping: the expiry heaps, how many entries in them are live, and
// which leases each streaming consumer holds. The rules for what an ended lease means are the bus's.

import { MinHeap } from "./heap.ts";
import type { Message } from "./message.ts";
import type { Consumer, Delayed, Lease, Topic } from "./topic.ts";

export class LeaseBook {
  /** Leases by expiry. Ended or renewed leases leave stale entries, skipped when due. */
  readonly expiries = new MinHeap<Lease>();
  private liveLeases = 0;
  /** Delayed nacks by release time; purged or deleted ones leave stale entries likewise. */
  readonly releases = new MinHeap<Delayed>();
  private liveDelayed = 0;
  private readonly byConsumer = new Map<Consumer, Set<Lease>>();

  /** Leases `message` (its delivery count already raised) for `length` ms from `now`. */
  grant(topic: Topic, message: Message, length: number, maxDeliveries: number, consumer: Consumer | undefined, now: number): Lease {
    const expires = now + length;
    const lease: Lease = {
      message,
      topic,
      expires,
      length,
      timer: expires,
      maxDeliveries,
      consumer: consumer?.streaming ? consumer : undefined,
      active: true,
    };
    topic.leased.set(message.id, lease);
    this.expiries.push(expires, lease);
    this.liveLeases++;
    // Ended leases leave their entry in the heap until it is due: at a high ack rate that is
    // rate x lease time entries. Compact when they outnumber the live ones, so the heap stays
    // within twice the leases actually held (which the topics' limits bound).
    this.compactExpiries();
    if (lease.consumer) {
      let set = this.byConsumer.get(lease.consumer);
      if (!set) this.byConsumer.set(lease.consumer, (set = new Set()));
      set.add(lease);
    }
    return lease;
  }

  /** Ends a lease's bookkeeping (not its consumer's credit); false when it had already ended. */
  end(lease: Lease): boolean {
    if (!lease.active) return false;
    lease.active = false;
    this.liveLeases--;
    lease.topic.leased.delete(lease.message.id);
    if (lease.consumer) this.byConsumer.get(lease.consumer)?.delete(lease);
    // Its heap entry stays until due (an hour, for a long lease): when leases end in bulk (a
    // consumer nacks or acks everything it held), compaction lets the ended ones go now, rather
    // than holding a dead Lease per returned message (about 100 bytes each) until then.
    this.compactExpiries();
    return true;
  }

  /** The leases a streaming consumer holds, which it no longer does (it is cancelled). */
  takeLeasesOf(consumer: Consumer): Lease[] {
    const leases = this.byConsumer.get(consumer);
    this.byConsumer.delete(consumer);
    return leases ? [...leases] : [];
  }

  /** A lease renewed: it now expires `length` ms after `now`. */
  renew(lease: Lease, length: number, now: number): void {
    lease.length = length;
    lease.expires = now + length;
    // A later expiry needs no new heap entry: due() re-arms the lease when its entry comes due.
    // An earlier one does; the old entry is then stale (skipped, and dropped by compaction).
    if (lease.expires < lease.timer) {
      lease.timer = lease.expires;
      this.expiries.push(lease.expires, lease);
      this.compactExpiries();
    }
  }

  /** Holds a nacked message back until `until`, still owned (and counted) by its topic. */
  delay(topic: Topic, message: Message, until: number): void {
    const delayed: Delayed = { message, topic, until, active: true };
    topic.delayedMessages.add(delayed);
    this.liveDelayed++;
    this.releases.push(until, delayed);
  }

  /** A delayed message is no longer held back (returned or dropped). */
  endDelay(delayed: Delayed): void {
    delayed.active = false;
    delayed.topic.delayedMessages.delete(delayed);
    this.liveDelayed--;
    this.compactReleases();
  }

  /** Leases expired and delayed messages due by `now`, taken off the heaps (still live: the caller ends them). */
  due(now: number): { expired: Lease[]; released: Delayed[] } {
    const expired: Lease[] = [];
    for (let key = this.expiries.peekKey(); key !== undefined && key <= now; key = this.expiries.peekKey()) {
      const lease = this.expiries.pop()!;
      if (!lease.active || key !== lease.timer) continue; // ended, or a stale entry of a renewed lease
      if (lease.expires <= now) {
        expired.push(lease);
      } else {
        lease.timer = lease.expires; // renewed since: wait for the new expiry
        this.expiries.push(lease.expires, lease);
      }
    }
    const released: Delayed[] = [];
    while ((this.releases.peekKey() ?? Infinity) <= now) {
      const delayed = this.releases.pop()!;
      if (delayed.active) released.push(delayed);
    }
    return { expired, released };
  }

  /** Ended or renewed leases leave stale heap entries: drop them once they outnumber the live ones. */
  private compactExpiries(): void {
    if (this.expiries.size > 2 * this.liveLeases + 1024) {
      this.expiries.retain((lease, key) => lease.active && key === lease.timer);
    }
  }

  /** Dropped delayed messages leave stale heap entries: compacted like the lease expiries. */
  compactReleases(): void {
    if (this.releases.size > 2 * this.liveDelayed + 1024) this.releases.retain((delayed) => delayed.active);
  }
}
