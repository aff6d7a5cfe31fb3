// `msgbus bench` against a real server, every mode over TCP, HTTP and WebSocket: its counts agree
// with what the server saw (the server's totals move by exactly --msgs), its CSV is well-formed, and
// the topic it used is gone afterwards. Numbers are not judged: timing is the benchmark's business.

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { CSV_HEADER } from "../../src/bench/report.ts";
import { cleanupAll, hasBinary, runCli, startServer, type TestServer } from "../helpers/index.ts";

afterAll(() => cleanupAll());

const MSGS = 300;
const CLIENTS = 2;
let counter = 0;

interface Totals {
  messagesIn: number;
  acked: number;
}

/** Parses CSV as RFC 4180 writes it (quoted fields may hold commas, quotes and newlines). */
function parseCsv(text: string): string[][] {
  const rows: string[][] = [];
  let row: string[] = [];
  let field = "";
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (quoted) {
      if (c === '"' && text[i + 1] === '"') {
        field += '"';
        i++;
      } else if (c === '"') quoted = false;
      else field += c;
    } else if (c === '"') quoted = true;
    else if (c === ",") {
      row.push(field);
      field = "";
    } else if (c === "\n") {
      row.push(field);
      rows.push(row);
      row = [];
      field = "";
    } else field += c;
  }
  if (field !== "" || row.length > 0) throw new Error("the CSV does not end with a newline");
  return rows;
}

describe.skipIf(!hasBinary())("msgbus bench", () => {
  let server: TestServer;
  const csvFiles: string[] = [];

  beforeAll(async () => {
    server = await startServer();
  });
  afterAll(() => {
    for (const file of csvFiles) rmSync(file, { force: true });
  });

  const topics = async () => (await (await fetch(`${server.httpUrl}/_/topics`)).json()) as { topics: { name: string }[]; totals: Totals };

  const transports = () => ({ tcp: server.url, http: server.httpUrl, ws: server.httpUrl.replace(/^http/, "ws") });

  for (const transport of ["tcp", "http", "ws"] as const) {
    for (const mode of ["pub", "sub", "queue", "latency"] as const) {
      test(`${mode} over ${transport}: the summary counts --msgs, the server saw exactly that, the CSV parses and the topic is gone`, async () => {
        const topic = `bench-test-${mode}-${transport}-${++counter}`;
        const csv = join(tmpdir(), `msgbus-bench-${process.pid}-${counter}.csv`);
        csvFiles.push(csv);
        const before = (await topics()).totals;
        const rate = mode === "latency" ? ["--rate", "3000"] : [];
        const result = await runCli(
          ["bench", mode, topic, "--msgs", String(MSGS), "--clients", String(CLIENTS), "--csv", csv, "--url", transports()[transport], ...rate],
          { timeoutMs: 30000 },
        );
        expect(result.stderr).toBe(""); // no progress line when stderr is not a terminal, no warning
        expect(result.code).toBe(0);

        // The server's own counters moved by what bench says it did.
        const after = await topics();
        expect(after.totals.messagesIn - before.messagesIn).toBe(MSGS);
        if (mode === "queue") expect(after.totals.acked - before.acked).toBe(MSGS);
        expect(after.topics.map((t) => t.name)).not.toContain(topic);

        // The CSV: our header, then one row per role with as many fields, numbers where numbers go.
        const rows = parseCsv(await Bun.file(csv).text());
        expect(rows[0]).toEqual([...CSV_HEADER]);
        const roles = rows.slice(1).map((row) => {
          expect(row.length).toBe(CSV_HEADER.length);
          const record = Object.fromEntries(CSV_HEADER.map((name, i) => [name, row[i]!]));
          for (const name of CSV_HEADER.slice(3)) expect(Number.isFinite(Number(record[name]))).toBe(true);
          expect(record.mode).toBe(mode);
          expect(record.url).toBe(transports()[transport]);
          return record;
        });
        const publish = roles.find((r) => r.role === "publish")!;
        expect(Number(publish.msgs)).toBe(MSGS);
        expect(Number(publish.bytes)).toBe(MSGS * 128);
        if (mode === "pub") {
          expect(roles.length).toBe(1);
          expect(Number(publish.clients)).toBe(CLIENTS);
        } else {
          expect(roles.length).toBe(2);
          const receivers = roles[1]!;
          expect(receivers.role).toBe(mode === "queue" ? "consume" : "receive");
          expect(Number(receivers.clients)).toBe(CLIENTS);
          // Fan-out: every subscriber had every message; a queue: each message went to one consumer.
          expect(Number(receivers.msgs)).toBe(mode === "queue" ? MSGS : MSGS * CLIENTS);
          expect(Number(receivers.p50_ms)).toBeGreaterThanOrEqual(0);
          expect(Number(receivers.p50_ms)).toBeLessThanOrEqual(Number(receivers.p99_9_ms));
        }

        // The table on stdout says the same counts.
        expect(result.stdoutText).toContain(`msgbus bench ${mode}: ${transports()[transport]}, topic ${topic}`);
        expect(result.stdoutText).toMatch(new RegExp(`^publish\\s+\\d+\\s+${MSGS}\\s`, "m"));
        if (mode !== "pub") {
          const received = (mode === "queue" ? MSGS : MSGS * CLIENTS).toLocaleString("en-US");
          expect(result.stdoutText).toMatch(new RegExp(`^${mode === "queue" ? "consume" : "receive"}\\s+${CLIENTS}\\s+${received}\\s`, "m"));
        }
      }, 40000);
    }
  }

  test("--duration writes for a time instead of a count, and still cleans up", async () => {
    const topic = `bench-test-duration-${++counter}`;
    const before = (await topics()).totals;
    const result = await runCli(["bench", "sub", topic, "--duration", "300ms", "--rate", "500", "--url", server.url], { timeoutMs: 20000 });
    expect(result.code).toBe(0);
    const written = Number(/^publish\s+\d+\s+([\d,]+)\s/m.exec(result.stdoutText)![1]!.replace(/,/g, ""));
    expect(written).toBeGreaterThan(0);
    const after = await topics();
    expect(after.totals.messagesIn - before.messagesIn).toBe(written);
    expect(after.topics.map((t) => t.name)).not.toContain(topic);
  });

  test("a mode is required, and mistakes are usage errors (exit 2) before anything is written", async () => {
    const before = (await topics()).totals;
    for (const args of [
      ["bench"],
      ["bench", "fast"],
      ["bench", "sub", "--size", "4"],
      ["bench", "pub", "--msgs", "0"],
      ["bench", "pub", "--msgs", "10", "--duration", "1s"],
      ["bench", "pub", "--publishers", "2"],
      ["bench", "pub", "--speed", "9"],
    ]) {
      const result = await runCli([...args, "--url", server.url]);
      expect(result.code).toBe(2);
      expect(result.stderr.trim().split("\n").length).toBe(1);
    }
    expect((await topics()).totals.messagesIn).toBe(before.messagesIn);
  });

  test("an unreachable server exits 4 with one line", async () => {
    const result = await runCli(["bench", "pub", "--msgs", "10", "--url", "tcp://127.0.0.1:1"]);
    expect(result.code).toBe(4);
    expect(result.stderr.trim().split("\n").length).toBe(1);
  });
});
