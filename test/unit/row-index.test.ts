// The sqlite store's in-memory row index on its own: each stored message's id leads to its row
// (seq), runs merge and go as messages come and leave, and it stays small under a held head.

import { describe, expect, test } from "bun:test";
import { TopicRows } from "../../src/store/row-index.ts";

/** The seq the index gives for `id`, or undefined when it has no run for it. */
function seqOf(rows: TopicRows, id: number): number | undefined {
  const run = rows.find(id);
  return run < 0 ? undefined : rows.seqOf(run, id);
}

/** Removes stored message `id` as a commit does: the run loses one, then the index trims. */
function remove(rows: TopicRows, id: number): void {
  const run = rows.find(id);
  if (run < 0) throw new Error(`no run for ${id}`);
  rows.removed(run);
  rows.trim();
}

describe("row index", () => {
  test("a batch of ids is one run, and the next batch at the following seqs continues it", () => {
    const rows = new TopicRows(1);
    rows.append(1, 3, 10, 3);
    rows.append(4, 5, 13, 2);
    expect(rows.runs()).toBe(1);
    expect([1, 2, 3, 4, 5].map((id) => seqOf(rows, id))).toEqual([10, 11, 12, 13, 14]);
    expect(seqOf(rows, 6)).toBeUndefined();
    expect(seqOf(rows, 0)).toBeUndefined();
  });

  test("a batch written after another topic's rows starts a new run, and each id finds its own", () => {
    const rows = new TopicRows(1);
    rows.append(1, 2, 1, 2);
    rows.append(3, 4, 10, 2);
    rows.append(5, 9, 20, 5);
    expect(rows.runs()).toBe(3);
    expect([1, 2, 3, 4, 5, 9].map((id) => seqOf(rows, id))).toEqual([1, 2, 10, 11, 20, 24]);
  });

  test("ids taken in the batch that wrote a run keep their place: the others map to their own seqs", () => {
    const rows = new TopicRows(1);
    rows.append(1, 5, 100, 3); // ids 1, 3 and 5 written; 2 and 4 were taken before the commit
    expect(seqOf(rows, 3)).toBe(102);
    expect(seqOf(rows, 5)).toBe(104);
  });

  test("runs whose messages all left go from the head; their ids find nothing", () => {
    const rows = new TopicRows(1);
    rows.append(1, 2, 1, 2);
    rows.append(3, 3, 10, 1);
    remove(rows, 1);
    expect(rows.runs()).toBe(2);
    remove(rows, 2);
    expect(rows.runs()).toBe(1);
    expect(seqOf(rows, 1)).toBeUndefined();
    expect(seqOf(rows, 3)).toBe(10);
    remove(rows, 3);
    expect(rows.runs()).toBe(0);
  });

  test("a message held at the head does not make the index grow with every later commit", () => {
    const rows = new TopicRows(1);
    rows.append(1, 1, 1, 1);
    for (let id = 2; id <= 5000; id++) {
      rows.append(id, id, id * 2, 1); // another topic wrote between every commit: no run continues
      remove(rows, id);
    }
    expect(rows.runs()).toBeLessThan(70);
    expect(seqOf(rows, 1)).toBe(1);
  });

  test("a run found out of id order (a file written otherwise) is put in its place", () => {
    const rows = new TopicRows(1);
    const ids = [10, 2, 8, 4, 6, 12, 1];
    for (const [i, id] of ids.entries()) rows.append(id, id, 100 * (i + 1), 1);
    expect(ids.map((id) => seqOf(rows, id))).toEqual(ids.map((_, i) => 100 * (i + 1)));
  });

  test("clear forgets every run (a purge)", () => {
    const rows = new TopicRows(1);
    rows.append(1, 3, 1, 3);
    rows.clear();
    expect(rows.runs()).toBe(0);
    expect(seqOf(rows, 2)).toBeUndefined();
    rows.append(4, 4, 9, 1);
    expect(seqOf(rows, 4)).toBe(9);
  });

  test("over a long random run every stored id leads to its row (seeded)", () => {
    let seed = 7;
    const random = (n: number) => {
      seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
      return (seed >>> 8) % n;
    };
    const rows = new TopicRows(1);
    const stored = new Map<number, number>(); // id -> seq
    let nextId = 1;
    let nextSeq = 1;
    for (let step = 0; step < 20000; step++) {
      if (random(4) === 0 || stored.size === 0) {
        // A commit: some new ids (a few taken before it, never written), maybe after other rows.
        nextSeq += random(3) === 0 ? 1 + random(5) : 0;
        const first = nextId;
        const count = 1 + random(6);
        let written = 0;
        for (let i = 0; i < count; i++) {
          if (i > 0 && i < count - 1 && random(4) === 0) continue;
          stored.set(first + i, nextSeq + i);
          written++;
        }
        rows.append(first, first + count - 1, nextSeq, written);
        nextId += count;
        nextSeq += count;
      } else {
        // Mostly the oldest leaves (a queue), sometimes one from the middle (an ack).
        const oldest = stored.keys().next().value!;
        const picked = oldest + random(nextId - oldest);
        const id = random(4) === 0 && stored.has(picked) ? picked : oldest;
        remove(rows, id);
        stored.delete(id);
      }
      if (step % 101 === 0) for (const [id, seq] of stored) expect(seqOf(rows, id)).toBe(seq);
    }
    for (const [id, seq] of stored) expect(seqOf(rows, id)).toBe(seq);
  });
});
