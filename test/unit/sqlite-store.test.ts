// The durable store: what it writes, what comes back after a restart or a crash, and how it
// refuses directories and files it must not use.

import { Database } from "bun:sqlite";
import { afterEach, describe, expect, test } from "bun:test";
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { Bus } from "../../src/core/bus.ts";
import { BusError } from "../../src/core/errors.ts";
import type { Message } from "../../src/core/message.ts";
import { openSqliteStore, type SqliteStore } from "../../src/store/sqlite.ts";

const dirs: string[] = [];
const stores: SqliteStore[] = [];
const encoder = new TextEncoder();

afterEach(() => {
  for (const store of stores.splice(0)) {
    try {
      store.close();
    } catch {
      // A test that broke the store on purpose.
    }
  }
  for (const dir of dirs.splice(0)) {
    try {
      chmodSync(dir, 0o755);
    } catch {}
    rmSync(dir, { recursive: true, force: true });
  }
});

function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), "msgbus-sqlite-"));
  dirs.push(dir);
  return dir;
}

function open(dir: string, fsync: "process" | "always" = "process", onError?: (e: BusError) => void): SqliteStore {
  const store = openSqliteStore(dir, { fsync, onError });
  stores.push(store);
  return store;
}

function close(store: SqliteStore): void {
  stores.splice(stores.indexOf(store), 1);
  store.close();
}

function message(topic: string, id: number, text = `m${id}`, extra: Partial<Message> = {}): Message {
  return { id, topic, created: 1700000000000 + id, payload: encoder.encode(text), deliveries: 0, ...extra };
}

function storageError(fn: () => unknown): BusError {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(BusError);
    expect((e as BusError).code).toBe("STORAGE");
    expect((e as BusError).message).not.toContain("\n");
    return e as BusError;
  }
  throw new Error("expected a STORAGE error");
}

/** A plain second connection, as an operator's sqlite3 shell would see the file. */
function peek<T>(dir: string, sql: string): T[] {
  const db = new Database(join(dir, "msgbus.db"), { readonly: true });
  try {
    return db.query(sql).values() as T[];
  } finally {
    db.close();
  }
}

async function until(check: () => boolean, what: string, ms = 15000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await Bun.sleep(20);
  }
}

