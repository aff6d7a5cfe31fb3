// The durable store: every queued message in <dir>/msgbus.db (bun:sqlite, WAL), written by
// group commit (one transaction per event-loop turn). See docs/DURABILITY.md for the promises.

import type { Database, Statement } from "bun:sqlite";
import { statSync } from "node:fs";
import { join } from "node:path";
import { BusError } from "../core/errors.ts";
import type { Message } from "../core/message.ts";
import { StoreCommitError, type Store, type StoredTopic } from "../core/store.ts";
import { checkMarks, writeMarks } from "./damage.ts";
import { RowChunks } from "./row-chunks.ts";
import { TopicRows } from "./row-index.ts";
import { closeUntouched, DATABASE_FILE, type FsyncMode, openDataDirectory, storageError } from "./sqlite-open.ts";

export interface SqliteStoreOptions {
  fsync?: FsyncMode;
  /** Told about every failed commit or maintenance step (the flush promises reject as well). */
  onError?: (error: BusError) => void;
  /** Told what an operator should know that is not an error: a schema migrated at open. */
  onNotice?: (message: string) => void;
}

/** A row number past this is not exact in JavaScript: the store refuses to write there. */
export const MAX_SEQ = Number.MAX_SAFE_INTEGER;
/** A commit that failed is tried again after this long, even if nothing new is written. */
const RETRY_MS = 1000;
/** Maintenance (vacuum, checkpoint) runs once the store has had no commit for this long. */
const IDLE_MS = 1000;
/** Free pages are given back in steps this size (8 MiB, ~40 ms on a laptop), one per idle second. */
const VACUUM_STEP_PAGES = 2048;
/** Fewer free pages than this (1 MiB) are kept for reuse rather than given back. */
const VACUUM_MIN_PAGES = 256;

/** What happened since the last commit, already reduced: an add removed in the same batch is gone. */
class Batch {
  readonly adds = new Map<string, Map<number, Message>>();
  /** Delivery counts of messages already on disk. */
  readonly updates = new Map<string, Map<number, Message>>();
  readonly removeTopics: string[] = [];
  readonly removeIds: number[] = [];
  /** Topics whose rows all go (purged or deleted). */
  readonly purges = new Set<string>();
  /** Of those, the deleted ones: kept when the batch fails (see leftover). */
  readonly deletes = new Set<string>();
  readonly lastIds = new Map<string, number>();
  waiter?: { promise: Promise<void>; resolve: () => void; reject: (e: BusError) => void };

  /**
   * What is kept of a batch that failed: its highest ids (never reused) and its topic deletes (the
   * bus cannot bring a deleted topic back). Its purges go with the rest: the bus queues their
   * messages again (core/undo.ts).
   */
  leftover(): Batch {
    const next = new Batch();
    for (const [name, id] of this.lastIds) next.lastIds.set(name, id);
    for (const name of this.deletes) {
      next.purges.add(name);
      next.deletes.add(name);
    }
    return next;
  }
}

/** What a transaction changes in the store's memory, applied only once it has committed. */
class Changes {
  readonly newTopics: string[] = [];
  /** A run that lost a message: removedFrom[i] is the topic, removedRun[i] the run's index. */
  readonly removedFrom: TopicRows[] = [];
  readonly removedRun: number[] = [];
  readonly purged: TopicRows[] = [];
  readonly runs: { rows: TopicRows; first: number; last: number; seq: number; written: number }[] = [];
  /** The error for messages that could not be given a row (see MAX_SEQ). */
  beyond?: BusError;
}

interface Statements {
  insertTopic: Statement;
  updateTopic: Statement;
  purge: Statement;
  update: Statement;
  remove: RowChunks;
  insert: RowChunks;
}

