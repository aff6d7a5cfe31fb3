// A growable ring buffer: O(1) push and shift at both ends, for topic queues.

export class Deque<T> {
  private items: (T | undefined)[];
  private head = 0;
  private count = 0;

  constructor(capacity = 16) {
    this.items = [];
    for (let i = 0; i < capacity; i++) this.items.push(undefined);
  }

  get length(): number {
    return this.count;
  }

  push(item: T): void {
    if (this.count === this.items.length) this.grow();
    this.items[(this.head + this.count) % this.items.length] = item;
    this.count++;
  }

  unshift(item: T): void {
    if (this.count === this.items.length) this.grow();
    this.head = (this.head - 1 + this.items.length) % this.items.length;
    this.items[this.head] = item;
    this.count++;
  }

  shift(): T | undefined {
    if (this.count === 0) return undefined;
    const item = this.items[this.head];
    this.items[this.head] = undefined;
    this.head = (this.head + 1) % this.items.length;
    this.count--;
    if (this.count === 0) this.head = 0;
    else if (this.items.length > 64 && this.count < this.items.length >>> 2) this.shrink();
    return item;
  }

  pop(): T | undefined {
    if (this.count === 0) return undefined;
    const at = (this.head + this.count - 1) % this.items.length;
    const item = this.items[at];
    this.items[at] = undefined;
    this.count--;
    if (this.count === 0) this.head = 0;
    return item;
  }

  peek(): T | undefined {
    return this.count === 0 ? undefined : this.items[this.head];
  }

  at(index: number): T | undefined {
    if (index < 0 || index >= this.count) return undefined;
    return this.items[(this.head + index) % this.items.length];
  }

  /** Removes the first item matching `pred`; O(n), for the rare removal from the middle. */
  removeFirst(pred: (item: T) => boolean): T | undefined {
    const size = this.items.length;
    for (let i = 0; i < this.count; i++) {
      const item = this.items[(this.head + i) % size]!;
      if (!pred(item)) continue;
      for (let j = i; j < this.count - 1; j++) {
        this.items[(this.head + j) % size] = this.items[(this.head + j + 1) % size];
      }
      this.items[(this.head + this.count - 1) % size] = undefined;
      this.count--;
      return item;
    }
    return undefined;
  }

  *[Symbol.iterator](): IterableIterator<T> {
    for (let i = 0; i < this.count; i++) yield this.items[(this.head + i) % this.items.length]!;
  }

  clear(): void {
    this.items = [];
    for (let i = 0; i < 16; i++) this.items.push(undefined);
    this.head = 0;
    this.count = 0;
  }

  private grow(): void {
    this.resize(this.items.length * 2);
  }

  private shrink(): void {
    this.resize(Math.max(16, this.items.length >>> 1));
  }

  private resize(capacity: number): void {
    // Filled by push, not new Array(capacity): JSC keeps large pre-sized arrays in a slow mode.
    const next: (T | undefined)[] = [];
    for (let i = 0; i < this.count; i++) next.push(this.items[(this.head + i) % this.items.length]);
    for (let i = this.count; i < capacity; i++) next.push(undefined);
    this.items = next;
    this.head = 0;
  }
}
