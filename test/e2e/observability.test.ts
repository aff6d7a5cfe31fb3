// What an operator watches: the Grafana dashboard in docs/ uses only metrics a live server exports,
// and --log-format json keeps stderr one JSON object per line through every event an operator
// acts on (start-up summary, refused tokens, drops, a slow consumer cut off, reloads, the stop).

import { afterAll, describe, expect, test } from "bun:test";
import { mkdtempSync, writeFileSync } from "node:fs";
import net from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { encodeCommand } from "../../src/protocol/resp-writer.ts";
import { hasBinary } from "../helpers/binary.ts";
import { cleanupAll } from "../helpers/processes.ts";
import { repoFile } from "../helpers/readme.ts";
import { startServer } from "../helpers/server.ts";
import { waitFor } from "../helpers/wait.ts";
import { Resp } from "./transports.ts";

afterAll(() => cleanupAll());

interface Panel {
  title: string;
  targets?: { expr: string }[];
}

describe.skipIf(!hasBinary())("docs/grafana-dashboard.json", () => {
  const dashboard = JSON.parse(repoFile("docs/grafana-dashboard.json")) as { panels: Panel[]; templating: { list: { definition?: string }[] } };
  const expressions = [
    ...dashboard.panels.flatMap((p) => (p.targets ?? []).map((t) => t.expr)),
    ...dashboard.templating.list.flatMap((v) => (v.definition ? [v.definition] : [])),
  ];
  const used = new Set(expressions.flatMap((e) => e.match(/\bmsgbus_[a-z_]+/g) ?? []));

  test("shows rates in and out, depth, bytes against the limit, connections, slow consumers, drops and dead letters", () => {
    for (const name of [
      "msgbus_messages_in_total",
      "msgbus_messages_out_total",
      "msgbus_queue_depth",
      "msgbus_bytes_held",
      "msgbus_memory_limit_bytes",
      "msgbus_connections",
      "msgbus_slow_consumers_total",
      "msgbus_dropped_total",
      "msgbus_dead_lettered_total",
    ]) {
      expect(used).toContain(name);
    }
  });

  test("every metric it uses exists on a live server's /_/metrics", async () => {
    const server = await startServer();
    try {
      // A topic, so that the per-topic series are there too.
      await fetch(`${server.httpUrl}/jobs`, { method: "POST", body: "x" });
      const text = await (await fetch(`${server.httpUrl}/_/metrics`)).text();
      const exported = new Set([...text.matchAll(/^# TYPE (\S+) /gm)].map((m) => m[1]!));
      const missing = [...used].filter((name) => !exported.has(name));
      expect(missing).toEqual([]);
      expect(used.size).toBeGreaterThan(15);
    } finally {
      await server.stop();
    }
  });
});

describe.skipIf(!hasBinary())("--log-format json", () => {
  test("every stderr line is one JSON object, through refused tokens, drops, a slow consumer, reloads and the stop", async () => {
    const dir = mkdtempSync(join(tmpdir(), "msgbus-logs-"));
    const acl = join(dir, "acl");
    writeFileSync(acl, "admin-k3y admin *\n");
    const server = await startServer({
      httpPort: 0,
      args: ["--log-format", "json", "--acl", acl, "--max-queue", "2", "--send-buffer", "64KiB"],
    });
    const admin = await Resp.connect(server.port);
    const stalled = net.connect(server.port, "127.0.0.1");
    stalled.on("error", () => {});
    const connected = new Promise<void>((resolve) => stalled.on("connect", () => resolve()));
    try {
      expect(await admin.send(["AUTH", "wrong"])).toBeDefined();
      expect(await admin.send(["AUTH", "admin-k3y"])).toBe("OK");
      // A subscriber that never reads, then more than the kernel's buffers and --send-buffer hold.
      await connected;
      stalled.write(encodeCommand(["AUTH", "admin-k3y"]));
      stalled.write(encodeCommand(["SUB", "flood"]));
      await waitFor(async () => Array.isArray(await admin.send(["STATS", "flood"])), { what: "the subscription" });
      stalled.pause();
      const chunk = new Uint8Array(65536).fill(120);
      for (let i = 0; i < 400 && !server.stderrText().includes("slow consumer"); i += 16) {
        await Promise.all(Array.from({ length: 16 }, () => admin.send(["PUT", "flood", chunk])));
      }
      await waitFor(() => server.stderrText().includes("slow consumer"), { what: "the slow consumer line" });
      // A bad file, then SIGHUP with a good one.
      writeFileSync(acl, "admin-k3y superuser *\n");
      await waitFor(() => server.stderrText().includes("keeping the rules in force"), { what: "the refused reload" });
      writeFileSync(acl, "admin-k3y admin *\nother r x\n");
      server.proc.kill("SIGHUP");
      await waitFor(() => server.stderrText().includes("SIGHUP: reloaded"), { what: "the reload" });
    } finally {
      admin.close();
      stalled.destroy();
    }
    expect(await server.stop()).toBe(0);
    const lines = server.stderrText().trimEnd().split("\n");
    const entries = lines.map((line) => {
      try {
        return JSON.parse(line) as { level: string; area?: string; msg: string };
      } catch {
        throw new Error(`not a JSON line on stderr: ${line}`);
      }
    });
    const said = (pattern: RegExp, level: string) => expect(entries.find((e) => pattern.test(e.msg))).toMatchObject({ level });
    said(/^configuration: limits .*; auth acl .* \(1 token\); tls off$/, "info");
    said(/^refused a wrong token \(sha256 [0-9a-f]{8}…\) from .* over tcp$/, "warn");
    said(/^slow consumer on flood from .*: \d+ bytes of messages waiting .*; disconnecting$/, "warn");
    said(/^flood: \d+ messages dropped \(topic full, --overflow drop-oldest\)$/, "warn");
    said(/line 1: unknown rights 'superuser'.*keeping the rules in force$/, "error");
    said(/^SIGHUP: reloaded acl .* \(2 tokens\)$/, "info");
    said(/^stopped$/, "info");
    expect(server.stderrText()).not.toContain('wrong"');
  }, 60000);
});