export class SqliteStore implements Store {
  readonly path: string;
  readonly fsync: FsyncMode;
  /** Commits done and failed, for metrics. */
  commits = 0;
  failures = 0;
  private batch = new Batch();
  /** Changes were reported since the last commit attempt: a flush has something to wait for. */
  private dirty = false;
  /** The batch holds what a failed one kept (its ids and deletes): written by the retry, awaited by nobody. */
  private leftover = false;
  private scheduled = false;
  private closed = false;
  private lostAfterClose = false;
  /** load() found the file damaged: nothing may be written to it, not even at close. */
  private refused = false;
  /** Whether `topics` knows where every stored message is (load() or locate() ran). */
  private located = false;
  private retryTimer?: ReturnType<typeof setTimeout>;
  private readonly maintenanceTimer: ReturnType<typeof setInterval>;
  private lastCommit = 0;
  private needsMaintenance: boolean;
  private readonly topics = new Map<string, TopicRows>();
  private nextTid = 1;
  private nextSeq = 1;
  /** The ids msgbus.ids recorded (checked by load()); undefined when there was no such file. */
  expectedIds?: Map<string, number>;
  /** Topics whose messages were refused, reported to onError once each. */
  private readonly reported = new Set<string>();
  private readonly statements: Statements;
  private readonly onError: (error: BusError) => void;

