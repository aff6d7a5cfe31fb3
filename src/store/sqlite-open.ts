// Opening a data directory: its lock, the msgbus.db file (created, checked, or migrated from an
// older schema) and its SQLite settings. Also the one-line storage errors every part reports.

import { Database } from "bun:sqlite";
import { mkdirSync, statSync } from "node:fs";
import { join } from "node:path";
import { BusError } from "../core/errors.ts";
import { checkDataFiles, writeMarks } from "./damage.ts";

/** `process`: an acknowledged write survives a crash of msgbus; `always`: also a power cut. */
export type FsyncMode = "process" | "always";

export const DATABASE_FILE = "msgbus.db";
export const LOCK_FILE = "msgbus.lock";

/** "msgb": marks the file as ours, so we never adopt somebody else's database. */
const APPLICATION_ID = 0x6d736762;
/**
 * 1: messages plus a unique index on (tid, id); a version 1 file may lack origin_deliveries (added
 * without a version change). 2: the same table without the index, origin_deliveries always there.
 */
export const SCHEMA_VERSION = 2;
/**
 * SQLite checkpoints the WAL into the database once it holds this many 4 KiB pages (16 MiB; its
 * default is 1,000). Measured: 1,000 / 4,000 / 10,000 pages gave 64k / 67k / 70k writes/s at
 * redis-benchmark -P 1 (p99 6.0 / 3.0 / 2.6 ms) but a longest pause of 10 / 26 / 49 ms (a
 * checkpoint blocks the event loop while it copies); no difference at -P 16.
 */
const WAL_AUTOCHECKPOINT_PAGES = 4000;
/** The WAL file is cut back to this size after a checkpoint: above the checkpoint size, so it is reused. */
const JOURNAL_SIZE_LIMIT = 32 * 1048576;

// Messages live in one b-tree, a rowid table in write order (seq): every write appends at its end
// whatever the topic. There is no index on (tid, id): the store knows where each topic's messages
// are from memory (TopicRows, row-index.ts), so removals and delivery updates go straight to the row by seq.
// Measured against keying the table by (tid << 44 | id) instead: as fast with one topic, 5-9x
// less time per commit with 10-100 topics (appends at one place, not page splits in the middle of
// the tree), and no limit on ids or topics. A WITHOUT ROWID table keyed by (tid, id) spills rows
// over ~1 KB into overflow pages (4.5x the file size, 3x slower at 1 KB).
const TOPICS_TABLE = `
CREATE TABLE topics (
  tid INTEGER PRIMARY KEY,
  name TEXT NOT NULL UNIQUE,
  last_id INTEGER NOT NULL
);`;
const MESSAGES_TABLE = `
CREATE TABLE messages (
  seq INTEGER PRIMARY KEY,
  tid INTEGER NOT NULL,
  id INTEGER NOT NULL,
  created INTEGER NOT NULL,
  deliveries INTEGER NOT NULL,
  payload BLOB NOT NULL,
  origin_topic TEXT,
  origin_id INTEGER,
  origin_deliveries INTEGER
);`;

/** An opened data directory: its database, the lock held on it, and what opening found. */
export interface DataDirectory {
  db: Database;
  lock: Database;
  /** What was done to an older schema, for the log; undefined when nothing. */
  migration?: string;
  /** The ids msgbus.ids recorded (checked by load()); undefined when there was no such file. */
  expectedIds?: Map<string, number>;
}

/**
 * Opens (or creates) the data directory `dir` and takes its lock. Throws STORAGE with a
 * one-line reason for a directory it cannot use, a file that is not a msgbus database, a
 * corrupt one, or a directory another server holds; it never starts empty over existing data.
 * A database of an older schema is checked and migrated in place. On failure nothing stays open.
 */
export function openDataDirectory(dir: string, fsync: FsyncMode): DataDirectory {
  try {
    mkdirSync(dir, { recursive: true });
    if (!statSync(dir).isDirectory()) throw new Error("not a directory");
  } catch (e) {
    throw storageError(`cannot use data directory ${dir}`, e, "choose a writable directory for --data");
  }
  const lock = takeLock(dir);
  let db: Database | undefined;
  try {
    const expectedIds = checkDataFiles(dir, join(dir, DATABASE_FILE));
    const opened = openDatabase(join(dir, DATABASE_FILE), fsync);
    db = opened.db;
    if (opened.created) writeMarks(dir, []);
    return { db, lock, migration: opened.migration, expectedIds };
  } catch (e) {
    if (db) closeUntouched(db, join(dir, DATABASE_FILE));
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
      throw new BusError("STORAGE", `data directory ${dir} is in use by another msgbus server (lock on ${path}): stop it or choose another --data directory`);
    }
    throw storageError(`cannot lock ${path}`, e, "choose a writable directory for --data");
  }
}

/**
 * Opens msgbus.db. Writes to it only to create it or to migrate an older schema (after checking
 * every page): a current msgbus database is not written before load() has read it whole, so a
 * damaged file the store refuses is left exactly as it was.
 */
