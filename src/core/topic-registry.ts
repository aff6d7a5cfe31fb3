// Which topics exist: created on first use under the topic limit, let go when they hold nothing
// and nobody, and remembered by their last id (tombstones.ts) so that ids never go back.

import { Deque } from "./deque.ts";
import { BusError } from "./errors.ts";
import { Tombstones } from "./tombstones.ts";
import { Topic } from "./topic.ts";
import { checkTopicName } from "./topic-name.ts";

/**
 * Only topics in use count against `maxTopics`. A topic that was never written is dropped as soon
 * as it is idle (its last reader left); a written one stays listed, with its counters, until a new
 * topic needs its place: then the one idle the longest becomes a tombstone.
 */
export class TopicRegistry {
  private readonly live = new Map<string, Topic>();
  /** Written topics that hold nothing and nobody (their `listedIdle` is set). */
  private idleCount = 0;
  /**
   * Each listing gives the topic the next stamp (`idleStamp`): the lowest stamp is the topic idle
   * the longest. A topic listed again with nothing listed since keeps its stamp (its place is the
   * same), so a queue drained over and over costs two field writes per message.
   */
  private stamp = 0;
  /**
   * The idle order, built only once a place is needed (the registry is full) and dropped once it
   * is half empty: entry i is idleTopics[i], listed at idleStamps[i], longest ago first. While
   * built, each new listing is pushed; a topic used again only clears its flag and its entry goes
   * stale (an entry is live while `topic.listedIdle && topic.idleStamp === stamp`). Stale entries
   * are skipped when a place is needed and compacted away once they outnumber the live ones.
   */
  private ordered = false;
  private readonly idleTopics = new Deque<Topic>();
  private readonly idleStamps = new Deque<number>();
  private readonly tombstones: Tombstones;

  constructor(
    private readonly maxTopics: number,
    maxTombstones: number,
    private readonly now: () => number,
  ) {
    this.tombstones = new Tombstones(maxTombstones);
  }

  get(name: string): Topic | undefined {
    return this.live.get(name);
  }

  values(): IterableIterator<Topic> {
    return this.live.values();
  }

  /** Topics that count against the limit: those holding something or someone. */
  get inUse(): number {
    return this.live.size - this.idleCount;
  }

  /** Throws BUS_FULL, creating nothing, unless every named topic can be in use at once. */
  reserve(names: Iterable<string>): void {
    let needed = 0;
    for (const name of new Set(names)) {
      const topic = this.live.get(name);
      if (!topic || topic.listedIdle) needed++;
    }
    if (needed > 0 && this.inUse + needed > this.maxTopics) throw this.full();
  }

  /**
   * The topic of that name, created on first use, about to be used: it leaves the idle list, so
   * the caller must `settle` it once done. Only names that pass checkTopicName get one.
   */
  use(name: string, restoring = false): Topic {
    let topic = this.live.get(name);
    if (topic) {
      if (topic.listedIdle) this.unlist(topic);
      return topic;
    }
    checkTopicName(name);
    if (!restoring) this.makeRoom();
    topic = new Topic(name);
    topic.lastId = this.tombstones.raise(name);
    topic.lastCounted.at = this.now();
    this.live.set(name, topic);
    return topic;
  }

  /** After a change to `topic`: an idle one is let go (never written) or listed as idle. */
  settle(topic: Topic): void {
    if (!topic.idle) {
      if (topic.listedIdle) this.unlist(topic);
      return;
    }
    if (topic.listedIdle || this.live.get(topic.name) !== topic) return;
    if (topic.lastId === 0) {
      this.live.delete(topic.name);
      return;
    }
    topic.listedIdle = true;
    this.idleCount++;
    // Nothing was listed since it was last: same place (and, while ordered, its entry is the newest).
    if (topic.idleStamp === this.stamp) return;
    topic.idleStamp = ++this.stamp;
    if (!this.ordered) return;
    this.idleTopics.push(topic);
    this.idleStamps.push(this.stamp);
    if (this.idleTopics.length > 2 * this.idleCount + 1024) this.compactIdle();
  }

