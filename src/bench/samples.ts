// Latency samples for `msgbus bench`: every one up to a million, then a uniform reservoir of a
// million (so a long --duration run keeps bounded memory), and the percentiles the summary prints.

const RESERVOIR = 1_000_000;

export class Samples {
  private values = new Float64Array(1024);
  private kept = 0;
  /** Samples offered, kept or not. */
  count = 0;
  max = 0;

  add(ms: number): void {
    this.count++;
    if (ms > this.max) this.max = ms;
    if (this.kept < RESERVOIR) {
      if (this.kept === this.values.length) {
        const grown = new Float64Array(Math.min(RESERVOIR, this.values.length * 2));
        grown.set(this.values);
        this.values = grown;
      }
      this.values[this.kept++] = ms;
      return;
    }
    // Reservoir sampling: each of the `count` samples so far is kept with the same chance.
    const slot = Math.floor(Math.random() * this.count);
    if (slot < RESERVOIR) this.values[slot] = ms;
  }

  /** The `p`-th percentile (0 < p ≤ 100) in ms, nearest rank; undefined without samples. */
  percentiles(ps: number[]): (number | undefined)[] {
    if (this.kept === 0) return ps.map(() => undefined);
    const sorted = this.values.slice(0, this.kept).sort();
    return ps.map((p) => sorted[Math.min(this.kept - 1, Math.max(0, Math.ceil((p / 100) * this.kept) - 1))]);
  }
}
