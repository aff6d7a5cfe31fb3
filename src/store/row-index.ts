// The store's in-memory index of where each topic's messages are in the messages table, so that
// removals and delivery counts go straight to a row by seq without an index on disk.

/**
 * Where one topic's messages are in the table: runs of ids written at consecutive seqs. Run i holds
 * ids first[i]..last[i] at seq[i] + (id - first[i]), live[i] of them still stored; runs are in id
 * order, those before `head` are gone. A seq inside a run that holds no row of this topic (an id
 * taken in the batch that wrote the run) was never given to any other row, so looking up a wrong
 * id can never reach another message.
 */
export class TopicRows {
  first: number[] = [];
  last: number[] = [];
  seq: number[] = [];
  live: number[] = [];
  head = 0;
  /** Runs after `head` without messages (a message held at the head while later ones go). */
  dead = 0;

  constructor(readonly tid: number) {}

  /** The run holding `id`, or -1 (never written, or gone). */
  find(id: number): number {
    const { first, last } = this;
    let lo = this.head;
    let hi = first.length - 1;
    // Queues are consumed oldest first: the first run is the usual answer.
    if (lo <= hi && id >= first[lo] && id <= last[lo]) return lo;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      if (first[mid] > id) hi = mid - 1;
      else if (last[mid] < id) lo = mid + 1;
      else return mid;
    }
    return -1;
  }

  seqOf(run: number, id: number): number {
    return this.seq[run] + (id - this.first[run]);
  }

  /** The newest run, if `id` at `seq` would continue it exactly (and it still has messages); else -1. */
  continued(id: number, seq: number): number {
    const i = this.first.length - 1;
    return i >= this.head && this.live[i] > 0 && this.last[i] + 1 === id && this.seqOf(i, this.last[i]) + 1 === seq ? i : -1;
  }

  removed(run: number): void {
    if (--this.live[run] === 0) this.dead++;
  }

  runs(): number {
    return this.first.length - this.head;
  }

  /** Adds ids first..last at seq.. (`live` of them written), after the newest run or continuing it. */
  append(first: number, last: number, seq: number, live: number): void {
    const i = this.continued(first, seq);
    if (i >= 0) {
      this.last[i] = last;
      this.live[i] += live;
      return;
    }
    let at = this.first.length;
    // Ids only grow, so runs come in id order; a file found otherwise still gets sorted runs.
    while (at > this.head && this.first[at - 1] > first) at--;
    if (at === this.first.length) {
      this.first.push(first);
      this.last.push(last);
      this.seq.push(seq);
      this.live.push(live);
    } else {
      this.first.splice(at, 0, first);
      this.last.splice(at, 0, last);
      this.seq.splice(at, 0, seq);
      this.live.splice(at, 0, live);
    }
  }

  /**
   * Drops the runs left without messages at the head, and the others once they are most of the
   * runs (a message held at the head must not make this grow with every later commit).
   */
  trim(): void {
    const { live } = this;
    while (this.head < live.length && live[this.head] <= 0) {
      this.head++;
      this.dead--;
    }
    if (this.head === live.length) this.clear();
    else if (this.dead > 32 && this.dead * 2 > live.length - this.head) {
      const kept = [];
      for (let i = this.head; i < live.length; i++) if (live[i] > 0) kept.push(i);
      for (const key of ["first", "last", "seq", "live"] as const) this[key] = kept.map((i) => this[key][i]);
      this.head = 0;
      this.dead = 0;
    } else if (this.head > 64 && this.head * 2 > live.length) {
      for (const list of [this.first, this.last, this.seq, this.live]) list.splice(0, this.head);
      this.head = 0;
    }
  }

  clear(): void {
    this.first = [];
    this.last = [];
    this.seq = [];
    this.live = [];
    this.head = 0;
    this.dead = 0;
  }
}