  /** Removes a topic for good (deletion); its last id stays as a tombstone. */
  remove(topic: Topic): void {
    if (this.live.get(topic.name) !== topic) return;
    this.live.delete(topic.name);
    if (topic.listedIdle) this.unlist(topic);
    this.tombstones.bury(topic.name, topic.lastId);
  }

  private unlist(topic: Topic): void {
    topic.listedIdle = false;
    this.idleCount--;
  }

  /** The longest idle topic, taken out of the idle order; undefined when none is idle. */
  private longestIdle(): Topic | undefined {
    for (;;) {
      const topic = this.idleTopics.shift();
      if (topic === undefined) return undefined;
      const stamp = this.idleStamps.shift()!;
      // The newest entry is gone: its topic must not count on it (a safety net: makeRoom stops
      // at older live entries before it reaches a stale newest one).
      if (stamp === this.stamp) this.stamp++;
      if (topic.listedIdle && topic.idleStamp === stamp) return topic;
    }
  }

  /** Builds the idle order from the stamps of the topics listed now. */
  private buildIdleOrder(): void {
    const idle: Topic[] = [];
    for (const topic of this.live.values()) if (topic.listedIdle) idle.push(topic);
    idle.sort((a, b) => a.idleStamp - b.idleStamp);
    for (const topic of idle) {
      this.idleTopics.push(topic);
      this.idleStamps.push(topic.idleStamp);
    }
    // A topic used again since its listing has no entry: its next listing must push one.
    this.stamp++;
    this.ordered = true;
  }

  private dropIdleOrder(): void {
    this.idleTopics.clear();
    this.idleStamps.clear();
    this.ordered = false;
  }

  /** Drops the stale entries of the idle order (the newest stays: it was just pushed, live). */
  private compactIdle(): void {
    for (let n = this.idleTopics.length; n > 0; n--) {
      const topic = this.idleTopics.shift()!;
      const stamp = this.idleStamps.shift()!;
      if (!topic.listedIdle || topic.idleStamp !== stamp) continue;
      this.idleTopics.push(topic);
      this.idleStamps.push(stamp);
    }
  }

  /**
   * A topic whose changes were undone (a failed store commit) holds messages again: it is in use,
   * and listed again if it was let go meanwhile (its tombstone, if any, is taken back). Returns the
   * topic listed under its name: another one when a topic of that name took its place meanwhile
   * (the caller moves the messages there).
   */
  readmit(topic: Topic): Topic {
    const listed = this.live.get(topic.name);
    if (listed === undefined) {
      this.tombstones.raise(topic.name);
      this.live.set(topic.name, topic);
    } else if (listed !== topic) {
      return listed;
    }
    this.settle(topic);
    return topic;
  }

  /** A stored topic with no message left: only its last id comes back. */
  restoreEmpty(name: string, lastId: number): void {
    if (!this.live.has(name)) this.tombstones.bury(name, lastId);
  }

  /** Frees a place for a new topic: the longest idle topic becomes a tombstone; none idle is BUS_FULL. */
  private makeRoom(): void {
    if (this.inUse >= this.maxTopics) throw this.full();
    // Half empty: places will not be needed for a while, and the order costs a push per listing.
    if (this.ordered && this.live.size < this.maxTopics >>> 1) this.dropIdleOrder();
    if (this.live.size < this.maxTopics) return;
    if (!this.ordered) this.buildIdleOrder();
    while (this.live.size >= this.maxTopics) {
      const topic = this.longestIdle();
      if (topic === undefined) break;
      this.remove(topic);
    }
  }

  private full(): BusError {
    return new BusError("BUS_FULL", `too many topics (limit ${this.maxTopics})`);
  }
}