function openDatabase(path: string, fsync: FsyncMode): { db: Database; migration?: string; created: boolean } {
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
    // A no-op for a file already in WAL mode, which every msgbus database is.
    const mode = db.query("PRAGMA journal_mode = WAL").values()[0][0];
    if (mode !== "wal") throw new Error(`the file system does not support SQLite's WAL mode (journal mode ${mode})`);
    db.exec(`PRAGMA synchronous = ${fsync === "always" ? "FULL" : "NORMAL"}`);
    // macOS only: fsync does not reach the disk platter without F_FULLFSYNC.
    if (fsync === "always") db.exec("PRAGMA fullfsync = ON; PRAGMA checkpoint_fullfsync = ON");
    db.exec(`PRAGMA journal_size_limit = ${JOURNAL_SIZE_LIMIT}`);
    db.exec(`PRAGMA wal_autocheckpoint = ${WAL_AUTOCHECKPOINT_PAGES}`);
    const migrating = tables > 0 && version < SCHEMA_VERSION;
    if (migrating) checkPages(db, path);
    db.exec("BEGIN IMMEDIATE");
    let migration: string | undefined;
    try {
      if (tables === 0) db.exec(TOPICS_TABLE + MESSAGES_TABLE);
      if (migrating) migration = migrate(db, path, version);
      // For a current file this header write is rolled back: SQLite says now, not at the first
      // message, when the file is read-only, and nothing reaches the file.
      db.exec(`PRAGMA application_id = ${APPLICATION_ID}`);
      db.exec(`PRAGMA user_version = ${SCHEMA_VERSION}`);
      db.exec(tables === 0 || migrating ? "COMMIT" : "ROLLBACK");
    } catch (e) {
      if (db.inTransaction) db.exec("ROLLBACK");
      throw e;
    }
    return { db, migration, created: tables === 0 };
  } catch (e) {
    closeUntouched(db, path);
    throw e;
  }
}

/**
 * Closes `db` without the checkpoint SQLite does when the last connection to a file closes: a
 * read-only connection is opened first and closes last (those never checkpoint), so a file the
 * store refused keeps its bytes, and a WAL left by a crash stays beside it, unapplied.
 */
export function closeUntouched(db: Database, path: string): void {
  let reader: Database | undefined;
  try {
    reader = new Database(path, { readonly: true });
    reader.query("SELECT count(*) FROM sqlite_master").values();
  } catch {
    // Not a database SQLite can read: it has no WAL to apply either.
  }
  db.close();
  reader?.close();
}

/** Reads every page of a file about to be migrated: a damaged one is refused before anything is written. */
function checkPages(db: Database, path: string): void {
  const [result] = (db.query("PRAGMA quick_check(1)").values()[0] ?? ["no answer"]) as [string];
  if (result !== "ok") {
    const problem = result.replace(/\*\*\* in database \w+ \*\*\*\s*/, "").split("\n")[0];
    throw new BusError("STORAGE", `cannot open ${path}: it is damaged (${problem}): restore it from a backup, or move it away to start empty`);
  }
}

/**
 * Schema 1 to 2, inside the caller's transaction: drops the unique index on (tid, id) and adds
 * origin_deliveries where it is missing. Returns the line for the log.
 */
function migrate(db: Database, path: string, version: number): string {
  const started = performance.now();
  if (version !== 1) {
    throw new BusError(
      "STORAGE",
      `${path} has a msgbus schema this version does not know (${version}): restore it from a backup, or move it away to start empty`,
    );
  }
  const columns = new Set((db.query("PRAGMA table_info(messages)").values() as [number, string][]).map((c) => c[1]));
  for (const needed of ["seq", "tid", "id", "created", "deliveries", "payload", "origin_topic", "origin_id"]) {
    if (!columns.has(needed)) throw new Error(`its schema 1 table messages has no column ${needed}`);
  }
  const steps = ["dropped the index on (tid, id)"];
  if (!columns.has("origin_deliveries")) {
    db.exec("ALTER TABLE messages ADD COLUMN origin_deliveries INTEGER");
    // Before origin_deliveries, a dead letter kept the count it failed with in deliveries (and
    // showed it as its own): that count is its origin's, and its deliveries as a dead letter start at 0.
    const moved = db.prepare("UPDATE messages SET origin_deliveries = deliveries, deliveries = 0 WHERE origin_topic IS NOT NULL").run().changes;
    steps.push(`added origin_deliveries (${moved} dead letters)`);
  }
  db.exec("DROP INDEX IF EXISTS messages_key");
  const [messages, topics] = db.query("SELECT (SELECT count(*) FROM messages), (SELECT count(*) FROM topics)").values()[0] as number[];
  return (
    `migrated ${path} from schema ${version} to ${SCHEMA_VERSION} (${steps.join(", ")}): ` +
    `${messages} messages in ${topics} topics, ${Math.round(performance.now() - started)} ms`
  );
}

function sqliteCode(e: unknown): string | undefined {
  return typeof e === "object" && e !== null && "code" in e ? String((e as { code: unknown }).code) : undefined;
}

/** One line: what failed, why (SQLite's or the OS's words), and what the user can do. */
export function storageError(what: string, e: unknown, advice: string): BusError {
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
