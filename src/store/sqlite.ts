// The durable store: every queued message in <dir>/msgbus.db (bun:sqlite, WAL), written by
// group commit (one transaction per event-loop turn). See docs/DURABILITY.md for the promises.

import { Database, type Statement } from "bun:sqlite";
import { mkdirSync, statSync } from "node:fs";
import { join } from "node:path";
import { BusError } from "../core/errors.ts";
import type { Message } from "../core/message.ts";
import type { Store, StoredTopic } from "./store.ts";

/** `process`: an acknowledged write survives a crash of msgbus; `always`: also a power cut. */
export type FsyncMode = "process" | "always";

export interface SqliteStoreOptions {
  fsync?: FsyncMode;
  /** Told about every failed commit or maintenance step (the flush promises reject as well). */
  onError?: (error: BusError) => void;
}

export const DATABASE_FILE = "msgbus.db";
export const LOCK_FILE = "msgbus.lock";

/** "msgb": marks the file as ours, so we never adopt somebody else's database. */
const APPLICATION_ID = 0x6d736762;
const SCHEMA_VERSION = 1;
/** A commit that failed is tried again after this long, even if nothing new is written. */
const RETRY_MS = 1000;
/** Maintenance (vacuum, checkpoint) runs once the store has had no commit for this long. */
const IDLE_MS = 1000;
/** Free pages are given back in steps this size (8 MiB, ~40 ms on a laptop), one per idle second. */
const VACUUM_STEP_PAGES = 2048;
/** Fewer free pages than this (1 MiB) are kept for reuse rather than given back. */
const VACUUM_MIN_PAGES = 256;
/** The WAL file is cut back to this size after a checkpoint. */
const JOURNAL_SIZE_LIMIT = 16 * 1048576;

// Messages live in a rowid table in write order (seq), with a unique index on (tid, id) for
// removals. A WITHOUT ROWID table keyed by (tid, id) was measured: as fast for 100-byte
// messages, but rows over ~1 KB spill into overflow pages (4.5× the file size, 3× slower).
const SCHEMA = `
CREATE TABLE IF NOT EXISTS topics (
  tid INTEGER PRIMARY KEY,
  name TEXT NOT NULL UNIQUE,
  last_id INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS messages (
  seq INTEGER PRIMARY KEY,
  tid INTEGER NOT NULL,
  id INTEGER NOT NULL,
  created INTEGER NOT NULL,
  deliveries INTEGER NOT NULL,
  payload BLOB NOT NULL,
  origin_topic TEXT,
  origin_id INTEGER,
  origin_deliveries INTEGER
);
CREATE UNIQUE INDEX IF NOT EXISTS messages_key ON messages (tid, id);
`;

/** What happened since the last commit, already reduced: an add removed in the same batch is gone. */
class Batch {
  readonly adds = new Map<string, Map<number, Message>>();
  /** Delivery counts of messages already on disk. */
  readonly updates = new Map<string, Map<number, Message>>();
  readonly removeTopics: string[] = [];
  readonly removeIds: number[] = [];
  readonly purges = new Set<string>();
  readonly lastIds = new Map<string, number>();
  waiter?: { promise: Promise<void>; resolve: () => void; reject: (e: BusError) => void };
}

interface Statements {
  insertTopic: Statement;
  updateTopic: Statement;
  purge: Statement;
  remove: Statement;
  insert: Statement;
  update: Statement;
}

export class SqliteStore implements Store {
  readonly path: string;
  readonly fsync: FsyncMode;
  /** Commits done and failed, for metrics. */
  commits = 0;
  failures = 0;
  private batch = new Batch();
  private dirty = false;
  private scheduled = false;
  private closed = false;
  private lostAfterClose = false;
  private retryTimer?: ReturnType<typeof setTimeout>;
  private readonly maintenanceTimer: ReturnType<typeof setInterval>;
  private lastCommit = 0;
  private needsMaintenance = false;
  private readonly tids = new Map<string, number>();
  private nextTid = 1;
  private readonly statements: Statements;
  private readonly onError: (error: BusError) => void;

