// Damage in a data directory that SQLite would accept silently, found before anything is written:
// a msgbus.db emptied or deleted while its WAL or id marks remain, a WAL whose committed
// transactions follow a damaged frame, and ids lower than the marks kept in msgbus.ids.

import { closeSync, fsyncSync, openSync, readFileSync, renameSync, statSync, writeSync } from "node:fs";
import { join } from "node:path";
import { BusError } from "../core/errors.ts";

export const IDS_FILE = "msgbus.ids";
const IDS_HEADER = "msgbus ids 1";
const WAL_HEADER = 32;
const FRAME_HEADER = 24;

const RESTORE = "restore it from a backup, or move the data directory away to start empty";

function sizeOf(path: string): number {
  try {
    return statSync(path).size;
  } catch {
    return -1;
  }
}

/**
 * Checks the files of `dir` before SQLite opens them (which would start empty over a 0-byte file,
 * or drop a WAL's transactions after a damaged frame). Returns the id marks (topic -> highest id
 * known to be in msgbus.db), or undefined when there are none. Throws STORAGE with one line.
 */
export function checkDataFiles(dir: string, database: string): Map<string, number> | undefined {
  const marks = readMarks(join(dir, IDS_FILE));
  const dbSize = sizeOf(database);
  const walSize = sizeOf(database + "-wal");
  if (dbSize <= 0 && (marks !== undefined || walSize > 0 || dbSize === 0)) {
    const state = dbSize < 0 ? "is missing" : "is empty (0 bytes)";
    const beside = marks
      ? `${IDS_FILE} records ${marks.size} topics written before`
      : walSize > 0
        ? `its WAL (${walSize} bytes) is still there`
        : "msgbus never leaves an empty file";
    throw new BusError("STORAGE", `${database} ${state} but ${beside}: the data directory is damaged: ${RESTORE}`);
  }
  if (walSize > WAL_HEADER) {
    const problem = walDamage(readFileSync(database + "-wal"));
    if (problem) throw new BusError("STORAGE", `${database}-wal is damaged (${problem}), so committed messages would be lost: ${RESTORE}`);
  }
  return marks;
}

/** After load(): every topic the marks know must be there, with at least the id they recorded. */
export function checkMarks(database: string, marks: Map<string, number>, lastIds: Map<string, number>): void {
  for (const [name, marked] of marks) {
    const found = lastIds.get(name);
    if (found !== undefined && found >= marked) continue;
    throw new BusError(
      "STORAGE",
      `${database} has ${found === undefined ? `no topic ${name}` : `topic ${name} only up to id ${found}`} but ${IDS_FILE} records id ${marked}:` +
        ` the database lost committed messages: ${RESTORE} (after restoring an older backup on purpose, delete ${IDS_FILE})`,
    );
  }
}

function readMarks(path: string): Map<string, number> | undefined {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw new BusError("STORAGE", `cannot read ${path}: ${(e as Error).message}: make it readable by the user msgbus runs as`);
  }
  const lines = text.split("\n");
  const marks = new Map<string, number>();
  const bad = () => new BusError("STORAGE", `${path} is damaged: if msgbus.db beside it is known to be good, delete ${IDS_FILE}; else ${RESTORE}`);
  if (lines[0] !== IDS_HEADER || lines.at(-1) !== "") throw bad();
  for (const line of lines.slice(1, -1)) {
    const tab = line.indexOf("\t");
    const id = Number(line.slice(0, tab));
    if (tab < 1 || !Number.isSafeInteger(id) || id < 0) throw bad();
    marks.set(line.slice(tab + 1), id);
  }
  return marks;
}

/**
 * Records the highest id of every topic, once they are all in msgbus.db and on the device (after a
 * checkpoint): a new file, fsynced, renamed over the old one, the directory fsynced.
 */
export function writeMarks(dir: string, topics: Iterable<[string, number]>): void {
  let text = IDS_HEADER + "\n";
  for (const [name, id] of topics) text += `${id}\t${name}\n`;
  const path = join(dir, IDS_FILE);
  const fd = openSync(path + ".new", "w");
  try {
    writeSync(fd, text);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(path + ".new", path);
  try {
    const dirFd = openSync(dir, "r");
    try {
      fsyncSync(dirFd);
    } finally {
      closeSync(dirFd);
    }
  } catch {
    // Not every platform can fsync a directory (Windows); the rename is still atomic.
  }
}

/**
 * What SQLite would silently drop from a WAL: it replays frames up to the first one whose salts or
 * checksum do not match, and ignores the rest. Frames after that break that carry this WAL's salts
 * and a commit mark were committed transactions: damage, not a crash (a crash only tears the last
 * transaction, which then has no complete commit frame after the break). Returns a description, or
 * undefined when nothing committed would be lost.
 */
export function walDamage(wal: Uint8Array): string | undefined {
  const view = new DataView(wal.buffer, wal.byteOffset, wal.byteLength);
  const magic = view.getUint32(0);
  if (magic !== 0x377f0682 && magic !== 0x377f0683) return "its header is not a WAL header";
  const bigEndian = magic === 0x377f0683;
  const pageSize = view.getUint32(8) || 65536;
  const salt1 = view.getUint32(16);
  const salt2 = view.getUint32(20);
  const frameSize = FRAME_HEADER + pageSize;
  const frames = Math.floor((wal.length - WAL_HEADER) / frameSize);
  let [s0, s1] = checksum(view, 0, 24, 0, 0, bigEndian);
  let valid = s0 === view.getUint32(24) && s1 === view.getUint32(28);
  let broken = valid ? -1 : 0;
  for (let i = 0; i < frames; i++) {
    const at = WAL_HEADER + i * frameSize;
    const ours = view.getUint32(at + 8) === salt1 && view.getUint32(at + 12) === salt2;
    const commit = view.getUint32(at + 4) !== 0;
    if (broken >= 0) {
      if (ours && commit) return `frame ${broken + 1} of ${frames} does not match its checksum, and committed frames follow it`;
      continue;
    }
    if (!ours) break; // the end of this WAL's frames: older ones follow, or nothing
    [s0, s1] = checksum(view, at, 8, s0, s1, bigEndian);
    [s0, s1] = checksum(view, at + FRAME_HEADER, pageSize, s0, s1, bigEndian);
    valid = s0 === view.getUint32(at + 16) && s1 === view.getUint32(at + 20);
    if (!valid) broken = i;
  }
  return undefined;
}

/** SQLite's WAL checksum over `length` bytes (a multiple of 8) at `offset`, continuing from s0, s1. */
function checksum(view: DataView, offset: number, length: number, s0: number, s1: number, bigEndian: boolean): [number, number] {
  const littleEndian = !bigEndian;
  for (let i = offset; i < offset + length; i += 8) {
    s0 = (s0 + view.getUint32(i, littleEndian) + s1) >>> 0;
    s1 = (s1 + view.getUint32(i + 4, littleEndian) + s0) >>> 0;
  }
  return [s0, s1];
}