describe("sqlite store", () => {
  test("messages come back through load as they were written, oldest first per topic", async () => {
    const dir = tempDir();
    const store = open(dir);
    expect(store.load()).toEqual([]);
    const binary = new Uint8Array(256).map((_, i) => i);
    store.added(message("jobs", 1));
    store.added({ ...message("jobs", 2), payload: binary });
    store.added({ ...message("jobs", 3), payload: new Uint8Array(0) });
    store.added(message("jobs.dead", 1, "dead", { deliveries: 5, origin: { topic: "jobs", id: 9, deliveries: 5 } }));
    store.added(message("logs", 1, "log line"));
    await store.flush();
    close(store);

    const topics = open(dir).load();
    expect(topics.map((t) => [t.name, t.lastId, t.messages.map((m) => m.id)])).toEqual([
      ["jobs", 3, [1, 2, 3]],
      ["jobs.dead", 1, [1]],
      ["logs", 1, [1]],
    ]);
    const [jobs, dead] = topics;
    expect(jobs.messages[0]).toEqual(message("jobs", 1));
    expect(jobs.messages[1].payload).toEqual(binary);
    expect(jobs.messages[2].payload).toEqual(new Uint8Array(0));
    expect(dead.messages[0]).toEqual(message("jobs.dead", 1, "dead", { deliveries: 5, origin: { topic: "jobs", id: 9, deliveries: 5 } }));
  });

  test("a payload that is a view into a larger buffer is stored as just the view", async () => {
    const dir = tempDir();
    const store = open(dir);
    const buffer = encoder.encode("xxhelloxx");
    store.added({ ...message("t", 1), payload: buffer.subarray(2, 7) });
    await store.flush();
    close(store);
    expect(new TextDecoder().decode(open(dir).load()[0].messages[0].payload)).toBe("hello");
  });

  test("ids continue after reopen for a topic that was emptied", async () => {
    const dir = tempDir();
    const store = open(dir);
    for (let id = 1; id <= 3; id++) store.added(message("q", id));
    await store.flush();
    for (let id = 1; id <= 3; id++) store.removed("q", id);
    await store.flush();
    close(store);
    expect(open(dir).load()).toEqual([{ name: "q", lastId: 3, messages: [] }]);
  });

  test("a message added and removed in the same batch is never written, but its id is remembered", async () => {
    const dir = tempDir();
    const setup = open(dir);
    close(setup);
    const db = new Database(join(dir, "msgbus.db"));
    db.exec("CREATE TABLE audit (id INTEGER); CREATE TRIGGER audit AFTER INSERT ON messages BEGIN INSERT INTO audit VALUES (new.id); END;");
    db.close();

    const store = open(dir);
    store.added(message("q", 1));
    store.added(message("q", 2));
    store.added(message("q", 3));
    store.delivered({ ...message("q", 3), deliveries: 1 });
    store.removed("q", 1);
    store.removed("q", 3);
    await store.flush();
    expect(peek<[number]>(dir, "SELECT id FROM audit")).toEqual([[2]]);
    expect(peek(dir, "SELECT name, last_id FROM topics")).toEqual([["q", 3]]);
    close(store);
    expect(open(dir).load()[0].lastId).toBe(3);
  });

  test("flush is null with nothing pending, and resolves once a second connection sees the data", async () => {
    const dir = tempDir();
    const store = open(dir);
    expect(store.flush()).toBeNull();
    store.added(message("q", 1, "hello"));
    const flushed = store.flush();
    expect(flushed).toBeInstanceOf(Promise);
    expect(store.flush()).toBe(flushed!);
    expect(peek(dir, "SELECT count(*) FROM messages")).toEqual([[0]]);
    await flushed;
    expect(peek(dir, "SELECT id, CAST(payload AS TEXT) FROM messages")).toEqual([[1, "hello"]]);
    expect(store.flush()).toBeNull();
  });

  test("a batch that cannot be committed rejects its flush, and is written once the disk lets it", async () => {
    const dir = tempDir();
    const errors: BusError[] = [];
    const store = open(dir, "process", (e) => errors.push(e));
    const blocker = new Database(join(dir, "msgbus.db"));
    blocker.exec("BEGIN IMMEDIATE");
    store.added(message("q", 1));
    const failed = store.flush()!;
    const error = await failed.then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(BusError);
    expect((error as BusError).code).toBe("STORAGE");
    expect((error as BusError).message).toContain(join(dir, "msgbus.db"));
    expect(errors.length).toBe(1);

    blocker.exec("ROLLBACK");
    blocker.close();
    store.added(message("q", 2));
    await store.flush();
    expect(peek(dir, "SELECT id FROM messages ORDER BY id")).toEqual([[1], [2]]);
  });

  test("a lease's raised delivery count survives a restart", async () => {
    const dir = tempDir();
    const store = open(dir);
    const leased = message("q", 1);
    store.added(leased);
    store.added(message("q", 2));
    await store.flush();
    leased.deliveries = 1;
    store.delivered(leased);
    await store.flush();
    leased.deliveries = 2;
    store.delivered(leased);
    close(store);
    const [topic] = open(dir).load();
    expect(topic.messages.map((m) => [m.id, m.deliveries])).toEqual([
      [1, 2],
      [2, 0],
    ]);
  });

  test("a purge drops what the topic held, keeps its last id and the messages written after it", async () => {
    const dir = tempDir();
    const store = open(dir);
    for (let id = 1; id <= 3; id++) store.added(message("q", id));
    store.added(message("other", 1));
    await store.flush();
    store.added(message("q", 4));
    store.purged("q");
    store.added(message("q", 5));
    await store.flush();
    close(store);
    const topics = open(dir).load();
    expect(topics.map((t) => [t.name, t.lastId, t.messages.map((m) => m.id)])).toEqual([
      ["q", 5, [5]],
      ["other", 1, [1]],
    ]);
  });

  test("close writes what is still pending", () => {
    const dir = tempDir();
    const store = open(dir, "always");
    store.added(message("q", 1));
    close(store);
    expect(open(dir).load()[0].messages.map((m) => m.id)).toEqual([1]);
  });

  test("a bus restarted on the same directory has the same queues, and ids continue", async () => {
    const dir = tempDir();
    let store = open(dir);
    let bus = new Bus({ store, limits: { maxDeliveries: 2 } });
    for (let i = 1; i <= 5; i++) bus.publish("jobs", encoder.encode(`job ${i}`));
    bus.publish("events", encoder.encode("e1"));
    expect(bus.take("jobs")!.id).toBe(1);
    const leased = bus.take("jobs", { lease: 60000 })!;
    expect(leased.id).toBe(2);
    const doomed = bus.take("jobs", { lease: 60000 })!;
    bus.nack("jobs", doomed.id);
    bus.take("jobs", { lease: 60000 });
    bus.nack("jobs", doomed.id); // second delivery: dead-lettered
    bus.take("events");
    await bus.flush();
    close(store);

    store = open(dir);
    bus = new Bus({ store });
    const queued = (name: string) => [...bus.topic(name)!.queue].map((m) => [m.id, new TextDecoder().decode(m.payload), m.deliveries]);
    expect(queued("jobs")).toEqual([
      [2, "job 2", 1],
      [4, "job 4", 0],
      [5, "job 5", 0],
    ]);
    expect(queued("jobs.dead")).toEqual([[1, "job 3", 0]]);
    expect(bus.topic("jobs.dead")!.queue.peek()!.origin).toEqual({ topic: "jobs", id: 3, deliveries: 2 });
    expect(queued("events")).toEqual([]);
    expect(bus.publish("jobs", encoder.encode("job 6")).id).toBe(6);
    expect(bus.publish("events", encoder.encode("e2")).id).toBe(2);
  });

  test("consumed messages give their space back once the store is idle", async () => {
    const dir = tempDir();
    const store = open(dir);
    const payload = new Uint8Array(1000).fill(7);
    for (let id = 1; id <= 6000; id++) store.added({ ...message("big", id), payload });
    await store.flush();
    const full = store.fileSizes();
    expect(full.database + full.wal).toBeGreaterThan(6_000_000);
    for (let id = 1; id <= 6000; id++) store.removed("big", id);
    await store.flush();
    await until(() => {
      const sizes = store.fileSizes();
      return sizes.wal === 0 && sizes.database < 1_000_000;
    }, "the database to shrink");
    close(store);
    expect(open(dir).load()).toEqual([{ name: "big", lastId: 6000, messages: [] }]);
  }, 20000);
});