  constructor(
    readonly dir: string,
    private readonly db: Database,
    private readonly lock: Database,
    options: SqliteStoreOptions,
  ) {
    this.path = join(dir, DATABASE_FILE);
    this.fsync = options.fsync ?? "process";
    this.onError = options.onError ?? (() => {});
    for (const [tid, name] of db.query("SELECT tid, name FROM topics").values() as [number, string][]) {
      this.tids.set(name, tid);
      this.nextTid = Math.max(this.nextTid, tid + 1);
    }
    this.statements = {
      insertTopic: db.prepare("INSERT INTO topics (tid, name, last_id) VALUES (?, ?, ?)"),
      updateTopic: db.prepare("UPDATE topics SET last_id = max(last_id, ?) WHERE tid = ?"),
      purge: db.prepare("DELETE FROM messages WHERE tid = ?"),
      remove: db.prepare("DELETE FROM messages WHERE tid = ? AND id = ?"),
      insert: db.prepare(
        "INSERT OR REPLACE INTO messages (tid, id, created, deliveries, payload, origin_topic, origin_id, origin_deliveries) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
      ),
      update: db.prepare("UPDATE messages SET deliveries = ? WHERE tid = ? AND id = ?"),
    };
    this.maintenanceTimer = setInterval(() => this.maintain(), IDLE_MS);
    this.maintenanceTimer.unref?.();
  }

  // ---- the store contract: record now, write on the next turn ----

  added(message: Message): void {
    const batch = this.pending();
    if (!batch) return;
    let adds = batch.adds.get(message.topic);
    if (!adds) batch.adds.set(message.topic, (adds = new Map()));
    adds.set(message.id, message);
    const lastId = batch.lastIds.get(message.topic);
    if (lastId === undefined || message.id > lastId) batch.lastIds.set(message.topic, message.id);
  }

  removed(topic: string, id: number): void {
    const batch = this.pending();
    if (!batch) return;
    if (batch.adds.get(topic)?.delete(id)) return;
    batch.updates.get(topic)?.delete(id);
    batch.removeTopics.push(topic);
    batch.removeIds.push(id);
  }

  delivered(message: Message): void {
    const batch = this.pending();
    if (!batch) return;
    // A pending add writes the count it has at commit time.
    if (batch.adds.get(message.topic)?.has(message.id)) return;
    let updates = batch.updates.get(message.topic);
    if (!updates) batch.updates.set(message.topic, (updates = new Map()));
    updates.set(message.id, message);
  }

  purged(topic: string): void {
    const batch = this.pending();
    if (!batch) return;
    batch.adds.delete(topic);
    batch.updates.delete(topic);
    batch.purges.add(topic);
  }

  flush(): Promise<void> | null {
    if (this.closed) {
      if (!this.lostAfterClose) return null;
      const refused = Promise.reject(new BusError("STORAGE", `store ${this.path} is closed: the last changes were not written`));
      refused.catch(() => {});
      return refused;
    }
    if (!this.dirty) return null;
    const batch = this.batch;
    if (!batch.waiter) {
      let resolve!: () => void;
      let reject!: (e: BusError) => void;
      const promise = new Promise<void>((res, rej) => {
        resolve = res;
        reject = rej;
      });
      // Marked handled here: whoever awaits it still sees the rejection.
      promise.catch(() => {});
      batch.waiter = { promise, resolve, reject };
    }
    return batch.waiter.promise;
  }

