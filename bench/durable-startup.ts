// Durable store figures: group-commit write rates in both fsync modes, and start-up time
// (open + load + Bus restore) for a store holding N queued messages.
// Usage: bun bench/durable-startup.ts [messages=1000000] [payloadBytes=100] [dir=<tmp>]

import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Bus } from "../src/core/bus.ts";
import type { Message } from "../src/core/message.ts";
import { openSqliteStore, type SqliteStore } from "../src/store/sqlite.ts";
import type { FsyncMode } from "../src/store/sqlite-open.ts";

const total = Number(process.argv[2] ?? 1_000_000);
const size = Number(process.argv[3] ?? 100);
const base = process.argv[4] ?? mkdtempSync(join(tmpdir(), "msgbus-bench-"));
const payload = new Uint8Array(size).fill(120);
const TOPICS = 10;

function ms(start: number): number {
  return performance.now() - start;
}

function rate(count: number, elapsed: number): string {
  return `${Math.round((count * 1000) / elapsed).toLocaleString("en")}/s`;
}

/** Adds `count` messages in batches of `batch`, each batch awaited as a transport would. */
async function write(store: SqliteStore, next: Map<string, number>, count: number, batch: number): Promise<Message[]> {
  const written: Message[] = [];
  for (let done = 0; done < count; done += batch) {
    for (let i = done; i < Math.min(count, done + batch); i++) {
      const topic = `bench.${i % TOPICS}`;
      const id = (next.get(topic) ?? 0) + 1;
      next.set(topic, id);
      const message: Message = { id, topic, created: Date.now(), payload, deliveries: 0 };
      store.added(message);
      written.push(message);
    }
    await store.flush();
  }
  return written;
}

async function rates(fsync: FsyncMode): Promise<void> {
  const dir = join(base, `rates-${fsync}`);
  const store = openSqliteStore(dir, { fsync });
  const next = new Map<string, number>();
  let start = performance.now();
  const big = await write(store, next, 100_000, 100_000);
  console.log(`${fsync}: 100,000 adds in one batch: ${ms(start).toFixed(0)} ms, ${rate(100_000, ms(start))}`);
  start = performance.now();
  await write(store, next, 20_000, 100);
  console.log(`${fsync}: 200 batches of 100 adds: ${ms(start).toFixed(0)} ms, ${rate(20_000, ms(start))}, ${(ms(start) / 200).toFixed(2)} ms/commit`);
  start = performance.now();
  await write(store, next, 2_000, 1);
  console.log(`${fsync}: 2,000 single-add batches: ${ms(start).toFixed(0)} ms, ${rate(2_000, ms(start))}`);
  start = performance.now();
  for (const m of big) store.removed(m.topic, m.id);
  await store.flush();
  console.log(`${fsync}: 100,000 removes in one batch: ${ms(start).toFixed(0)} ms, ${rate(100_000, ms(start))}`);
  store.close();
}

async function startup(): Promise<void> {
  const dir = join(base, "startup");
  let store = openSqliteStore(dir);
  let start = performance.now();
  await write(store, new Map(), total, 100_000);
  console.log(`fill: ${total.toLocaleString("en")} × ${size} B in ${ms(start).toFixed(0)} ms (${rate(total, ms(start))})`);
  store.close();
  const files = openSqliteStore(dir);
  console.log(`files: database ${(files.fileSizes().database / 1048576).toFixed(1)} MiB`);
  files.close();

  start = performance.now();
  store = openSqliteStore(dir);
  const opened = ms(start);
  start = performance.now();
  const topics = store.load();
  const loaded = ms(start);
  const count = topics.reduce((n, t) => n + t.messages.length, 0);
  const rss = (process.memoryUsage().rss / 1048576).toFixed(0);
  console.log(`start-up: open ${opened.toFixed(0)} ms, load ${loaded.toFixed(0)} ms for ${count.toLocaleString("en")} messages (rss ${rss} MiB)`);
  store.close();

  store = openSqliteStore(dir);
  start = performance.now();
  const bus = new Bus({ store, limits: { maxQueue: total, maxMemory: 4 * 1024 ** 3, maxQueueBytes: 4 * 1024 ** 3 } });
  console.log(`start-up with Bus restore: ${ms(start).toFixed(0)} ms, ${bus.topicList().length} topics`);
  store.close();
}

try {
  await rates("process");
  await rates("always");
  await startup();
} finally {
  if (!process.argv[4]) rmSync(base, { recursive: true, force: true });
}