describe("sqlite store refuses what it must not use", () => {
  test("a data directory under a regular file", () => {
    const dir = tempDir();
    writeFileSync(join(dir, "file"), "x");
    const error = storageError(() => openSqliteStore(join(dir, "file", "data")));
    expect(error.message).toContain(join(dir, "file", "data"));
  });

  test("a data directory that is a regular file", () => {
    const dir = tempDir();
    writeFileSync(join(dir, "file"), "x");
    expect(storageError(() => openSqliteStore(join(dir, "file"))).message).toContain(join(dir, "file"));
  });

  // Root ignores permissions: as root, the check runs as user nobody (setpriv), else as is.
  const unprivileged =
    process.getuid?.() !== 0 ? [] : Bun.which("setpriv") ? ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"] : null;

  test.skipIf(unprivileged === null || process.platform === "win32")(
    "a directory without permissions, and a database file that is read-only",
    async () => {
      const dir = tempDir();
      chmodSync(dir, 0o755);
      const readOnly = join(dir, "readonly");
      close(open(readOnly));
      chmodSync(join(readOnly, "msgbus.db"), 0o444);
      chmodSync(readOnly, 0o777);
      const closed = join(dir, "closed");
      mkdirSync(closed, { mode: 0o000 });
      chmodSync(closed, 0o000);
      const script = join(dir, "try.ts");
      writeFileSync(
        script,
        `import { openSqliteStore } from ${JSON.stringify(resolve(import.meta.dir, "../../src/store/sqlite.ts"))};
const results = [];
for (const dir of process.argv.slice(2)) {
  try { openSqliteStore(dir).close(); results.push("opened"); } catch (e) { results.push(e.code + " " + e.message); }
}
console.log(JSON.stringify(results));
`,
      );
      chmodSync(script, 0o644);
      const child = Bun.spawnSync([...unprivileged!, process.execPath, script, join(closed, "data"), readOnly]);
      const [inClosed, inReadOnly] = JSON.parse(child.stdout.toString()) as string[];
      expect(inClosed).toStartWith(`STORAGE cannot use data directory ${join(closed, "data")}`);
      expect(inReadOnly).toStartWith(`STORAGE cannot open ${join(readOnly, "msgbus.db")}`);
      expect(inReadOnly).toContain("writable");
    },
  );

  test("a file that is not a database, and leaves it untouched", () => {
    const dir = tempDir();
    const garbage = Buffer.from("this is not a database, it is somebody's notes\n".repeat(200));
    writeFileSync(join(dir, "msgbus.db"), garbage);
    const error = storageError(() => openSqliteStore(dir));
    expect(error.message).toContain(join(dir, "msgbus.db"));
    expect(error.message).toContain("move it away");
    expect(readFileSync(join(dir, "msgbus.db")).equals(garbage)).toBe(true);
    // Once the user moves the file away, the directory is usable: the failed attempt let go of the lock.
    rmSync(join(dir, "msgbus.db"));
    expect(open(dir).load()).toEqual([]);
  });

  test("a database with damaged pages, at open or at load", async () => {
    const dir = tempDir();
    const store = open(dir);
    const payload = new Uint8Array(1000).fill(1);
    for (let id = 1; id <= 2000; id++) store.added({ ...message("q", id), payload });
    close(store);
    const path = join(dir, "msgbus.db");
    const bytes = readFileSync(path);
    bytes.fill(0xa5, 3 * 4096, 40 * 4096);
    writeFileSync(path, bytes);
    const error = storageError(() => {
      const damaged = open(dir);
      damaged.load();
    });
    expect(error.message).toContain(path);
    expect(error.message).toContain("restore it from a backup");
  });

  test("another program's SQLite database", () => {
    const dir = tempDir();
    const db = new Database(join(dir, "msgbus.db"));
    db.exec("CREATE TABLE accounts (id INTEGER PRIMARY KEY, name TEXT)");
    db.close();
    expect(storageError(() => openSqliteStore(dir)).message).toContain("another program");
  });

  test("a directory another store holds, until it is closed", () => {
    const dir = tempDir();
    const first = open(dir);
    expect(storageError(() => openSqliteStore(dir)).message).toContain("in use by another msgbus server");
    close(first);
    open(dir);
  });
});