  /** Everything a restarted bus needs: every topic with its last id and messages, oldest first. */
  load(): StoredTopic[] {
    if (this.dirty) this.commit(true);
    try {
      const topics = new Map<number, StoredTopic>();
      const list: StoredTopic[] = [];
      for (const [tid, name, lastId] of this.db.query("SELECT tid, name, last_id FROM topics ORDER BY tid").values() as [
        number,
        string,
        number,
      ][]) {
        const topic: StoredTopic = { name, lastId, messages: [] };
        topics.set(tid, topic);
        list.push(topic);
      }
      // Read in write order, in chunks: as fast as one big query, without holding every row twice.
      // Within a topic, write order is id order; a topic found out of order is sorted (never seen).
      const chunk = this.db.query(
        "SELECT seq, tid, id, created, deliveries, payload, origin_topic, origin_id, origin_deliveries FROM messages" +
          " WHERE seq > ? ORDER BY seq LIMIT 50000",
      );
      const unsorted = new Set<StoredTopic>();
      let seq = -1;
      let tid = -1;
      let topic: StoredTopic | undefined;
      for (;;) {
        const rows = chunk.values(seq) as [number, number, number, number, number, Uint8Array, string | null, number | null, number | null][];
        if (rows.length === 0) break;
        for (const [rowSeq, rowTid, id, created, deliveries, payload, originTopic, originId, originDeliveries] of rows) {
          seq = rowSeq;
          if (rowTid !== tid) {
            tid = rowTid;
            topic = topics.get(tid);
            if (!topic) throw new Error(`message ${id} belongs to unknown topic number ${tid}`);
          }
          const messages = topic!.messages;
          if (!(payload instanceof Uint8Array)) throw new Error(`message ${id} of ${topic!.name} has no payload`);
          if (messages.length > 0 && messages[messages.length - 1].id >= id) unsorted.add(topic!);
          messages.push(
            originTopic === null
              ? { id, topic: topic!.name, created, payload, deliveries }
              : { id, topic: topic!.name, created, payload, deliveries, origin: { topic: originTopic, id: originId ?? 0, deliveries: originDeliveries ?? 0 } },
          );
          if (id > topic!.lastId) topic!.lastId = id;
        }
      }
      for (const t of unsorted) t.messages.sort((x, y) => x.id - y.id);
      return list;
    } catch (e) {
      throw storageError(`cannot read ${this.path}`, e, "restore it from a backup, or move it away to start empty");
    }
  }

  /** Writes what is pending, checkpoints, closes the files and releases the directory. */
  close(): void {
    if (this.closed) return;
    clearInterval(this.maintenanceTimer);
    clearTimeout(this.retryTimer);
    let failure: unknown;
    try {
      if (this.dirty) this.commit(true);
    } catch (e) {
      failure = e;
    }
    this.closed = true;
    clearTimeout(this.retryTimer);
    try {
      this.db.exec("PRAGMA wal_checkpoint(TRUNCATE)");
    } catch {
      // The WAL stays and is replayed on the next open: nothing is lost.
    }
    this.db.close();
    this.lock.close();
    if (failure) throw failure;
  }

  /** Sizes of the database and its WAL in bytes, for metrics and the growth policy's tests. */
  fileSizes(): { database: number; wal: number } {
    const size = (p: string) => {
      try {
        return statSync(p).size;
      } catch {
        return 0;
      }
    };
    return { database: size(this.path), wal: size(this.path + "-wal") };
  }

  // ---- group commit ----