  constructor(
    readonly dir: string,
    private readonly db: Database,
    private readonly lock: Database,
    options: SqliteStoreOptions,
    /** What openDataDirectory() did to an older schema, for the log; undefined when nothing. */
    readonly migration?: string,
  ) {
    this.path = join(dir, DATABASE_FILE);
    this.fsync = options.fsync ?? "process";
    this.onError = options.onError ?? (() => {});
    // Once idle after start: a migration's free pages go back, and msgbus.ids is brought up to date.
    this.needsMaintenance = true;
    for (const [tid, name] of db.query("SELECT tid, name FROM topics").values() as [number, string][]) {
      this.topics.set(name, new TopicRows(tid));
      this.nextTid = Math.max(this.nextTid, tid + 1);
    }
    this.nextSeq = ((db.query("SELECT max(seq) FROM messages").values()[0][0] as number | null) ?? 0) + 1;
    const repeat = (rows: number, sql: string) => Array.from({ length: rows }, () => sql).join(", ");
    this.statements = {
      insertTopic: db.prepare("INSERT INTO topics (tid, name, last_id) VALUES (?, ?, ?)"),
      updateTopic: db.prepare("UPDATE topics SET last_id = max(last_id, ?) WHERE tid = ?"),
      purge: db.prepare("DELETE FROM messages WHERE seq BETWEEN ? AND ? AND tid = ?"),
      update: db.prepare("UPDATE messages SET deliveries = ? WHERE seq = ?"),
      remove: new RowChunks(db, (rows) => `DELETE FROM messages WHERE seq IN (${repeat(rows, "?")})`, 1),
      insert: new RowChunks(
        db,
        (rows) =>
          "INSERT INTO messages (seq, tid, id, created, deliveries, payload, origin_topic, origin_id, origin_deliveries)" +
          ` VALUES ${repeat(rows, "(?, ?, ?, ?, ?, ?, ?, ?, ?)")}`,
        9,
      ),
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
    // A pending add writes the count it has at commit time: this object's (the bus's queue packs
    // messages and builds them again when they are taken, so it may not be the one added).
    const adds = batch.adds.get(message.topic);
    if (adds?.has(message.id)) {
      adds.set(message.id, message);
      return;
    }
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

  deleted(topic: string): void {
    const batch = this.pending();
    if (!batch) return;
    this.purged(topic);
    batch.deletes.add(topic);
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
    if (this.dirty || this.leftover) this.commit(true);
    try {
      const list = this.db.query("SELECT tid, name, last_id FROM topics ORDER BY tid").values() as [number, string, number][];
      const stored = new Map<number, StoredTopic>();
      for (const [tid, name, lastId] of list) stored.set(tid, { name, lastId, messages: [] });
      this.scan(
        "created, deliveries, payload, origin_topic, origin_id, origin_deliveries",
        (tid, id, row) => {
          const topic = stored.get(tid)!;
          const created = row[3] as number;
          const deliveries = row[4] as number;
          const payload = row[5];
          const originTopic = row[6] as string | null;
          if (!(payload instanceof Uint8Array)) throw new Error(`message ${id} of ${topic.name} has no payload`);
          topic.messages.push(
            originTopic === null
              ? { id, topic: topic.name, created, payload, deliveries }
              : {
                  id,
                  topic: topic.name,
                  created,
                  payload,
                  deliveries,
                  origin: { topic: originTopic, id: (row[7] as number | null) ?? 0, deliveries: (row[8] as number | null) ?? 0 },
                },
          );
          if (id > topic.lastId) topic.lastId = id;
        },
        (tid) => stored.get(tid)!.messages.sort((x, y) => x.id - y.id),
      );
      if (this.expectedIds) checkMarks(this.path, this.expectedIds, new Map([...stored.values()].map((t) => [t.name, t.lastId])));
      return [...stored.values()];
    } catch (e) {
      this.refused = true;
      throw storageError(`cannot read ${this.path}`, e, "restore it from a backup, or move it away to start empty");
    }
  }

  /**
   * Writes what is pending, checkpoints, closes the files and releases the directory. A file
   * that load() refused is closed without a write or a checkpoint: it stays exactly as it was.
   */
  close(): void {
    if (this.closed) return;
    clearInterval(this.maintenanceTimer);
    clearTimeout(this.retryTimer);
    let failure: unknown;
    try {
      if ((this.dirty || this.leftover) && !this.refused) this.commit(true);
    } catch (e) {
      failure = e;
    }
    this.closed = true;
    clearTimeout(this.retryTimer);
    // Unfinalized statements would keep the connection (and the WAL files) open after close().
    const s = this.statements;
    for (const statement of [s.insertTopic, s.updateTopic, s.purge, s.update]) statement.finalize();
    s.insert.finalize();
    s.remove.finalize();
    if (this.refused) {
      closeUntouched(this.db, this.path);
    } else {
      try {
        const [busy] = this.db.query("PRAGMA wal_checkpoint(TRUNCATE)").values()[0] as number[];
        if (busy === 0) this.markIds();
      } catch {
        // The WAL stays and is replayed on the next open: nothing is lost.
      }
      this.db.close();
    }
    this.lock.close();
    if (failure) throw failure;
  }

  /** How many runs of messages the store keeps in memory to find rows (for metrics and tests). */
  runCount(): number {
    let runs = 0;
    for (const rows of this.topics.values()) runs += rows.runs();
    return runs;
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

  // ---- where the messages are ----

  /**
   * Reads every message row in write order and rebuilds where each topic's messages are. `row`
   * gets seq, tid, id and then `columns`; `unsorted` a topic found out of id order (never seen).
   */
  private scan(columns: string, row: (tid: number, id: number, values: unknown[]) => void, unsorted: (tid: number) => void): void {
    const byTid = new Map<number, TopicRows>();
    for (const rows of this.topics.values()) {
      rows.clear();
      byTid.set(rows.tid, rows);
    }
    const outOfOrder = new Set<number>();
    // In chunks: as fast as one big query, without holding every row twice.
    const chunk = this.db.query(`SELECT seq, tid, id, ${columns} FROM messages WHERE seq > ? ORDER BY seq LIMIT 50000`);
    let seq = 0;
    let rows: TopicRows | undefined;
    for (;;) {
      const chunkRows = chunk.values(seq) as unknown[][];
      if (chunkRows.length === 0) break;
      for (const values of chunkRows) {
        seq = values[0] as number;
        const tid = values[1] as number;
        const id = values[2] as number;
        if (rows?.tid !== tid) {
          rows = byTid.get(tid);
          if (!rows) throw new Error(`message ${id} belongs to unknown topic number ${tid}`);
        }
        const newest = rows.first.length - 1;
        if (newest >= rows.head && id <= rows.last[newest]) outOfOrder.add(tid);
        rows.append(id, id, seq, 1);
        row(tid, id, values);
      }
    }
    for (const tid of outOfOrder) unsorted(tid);
    this.nextSeq = Math.max(this.nextSeq, seq + 1);
    this.located = true;
  }

  /** For a store written to without load(): finds the messages already stored, so removals reach them. */
  private locate(): void {
    this.scan(
      "NULL",
      () => {},
      () => {},
    );
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
   * Applies the batch in one transaction. On failure its waiters get a StoreCommitError now (so
   * nobody gets a false ack) and the batch is forgotten but for its ids and deletes, which are
   * tried again (see Store.flush): a removal whose taker got the error is never written later.
   * The store's memory of where messages are changes only once the transaction has committed.
   */
  private commit(throwOnError: boolean): void {
    clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
    const batch = this.batch;
    const changes = new Changes();
    let nextSeq = this.nextSeq;
    try {
      if (this.refused) throw new BusError("STORAGE", `${this.path} was refused when it was read: nothing is written to it`);
      if (!this.located) this.locate();
      nextSeq = this.nextSeq;
      this.db.exec("BEGIN");
      this.apply(batch, changes);
      this.db.exec("COMMIT");
    } catch (e) {
      if (this.db.inTransaction) {
        try {
          this.db.exec("ROLLBACK");
        } catch {
          // Nothing more to undo: SQLite already rolled back.
        }
      }
      for (const name of changes.newTopics) this.topics.delete(name);
      this.nextSeq = nextSeq;
      this.failures++;
      const error = new StoreCommitError(storageError(`cannot write to ${this.path}`, e, "check free disk space and the disk").message);
      // The batch is forgotten (its writers, takers and ackers get the error, the bus undoes its
      // changes in memory, purges included), except what forgetting would lose: the ids it gave,
      // and its topic deletes.
      this.batch = batch.leftover();
      this.dirty = false;
      this.leftover = this.batch.lastIds.size + this.batch.deletes.size > 0;
      batch.waiter?.reject(error);
      batch.waiter = undefined;
      this.onError(error);
      if (!this.closed) this.retryTimer = setTimeout(() => (this.dirty || this.leftover) && !this.closed && this.commit(false), RETRY_MS);
      this.retryTimer?.unref?.();
      if (throwOnError) throw error;
      return;
    }
    this.committed(changes);
    this.batch = new Batch();
    this.dirty = false;
    this.leftover = false;
    this.commits++;
    this.lastCommit = Date.now();
    this.needsMaintenance = true;
    if (changes.beyond) batch.waiter?.reject(changes.beyond);
    else batch.waiter?.resolve();
  }

  private apply(batch: Batch, changes: Changes): void {
    const s = this.statements;
    for (const [name, lastId] of batch.lastIds) {
      const rows = this.topics.get(name);
      if (rows === undefined) {
        const created = new TopicRows(this.nextTid++);
        this.topics.set(name, created);
        changes.newTopics.push(name);
        s.insertTopic.run(created.tid, name, lastId);
      } else {
        s.updateTopic.run(lastId, rows.tid);
      }
    }
    for (const name of batch.purges) {
      const rows = this.topics.get(name);
      if (!rows) continue;
      for (let i = rows.head; i < rows.first.length; i++) s.purge.run(rows.seq[i], rows.seqOf(i, rows.last[i]), rows.tid);
      changes.purged.push(rows);
    }
    s.remove.clear();
    s.insert.clear();
    const { removeTopics, removeIds } = batch;
    const removals = s.remove.values;
    for (let i = 0; i < removeIds.length; i++) {
      const rows = this.topics.get(removeTopics[i]);
      const run = rows ? rows.find(removeIds[i]) : -1;
      if (run < 0) continue; // never written
      removals[s.remove.next()] = rows!.seqOf(run, removeIds[i]);
      changes.removedFrom.push(rows!);
      changes.removedRun.push(run);
    }
    s.remove.finish();
    for (const [name, adds] of batch.adds) this.insert(name, this.topics.get(name)!, adds, changes);
    s.insert.finish();
    for (const [name, updates] of batch.updates) {
      const rows = this.topics.get(name);
      if (!rows) continue;
      for (const m of updates.values()) {
        const run = rows.find(m.id);
        if (run >= 0) s.update.run(m.deliveries, rows.seqOf(run, m.id));
      }
    }
  }

  /** Gives a topic's new messages the next seqs, one run (ids in order, seq = start + id - first id). */
  private insert(name: string, rows: TopicRows, adds: Map<number, Message>, changes: Changes): void {
    let messages = [...adds.values()];
    if (messages.length === 0) return;
    for (let i = 1; i < messages.length; i++) {
      if (messages[i].id <= messages[i - 1].id) {
        messages = messages.sort((x, y) => x.id - y.id);
        break;
      }
    }
    const first = messages[0].id;
    const last = messages[messages.length - 1].id;
    const start = this.nextSeq;
    if (start + (last - first) > MAX_SEQ) {
      const error = new BusError(
        "STORAGE",
        `${this.path} has used every row number up to ${MAX_SEQ}: messages ${first}..${last} of topic ${name} are in memory only` +
          " and lost at a restart (see docs/DURABILITY.md, limits)",
      );
      changes.beyond ??= error;
      if (!this.reported.has(name)) {
        this.reported.add(name);
        this.onError(error);
      }
      return;
    }
    this.nextSeq = start + (last - first) + 1;
    const values = this.statements.insert.values;
    for (const m of messages) {
      let o = this.statements.insert.next();
      const origin = m.origin;
      values[o++] = start + (m.id - first);
      values[o++] = rows.tid;
      values[o++] = m.id;
      values[o++] = m.created;
      values[o++] = m.deliveries;
      values[o++] = m.payload;
      values[o++] = origin ? origin.topic : null;
      values[o++] = origin ? origin.id : null;
      values[o] = origin ? origin.deliveries : null;
    }
    changes.runs.push({ rows, first, last, seq: start, written: messages.length });
  }

  /**
   * The transaction committed: the store's memory of where messages are follows it. Removals
   * first (their run indexes are from before), then purges, then the new runs (a purged topic's
   * new run so starts afresh).
   */
  private committed(changes: Changes): void {
    const { removedFrom, removedRun } = changes;
    for (let i = 0; i < removedFrom.length; i++) removedFrom[i].removed(removedRun[i]);
    for (const rows of changes.purged) rows.clear();
    for (const run of changes.runs) run.rows.append(run.first, run.last, run.seq, run.written);
    for (const rows of removedFrom) rows.trim();
  }

  /**
   * Everything committed is in msgbus.db and on the device (a checkpoint just ended): msgbus.ids
   * records each topic's highest id, a mark a damaged or emptied database cannot hide (damage.ts).
   */
  private markIds(): void {
    writeMarks(this.dir, this.db.query("SELECT name, last_id FROM topics").values() as [string, number][]);
  }

  // ---- file growth ----

  /**
   * Once idle: gives free pages back to the file system (a step at a time, so no pause is long)
   * and checkpoints the WAL to zero bytes. Under load, SQLite's own checkpoints every
   * WAL_AUTOCHECKPOINT_PAGES keep the WAL bounded and deleted messages' pages are reused, so the
   * file does not grow.
   */
  private maintain(): void {
    if (this.closed || this.refused || this.dirty || this.leftover || !this.needsMaintenance || Date.now() - this.lastCommit < IDLE_MS) return;
    try {
      const free = (this.db.query("PRAGMA freelist_count").values()[0]?.[0] as number) ?? 0;
      if (free >= VACUUM_MIN_PAGES) this.db.exec(`PRAGMA incremental_vacuum(${VACUUM_STEP_PAGES})`);
      const [busy] = this.db.query("PRAGMA wal_checkpoint(TRUNCATE)").values()[0] as number[];
      if (busy === 0) this.markIds();
      this.needsMaintenance = busy !== 0 || free - VACUUM_STEP_PAGES >= VACUUM_MIN_PAGES;
    } catch (e) {
      this.onError(storageError(`cannot checkpoint ${this.path}`, e, "check free disk space and the disk"));
    }
  }
}

/**
 * Opens (or creates) the store in `dir` and takes the directory's lock (see openDataDirectory for
 * what it refuses). A database of an older schema is migrated in place (onNotice says so).
 */
export function openSqliteStore(dir: string, options: SqliteStoreOptions = {}): SqliteStore {
  const fsync = options.fsync ?? "process";
  const opened = openDataDirectory(dir, fsync);
  let store: SqliteStore;
  try {
    store = new SqliteStore(dir, opened.db, opened.lock, { ...options, fsync }, opened.migration);
  } catch (e) {
    closeUntouched(opened.db, join(dir, DATABASE_FILE));
    opened.lock.close();
    if (e instanceof BusError) throw e;
    throw storageError(`cannot open ${join(dir, DATABASE_FILE)}`, e, "restore it from a backup, or move it away to start empty");
  }
  store.expectedIds = opened.expectedIds;
  if (opened.migration) options.onNotice?.(opened.migration);
  return store;
}