describe("sqlite store survives kill -9", () => {
  test("everything flushed before SIGKILL is there on reopen, and the lock is released", async () => {
    const dir = tempDir();
    const script = join(dir, "writer.ts");
    writeFileSync(
      script,
      `import { openSqliteStore } from ${JSON.stringify(resolve(import.meta.dir, "../../src/store/sqlite.ts"))};
const store = openSqliteStore(${JSON.stringify(join(dir, "data"))}, { fsync: "process" });
const encoder = new TextEncoder();
let id = 0;
for (;;) {
  const first = id + 1;
  for (let i = 0; i < 500; i++) {
    id++;
    store.added({ id, topic: "crash", created: Date.now(), payload: encoder.encode("message " + id), deliveries: 0 });
  }
  // Even ids of the previous batch are consumed.
  for (let old = first - 500; old < first; old++) if (old > 0 && old % 2 === 0) store.removed("crash", old);
  await store.flush();
  process.stdout.write(id + "\\n");
}
`,
    );
    const child = Bun.spawn([process.execPath, script], { stdout: "pipe", stderr: "inherit" });
    let acknowledged = 0;
    try {
      const reader = child.stdout.getReader();
      let text = "";
      let lines = 0;
      while (lines < 40) {
        const { value, done } = await reader.read();
        if (done) throw new Error("writer exited early");
        text += new TextDecoder().decode(value);
        const complete = text.split("\n").slice(0, -1);
        lines = complete.length;
        if (lines >= 40) acknowledged = Number(complete[complete.length - 1]);
      }
      storageError(() => openSqliteStore(join(dir, "data")));
    } finally {
      child.kill("SIGKILL");
    }
    await child.exited;
    expect(child.signalCode).toBe("SIGKILL");

    const [topic] = open(join(dir, "data")).load();
    expect(topic.lastId).toBeGreaterThanOrEqual(acknowledged);
    const ids = new Set(topic.messages.map((m) => m.id));
    for (let id = 1; id <= acknowledged; id++) {
      const consumed = id % 2 === 0 && id <= acknowledged - 500;
      if (ids.has(id) === consumed) throw new Error(`message ${id} ${consumed ? "came back" : "was lost"}`);
    }
    const last = topic.messages.find((m) => m.id === acknowledged - 1)!;
    expect(new TextDecoder().decode(last.payload)).toBe(`message ${acknowledged - 1}`);
  });
});