  private pending(): Batch | undefined {
    if (this.closed) {
      this.lostAfterClose = true;
      return undefined;
    }
    this.dirty = true;
    if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(() => {
        this.scheduled = false;
        if (this.dirty && !this.closed) this.commit(false);
      });
    }
    return this.batch;
  }

  /**
   * Applies the batch in one transaction. On failure the batch stays pending (and later
   * changes join it) and is tried again; its waiters are told now, so nobody gets a false ack.
   */
  private commit(throwOnError: boolean): void {
    clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
    const batch = this.batch;
    const newTopics: string[] = [];
    try {
      this.db.exec("BEGIN");
      this.apply(batch, newTopics);
      this.db.exec("COMMIT");
    } catch (e) {
      if (this.db.inTransaction) {
        try {
          this.db.exec("ROLLBACK");
        } catch {
          // Nothing more to undo: SQLite already rolled back.
        }
      }
      for (const name of newTopics) this.tids.delete(name);
      this.failures++;
      const error = storageError(`cannot write to ${this.path}`, e, "check free disk space and the disk");
      batch.waiter?.reject(error);
      batch.waiter = undefined;
      this.onError(error);
      if (!this.closed) this.retryTimer = setTimeout(() => this.dirty && !this.closed && this.commit(false), RETRY_MS);
      this.retryTimer?.unref?.();
      if (throwOnError) throw error;
      return;
    }
    this.batch = new Batch();
    this.dirty = false;
    this.commits++;
    this.lastCommit = Date.now();
    this.needsMaintenance = true;
    batch.waiter?.resolve();
  }

  private apply(batch: Batch, newTopics: string[]): void {
    const s = this.statements;
    for (const [name, lastId] of batch.lastIds) {
      const tid = this.tids.get(name);
      if (tid === undefined) {
        const created = this.nextTid++;
        this.tids.set(name, created);
        newTopics.push(name);
        s.insertTopic.run(created, name, lastId);
      } else {
        s.updateTopic.run(lastId, tid);
      }
    }
    for (const name of batch.purges) {
      const tid = this.tids.get(name);
      if (tid !== undefined) s.purge.run(tid);
    }
    const { removeTopics, removeIds } = batch;
    for (let i = 0; i < removeIds.length; i++) {
      const tid = this.tids.get(removeTopics[i]);
      if (tid !== undefined) s.remove.run(tid, removeIds[i]);
    }
    for (const [name, adds] of batch.adds) {
      const tid = this.tids.get(name)!;
      for (const m of adds.values()) {
        s.insert.run(tid, m.id, m.created, m.deliveries, m.payload, m.origin?.topic ?? null, m.origin?.id ?? null, m.origin?.deliveries ?? null);
      }
    }
    for (const [name, updates] of batch.updates) {
      const tid = this.tids.get(name);
      if (tid === undefined) continue;
      for (const m of updates.values()) s.update.run(m.deliveries, tid, m.id);
    }
  }

  // ---- file growth ----

  /**
   * Once idle: gives free pages back to the file system (a step at a time, so no pause is long)
   * and checkpoints the WAL to zero bytes. Under load, SQLite's own checkpoints every 1000 pages
   * keep the WAL bounded and deleted messages' pages are reused, so the file does not grow.
   */
  private maintain(): void {
    if (this.closed || this.dirty || !this.needsMaintenance || Date.now() - this.lastCommit < IDLE_MS) return;
    try {
      const free = (this.db.query("PRAGMA freelist_count").values()[0]?.[0] as number) ?? 0;
      if (free >= VACUUM_MIN_PAGES) this.db.exec(`PRAGMA incremental_vacuum(${VACUUM_STEP_PAGES})`);
      const [busy] = this.db.query("PRAGMA wal_checkpoint(TRUNCATE)").values()[0] as number[];
      this.needsMaintenance = busy !== 0 || free - VACUUM_STEP_PAGES >= VACUUM_MIN_PAGES;
    } catch (e) {
      this.onError(storageError(`cannot checkpoint ${this.path}`, e, "check free disk space and the disk"));
    }
  }
}

/**
 * Opens (or creates) the store in `dir` and takes the directory's lock. Throws STORAGE with a
 * one-line reason for a directory it cannot use, a file that is not a msgbus database, a
 * corrupt one, or a directory another server holds; it never starts empty over existing data.
 */
export function openSqliteStore(dir: string, options: SqliteStoreOptions = {}): SqliteStore {
  const fsync = options.fsync ?? "process";
  try {
    mkdirSync(dir, { recursive: true });
    if (!statSync(dir).isDirectory()) throw new Error("not a directory");
  } catch (e) {
    throw storageError(`cannot use data directory ${dir}`, e, "choose a writable directory for --data");
  }
  const lock = takeLock(dir);
  let db: Database | undefined;
  try {
    db = openDatabase(join(dir, DATABASE_FILE), fsync);
    return new SqliteStore(dir, db, lock, { ...options, fsync });
  } catch (e) {
    db?.close();
    lock.close();
    if (e instanceof BusError) throw e;
    throw storageError(`cannot open ${join(dir, DATABASE_FILE)}`, e, "restore it from a backup, or move it away to start empty");
  }
}

/**
 * An exclusive SQLite lock on <dir>/msgbus.lock, held until close. The OS drops it when the
 * process dies (even on kill -9), so a crash never leaves a stale lock behind.
 */
