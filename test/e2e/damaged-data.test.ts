// End-to-end: a damaged data directory is refused at start (issue 8, item 7) — exit 9, one line
// naming the file, the files left byte for byte — instead of starting with fewer messages and
// giving old ids again. A crash's torn last commit is not damage: that still starts.

import { afterAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { existsSync, readFileSync, truncateSync, unlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { cleanupAll, freePort, removeTempDirs, tempDir, runCli, startServer } from "../helpers/index.ts";
import { Resp } from "./transports.ts";

setDefaultTimeout(60000);

afterAll(async () => {
  await cleanupAll();
  removeTempDirs();
});

const dataDir = () => tempDir("msgbus-damaged-");

const sha256 = (path: string) => new Bun.CryptoHasher("sha256").update(readFileSync(path)).digest("hex");

/** Every file of the directory and its hash (the lock files aside): what "left untouched" compares. */
function snapshot(dir: string): Record<string, string> {
  const files: Record<string, string> = {};
  for (const name of ["msgbus.db", "msgbus.db-wal", "msgbus.ids"]) {
    const path = join(dir, name);
    if (existsSync(path)) files[name] = sha256(path);
  }
  return files;
}

/** Writes `count` messages to topic q, one commit each (each PUT awaited); returns the server. */
async function written(dir: string, count: number) {
  const server = await startServer({ httpPort: 0, args: ["--data", dir], startTimeoutMs: 15000 });
  const c = await Resp.connect(server.port);
  for (let i = 1; i <= count; i++) expect(await c.send(["PUT", "q", `m${i} ${"x".repeat(200)}`])).toBe(i);
  c.close();
  return server;
}

async function expectRefused(dir: string, pattern: RegExp): Promise<void> {
  const before = snapshot(dir);
  const result = await runCli(["serve", "--host", "127.0.0.1", "--port", String(freePort()), "--http-port", "0", "--data", dir], {
    timeoutMs: 15000,
  });
  const lines = result.stderr.split("\n").filter((l) => l.trim() !== "");
  expect(result.code).toBe(9);
  expect(lines).toHaveLength(1);
  expect(lines[0]).toMatch(/^msgbus: /);
  expect(lines[0]).toMatch(pattern);
  expect(snapshot(dir)).toEqual(before);
}

describe("a damaged data directory", () => {
  test("a 0-byte msgbus.db is refused, and stays 0 bytes", async () => {
    const dir = dataDir();
    writeFileSync(join(dir, "msgbus.db"), "");
    await expectRefused(dir, /msgbus\.db is empty \(0 bytes\).*(backup|move)/);
    expect(readFileSync(join(dir, "msgbus.db")).length).toBe(0);
  });

  test("a msgbus.db emptied after a clean stop is refused: msgbus.ids remembers its topics", async () => {
    const dir = dataDir();
    const server = await written(dir, 3);
    expect(await server.stop()).toBe(0);
    expect(readFileSync(join(dir, "msgbus.ids"), "utf8")).toBe("msgbus ids 1\n3\tq\n");
    truncateSync(join(dir, "msgbus.db"), 0);
    await expectRefused(dir, /msgbus\.db is empty \(0 bytes\) but msgbus\.ids records 1 topics/);
  });

  test("a deleted msgbus.db is refused while its WAL or msgbus.ids is there, and is not created again", async () => {
    const dir = dataDir();
    const server = await written(dir, 5);
    expect(await server.stop("SIGKILL")).toBe(137);
    expect(existsSync(join(dir, "msgbus.db-wal"))).toBe(true);
    unlinkSync(join(dir, "msgbus.db"));
    await expectRefused(dir, /msgbus\.db is missing but msgbus\.ids/);
    unlinkSync(join(dir, "msgbus.ids"));
    await expectRefused(dir, /msgbus\.db is missing but its WAL \(\d+ bytes\) is still there/);
    expect(existsSync(join(dir, "msgbus.db"))).toBe(false);
  });

  test("a WAL damaged in the middle after kill -9 is refused: SQLite would drop the commits after it and give their ids again", async () => {
    const dir = dataDir();
    const server = await written(dir, 20);
    expect(await server.stop("SIGKILL")).toBe(137);
    const walPath = join(dir, "msgbus.db-wal");
    const wal = readFileSync(walPath);
    const frame = 24 + 4096;
    expect(wal.length).toBeGreaterThan(32 + 6 * frame);
    // Frame 3's page: a few bytes flipped, as a bad sector or a stray write would.
    for (let i = 0; i < 8; i++) wal[32 + 2 * frame + 24 + 1000 + i] ^= 0xff;
    writeFileSync(walPath, wal);
    await expectRefused(dir, /msgbus\.db-wal is damaged \(frame 3 of \d+ does not match its checksum, and committed frames follow it\)/);
  });

  test("a WAL torn inside its last frame (a crash during that commit) starts with the commits before it, ids going on", async () => {
    const dir = dataDir();
    const server = await written(dir, 10);
    expect(await server.stop("SIGKILL")).toBe(137);
    const walPath = join(dir, "msgbus.db-wal");
    const size = readFileSync(walPath).length;
    truncateSync(walPath, size - 1000);
    const restarted = await startServer({ httpPort: 0, args: ["--data", dir], startTimeoutMs: 15000 });
    const c = await Resp.connect(restarted.port);
    const left = (await c.send(["LLEN", "q"])) as number;
    expect(left).toBeGreaterThanOrEqual(8);
    expect(left).toBeLessThanOrEqual(10);
    expect(await c.send(["PUT", "q", "next"])).toBe(left + 1);
    c.close();
    expect(await restarted.stop()).toBe(0);
  });

  test("a fresh empty directory starts, and a clean restart of a good one too", async () => {
    const dir = dataDir();
    const server = await written(dir, 2);
    expect(await server.stop()).toBe(0);
    const again = await startServer({ httpPort: 0, args: ["--data", dir], startTimeoutMs: 15000 });
    const c = await Resp.connect(again.port);
    expect(await c.send(["LLEN", "q"])).toBe(2);
    c.close();
    expect(await again.stop()).toBe(0);
  });
});
