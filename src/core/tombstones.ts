// What the bus remembers of topics it let go: each one's last id, so that a topic written again
// never reuses an id. Bounded: past the limit the oldest are forgotten into an id floor.

/**
 * name -> last id of topics that were written and then reclaimed or deleted. Past `limit`
 * entries the oldest is forgotten: its last id raises `floor`, and its name goes into a Bloom
 * filter. A topic created later starts at its tombstone's id, else above the floor when the filter
 * says it may have been forgotten, else at 1. The filter can only err towards the floor (a
 * genuinely new topic starting above 1), never towards reuse.
 */
export class Tombstones {
  private readonly lastIds = new Map<string, number>();
  /** The highest last id of a forgotten topic. */
  private floor = 0;
  private readonly forgotten = new BloomFilter();

  constructor(private readonly limit: number) {}

  get size(): number {
    return this.lastIds.size;
  }

  /** Remembers a topic's last id (topics with no id given yet need no tombstone). */
  bury(name: string, lastId: number): void {
    if (lastId <= 0) return;
    this.lastIds.delete(name); // re-inserted as the newest
    this.lastIds.set(name, lastId);
    if (this.lastIds.size <= this.limit) return;
    const [oldest, oldestId] = this.lastIds.entries().next().value as [string, number];
    this.lastIds.delete(oldest);
    if (oldestId > this.floor) this.floor = oldestId;
    this.forgotten.add(oldest);
  }

  /** The last id a topic of this name, created now, continues from; its tombstone goes. */
  raise(name: string): number {
    const lastId = this.lastIds.get(name);
    if (lastId !== undefined) {
      this.lastIds.delete(name);
      return lastId;
    }
    return this.floor > 0 && this.forgotten.mayHave(name) ? this.floor : 0;
  }
}

/** 2^20 bits (128 KiB), 4 probes: about 1% false positives after 100,000 forgotten names. */
class BloomFilter {
  private readonly bits = new Uint32Array(1 << 15);

  add(name: string): void {
    for (const bit of this.probes(name)) this.bits[bit >>> 5]! |= 1 << (bit & 31);
  }

  mayHave(name: string): boolean {
    for (const bit of this.probes(name)) if ((this.bits[bit >>> 5]! & (1 << (bit & 31))) === 0) return false;
    return true;
  }

  /** Four bit positions from two FNV-1a style hashes (double hashing). */
  private probes(name: string): number[] {
    let h1 = 0x811c9dc5;
    let h2 = 0x01000193;
    for (let i = 0; i < name.length; i++) {
      const c = name.charCodeAt(i);
      h1 = Math.imul(h1 ^ c, 0x01000193);
      h2 = Math.imul(h2 ^ c, 0x5bd1e995) ^ (h2 >>> 15);
    }
    const mask = (1 << 20) - 1;
    return [0, 1, 2, 3].map((k) => (h1 + Math.imul(k, h2 | 1)) & mask);
  }
}