function takeLock(dir: string): Database {
  const path = join(dir, LOCK_FILE);
  let lock: Database;
  try {
    lock = new Database(path, { create: true, readwrite: true });
  } catch (e) {
    throw storageError(`cannot create ${path}`, e, "choose a writable directory for --data");
  }
  try {
    lock.exec("PRAGMA busy_timeout = 0");
    lock.exec("PRAGMA locking_mode = EXCLUSIVE");
    lock.exec("BEGIN EXCLUSIVE");
    lock.exec("COMMIT");
    return lock;
  } catch (e) {
    lock.close();
    if (sqliteCode(e) === "SQLITE_BUSY") {
      throw new BusError(
        "STORAGE",
        `data directory ${dir} is in use by another msgbus server (lock on ${path}): stop it or choose another --data directory`,
      );
    }
    throw storageError(`cannot lock ${path}`, e, "choose a writable directory for --data");
  }
}

function openDatabase(path: string, fsync: FsyncMode): Database {
  const db = new Database(path, { create: true, readwrite: true });
  try {
    db.exec("PRAGMA busy_timeout = 0");
    const tables = (db.query("SELECT count(*) FROM sqlite_master").values()[0][0] as number) ?? 0;
    const appId = db.query("PRAGMA application_id").values()[0][0] as number;
    const version = db.query("PRAGMA user_version").values()[0][0] as number;
    if (tables > 0 && appId !== APPLICATION_ID) {
      throw new BusError("STORAGE", `${path} is a database of another program, not msgbus: choose another --data directory`);
    }
    if (version > SCHEMA_VERSION) {
      throw new BusError("STORAGE", `${path} was written by a newer msgbus (schema ${version}): upgrade msgbus`);
    }
    // Must come before the first table: lets the maintenance give free pages back to the disk.
    if (tables === 0) db.exec("PRAGMA auto_vacuum = INCREMENTAL");
    const mode = db.query("PRAGMA journal_mode = WAL").values()[0][0];
    if (mode !== "wal") throw new Error(`the file system does not support SQLite's WAL mode (journal mode ${mode})`);
    db.exec(`PRAGMA synchronous = ${fsync === "always" ? "FULL" : "NORMAL"}`);
    // macOS only: fsync does not reach the disk platter without F_FULLFSYNC.
    if (fsync === "always") db.exec("PRAGMA fullfsync = ON; PRAGMA checkpoint_fullfsync = ON");
    db.exec(`PRAGMA journal_size_limit = ${JOURNAL_SIZE_LIMIT}`);
    db.exec("BEGIN IMMEDIATE");
    db.exec(SCHEMA);
    db.exec(`PRAGMA application_id = ${APPLICATION_ID}`);
    // Writing the header proves now, not at the first message, that the file is writable.
    db.exec(`PRAGMA user_version = ${SCHEMA_VERSION}`);
    db.exec("COMMIT");
    return db;
  } catch (e) {
    db.close();
    throw e;
  }
}

function sqliteCode(e: unknown): string | undefined {
  return typeof e === "object" && e !== null && "code" in e ? String((e as { code: unknown }).code) : undefined;
}

/** One line: what failed, why (SQLite's or the OS's words), and what the user can do. */
function storageError(what: string, e: unknown, advice: string): BusError {
  if (e instanceof BusError) return e;
  const code = sqliteCode(e);
  const reason = e instanceof Error ? e.message : String(e);
  const hint =
    code === "SQLITE_NOTADB" || code === "SQLITE_CORRUPT"
      ? "restore it from a backup, or move it away to start empty"
      : code === "SQLITE_FULL"
        ? "free some disk space"
        : code === "SQLITE_READONLY" || code === "SQLITE_CANTOPEN" || code === "SQLITE_PERM"
          ? "make the file and its directory writable by the user msgbus runs as"
          : advice;
  return new BusError("STORAGE", `${what}: ${reason}${code && !reason.includes(code) ? ` (${code})` : ""}: ${hint}`);
}
