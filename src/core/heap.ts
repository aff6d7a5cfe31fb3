// A binary min-heap keyed by a number (lease expiry, delayed-return time).

export class MinHeap<T> {
  private keys: number[] = [];
  private values: T[] = [];

  get size(): number {
    return this.keys.length;
  }

  push(key: number, value: T): void {
    this.keys.push(key);
    this.values.push(value);
    let i = this.keys.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (this.keys[parent]! <= key) break;
      this.swap(i, parent);
      i = parent;
    }
  }

  peekKey(): number | undefined {
    return this.keys[0];
  }

  pop(): T | undefined {
    const n = this.keys.length;
    if (n === 0) return undefined;
    const top = this.values[0];
    const lastKey = this.keys.pop()!;
    const lastValue = this.values.pop()!;
    if (n > 1) {
      this.keys[0] = lastKey;
      this.values[0] = lastValue;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < n - 1 && this.keys[l]! < this.keys[m]!) m = l;
        if (r < n - 1 && this.keys[r]! < this.keys[m]!) m = r;
        if (m === i) break;
        this.swap(i, m);
        i = m;
      }
    }
    return top;
  }

  /** Keeps only the entries for which `keep` holds (O(n), then re-heaped). */
  retain(keep: (value: T, key: number) => boolean): void {
    const keys: number[] = [];
    const values: T[] = [];
    for (let i = 0; i < this.values.length; i++) {
      if (!keep(this.values[i]!, this.keys[i]!)) continue;
      keys.push(this.keys[i]!);
      values.push(this.values[i]!);
    }
    this.keys = [];
    this.values = [];
    for (let i = 0; i < keys.length; i++) this.push(keys[i]!, values[i]!);
  }

  clear(): void {
    this.keys = [];
    this.values = [];
  }

  private swap(a: number, b: number): void {
    const k = this.keys[a]!;
    this.keys[a] = this.keys[b]!;
    this.keys[b] = k;
    const v = this.values[a]!;
    this.values[a] = this.values[b]!;
    this.values[b] = v;
  }
}
