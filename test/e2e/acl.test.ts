// Rights per token (--acl) on the compiled binary, with the README's example file: each right
// allowed and refused over RESP, HTTP, SSE, WebSocket and the CLI (exit 5), wrong tokens, reloads
// that change rights under open connections, and malformed files at start and at reload.

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, renameSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { RespErrorValue, type RespValue } from "../../src/protocol/resp-reader.ts";
import { hasBinary } from "../helpers/binary.ts";
import { runCli } from "../helpers/cli.ts";
import { BINARY } from "../helpers/binary.ts";
import { cleanupAll, spawnTracked, testEnv } from "../helpers/processes.ts";
import { fencedBlock } from "../helpers/readme.ts";
import { startServer, type TestServer } from "../helpers/server.ts";
import { waitFor } from "../helpers/wait.ts";
import { Resp, SseReader, WsCollector } from "./transports.ts";

afterAll(() => cleanupAll());

const EXAMPLE = fencedBlock("README.md", "text", "# token");
const dir = mkdtempSync(join(tmpdir(), "msgbus-acl-"));
let files = 0;

/** Writes an ACL file as editors do: a new file renamed over the old one. */
function writeAcl(path: string, text: string): void {
  const next = `${path}.tmp`;
  writeFileSync(next, text);
  renameSync(next, path);
}

function aclFile(text = EXAMPLE): string {
  const path = join(dir, `acl-${++files}`);
  writeAcl(path, text);
  return path;
}

/** The word an error reply starts with ("NOPERM"), or the reply itself. */
function word(reply: RespValue): unknown {
  return reply instanceof RespErrorValue ? reply.message.split(" ")[0] : reply;
}

async function authed(port: number, token: string): Promise<Resp> {
  const resp = await Resp.connect(port);
  expect(await resp.send(["AUTH", token])).toBe("OK");
  return resp;
}

const http = (server: TestServer, path: string, token: string | undefined, init: RequestInit = {}) =>
  fetch(`${server.httpUrl}${path}`, { ...init, headers: { ...(token ? { authorization: `Bearer ${token}` } : {}), ...(init.headers ?? {}) } });

describe.skipIf(!hasBinary())("--acl with the README's example", () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startServer({ args: ["--acl", aclFile()] });
  });

  test("the start-up line names the auth mode and the number of tokens", async () => {
    const line = /configuration: limits max-message-size 1MiB, .*; data none \(memory\); auth acl .* \(4 tokens\); tls off/;
    await waitFor(() => line.test(server.stderrText()), { what: "the configuration line" });
  });

  test("RESP: no token is -NOAUTH, a wrong one -WRONGPASS; AUTH user token and HELLO 3 AUTH work", async () => {
    const resp = await Resp.connect(server.port);
    try {
      expect(word(await resp.send(["PUT", "sensors.a", "x"]))).toBe("NOAUTH");
      expect(word(await resp.send(["AUTH", "nope"]))).toBe("WRONGPASS");
      expect(word(await resp.send(["AUTH", "default", "nope"]))).toBe("WRONGPASS");
      expect(word(await resp.send(["PUT", "sensors.a", "x"]))).toBe("NOAUTH");
      expect(await resp.send(["AUTH", "anyone", "sensor-k3y"])).toBe("OK");
      expect(await resp.send(["PUT", "sensors.a", "x"])).toBeGreaterThan(0);
    } finally {
      resp.close();
    }
    const hello = await Resp.connect(server.port);
    try {
      expect(await hello.send(["HELLO", "3", "AUTH", "default", "dash-k3y"])).toContainEqual(new TextEncoder().encode("msgbus"));
      expect(word(await hello.send(["PUT", "sensors.a", "x"]))).toBe("NOPERM");
    } finally {
      hello.close();
    }
  });

  test("RESP: w writes its topics only; r subscribes and reads stats; rw takes and acks; admin purges and deletes", async () => {
    const sensor = await authed(server.port, "sensor-k3y");
    const dash = await authed(server.port, "dash-k3y");
    const worker = await authed(server.port, "worker-k3y");
    const admin = await authed(server.port, "s3cret-admin");
    try {
      // w: write sensors.*, nothing else.
      expect(await sensor.send(["PUT", "sensors.kitchen", "21.5"])).toBeGreaterThan(0);
      expect(await sensor.send(["RPUSH", "sensors.kitchen", "21.6"])).toBeGreaterThan(0);
      expect(await sensor.send(["PUBLISH", "sensors.kitchen", "21.7"])).toBe(0);
      for (const cmd of [
        ["PUT", "jobs", "x"],
        ["GET", "sensors.kitchen"],
        ["LPOP", "sensors.kitchen"],
        ["SUB", "sensors.kitchen"],
        ["STATS", "sensors.kitchen"],
        ["PURGE", "sensors.kitchen"],
      ]) {
        expect([cmd, word(await sensor.send(cmd))]).toEqual([cmd, "NOPERM"]);
      }
      // r: stats and subscriptions of sensors.* and jobs.dead; never a take or a write.
      expect(await dash.send(["LLEN", "sensors.kitchen"])).toBe(3);
      expect(await dash.send(["STATS", "sensors.kitchen"])).toContainEqual(new TextEncoder().encode("depth"));
      expect(word(await dash.send(["STATS", "jobs.dead"]))).toBe("NOTFOUND"); // allowed, but nothing there yet
      expect(await dash.send(["TOPICS"])).toEqual(expect.arrayContaining([new TextEncoder().encode("sensors.kitchen")]));
      for (const cmd of [
        ["GET", "sensors.kitchen"],
        ["BLPOP", "jobs.dead", "0.01"],
        ["PUT", "sensors.kitchen", "x"],
        ["STATS", "jobs"],
        ["DEL", "sensors.kitchen"],
        ["SUBSCRIBE", "sensors.kitchen", "jobs"],
      ]) {
        expect([cmd, word(await dash.send(cmd))]).toEqual([cmd, "NOPERM"]);
      }
      // rw: write, take with a lease, ack; jobs.dead because the line lists it; no purge, no delete.
      expect(await worker.send(["PUT", "jobs", "job-1"])).toBeGreaterThan(0);
      const leased = (await worker.send(["GET", "jobs", "LEASE", "30s"])) as RespValue[];
      expect(await worker.send(["ACK", "jobs", leased[3] as number])).toBe("OK");
      expect(await worker.send(["LPOP", "jobs.dead"])).toBeNull();
      for (const cmd of [
        ["PURGE", "jobs"],
        ["RM", "jobs"],
        ["DEL", "jobs"],
        ["GET", "jobs.other"],
        ["PUT", "sensors.kitchen", "x"],
      ]) {
        expect([cmd, word(await worker.send(cmd))]).toEqual([cmd, "NOPERM"]);
      }
      // admin: everything, everywhere.
      expect(await admin.send(["PURGE", "sensors.kitchen"])).toBe(3);
      expect(await admin.send(["PUT", "other", "x"])).toBe(1);
      expect(await admin.send(["RM", "other"])).toBe(1);
      // The subscription came last: the connection stays in subscribed mode from here.
      expect(await dash.send(["SUB", "sensors.kitchen"])).toBe("OK");
    } finally {
      for (const c of [sensor, dash, worker, admin]) c.close();
    }
  });

  test("HTTP: 401 without or with a wrong token, 403 outside the rights, the lists show only readable topics", async () => {
    expect((await http(server, "/sensors.hall", undefined, { method: "POST", body: "1" })).status).toBe(401);
    expect((await http(server, "/sensors.hall", "nope", { method: "POST", body: "1" })).status).toBe(401);
    expect((await http(server, "/sensors.hall?token=nope", undefined, { method: "POST", body: "1" })).status).toBe(401);
    expect((await http(server, "/sensors.hall", "sensor-k3y", { method: "POST", body: "1" })).status).toBe(200);
    expect((await http(server, "/jobs", "sensor-k3y", { method: "POST", body: "1" })).status).toBe(403);
    const forbidden = await http(server, "/sensors.hall", "dash-k3y");
    expect(forbidden.status).toBe(403);
    expect(await forbidden.json()).toEqual({ error: "this token may not take from sensors.hall", code: "FORBIDDEN" });
    expect((await http(server, "/_/topics/sensors.hall", "dash-k3y")).status).toBe(200);
    expect((await http(server, "/_/topics/sensors.hall", "worker-k3y")).status).toBe(403);
    expect((await http(server, "/sensors.hall?purge", "worker-k3y", { method: "DELETE" })).status).toBe(403);
    expect((await http(server, "/jobs", "worker-k3y", { method: "POST", body: "j" })).status).toBe(200);
    const taken = await http(server, "/jobs?lease=30s", "worker-k3y");
    expect(taken.status).toBe(200);
    expect((await http(server, `/jobs/${taken.headers.get("msgbus-id")}/ack`, "worker-k3y", { method: "POST" })).status).toBe(200);
    expect((await http(server, `/jobs/1/ack`, "dash-k3y", { method: "POST" })).status).toBe(403);
    expect((await http(server, "/jobs", "dash-k3y", { method: "POST", body: "x" })).status).toBe(403);
    expect((await http(server, "/sensors.hall?purge", "s3cret-admin", { method: "DELETE" })).status).toBe(200);

    const listed = (await (await http(server, "/_/topics", "dash-k3y")).json()) as { topics: { name: string }[] };
    expect(listed.topics.map((t) => t.name).every((name) => name.startsWith("sensors.") || name === "jobs.dead")).toBe(true);
    expect(listed.topics.some((t) => t.name === "sensors.hall")).toBe(true);
    const all = (await (await http(server, "/_/topics", "s3cret-admin")).json()) as { topics: { name: string }[] };
    expect(all.topics.some((t) => t.name === "jobs")).toBe(true);
    const metrics = await (await http(server, "/_/metrics", "dash-k3y")).text();
    expect(metrics).toContain('msgbus_queue_depth{topic="sensors.hall"}');
    expect(metrics).not.toContain('{topic="jobs"}');
    expect((await http(server, "/_/metrics", undefined)).status).toBe(401);
    expect((await http(server, "/_/health", undefined)).status).toBe(200);
  });

  test("SSE: ?token= with the read right streams; w only is 403; a wrong token 401", async () => {
    expect((await SseReader.open(`${server.httpUrl}/sensors.sse?token=sensor-k3y`)).status).toBe(403);
    expect((await SseReader.open(`${server.httpUrl}/sensors.sse?token=nope`)).status).toBe(401);
    expect((await SseReader.open(`${server.httpUrl}/jobs?token=dash-k3y`)).status).toBe(403);
    const reader = await SseReader.open(`${server.httpUrl}/sensors.sse?token=dash-k3y`);
    try {
      expect(reader.status).toBe(200);
      expect((await http(server, "/sensors.sse", "sensor-k3y", { method: "POST", body: "22" })).status).toBe(200);
      expect((await reader.waitForEvents(1))[0]!.data).toBe("22");
    } finally {
      reader.close();
    }
  });

  test("WebSocket: r subscribes but may not write a frame (4403); w publishes with ?publish-only but may not subscribe", async () => {
    const base = `ws://127.0.0.1:${server.httpPort}`;
    await expect(WsCollector.open(`${base}/sensors.ws?token=sensor-k3y`)).rejects.toThrow(/closed before opening/);
    await expect(WsCollector.open(`${base}/sensors.ws?token=nope`)).rejects.toThrow(/closed before opening/);
    const reader = await WsCollector.open(`${base}/sensors.ws?token=dash-k3y`);
    const writer = await WsCollector.open(`${base}/sensors.ws?publish-only&token=sensor-k3y`);
    try {
      writer.ws.send("23");
      expect(await reader.waitForFrames(1)).toEqual(["23"]);
      reader.ws.send("from the dashboard");
      expect(await reader.waitForClose()).toBe(4403);
      expect(reader.closeReason).toContain("may not write to sensors.ws");
    } finally {
      reader.close();
      writer.close();
    }
  });

  test("CLI: --token within the rights works; outside them, without one or a wrong one, exit 5 with one line", async () => {
    const url = ["--url", server.url];
    const httpUrl = ["--url", server.httpUrl];
    expect(await runCli(["put", "sensors.cli", "1", ...url, "--token", "sensor-k3y"])).toMatchObject({ code: 0 });
    expect(await runCli(["put", "sensors.cli", "2", ...httpUrl, "--token", "sensor-k3y"])).toMatchObject({ code: 0 });
    for (const args of [
      ["get", "sensors.cli", ...url, "--token", "sensor-k3y"],
      ["get", "sensors.cli", ...httpUrl, "--token", "dash-k3y"],
      ["put", "jobs", "x", ...url, "--token", "dash-k3y"],
      ["sub", "jobs", ...url, "--token", "sensor-k3y"],
      ["on", "sensors.cli", ...url, "--token", "dash-k3y"],
      ["put", "sensors.cli", "x", ...url, "--token", "wrong"],
      ["put", "sensors.cli", "x", ...url],
      ["get", "sensors.cli", ...httpUrl],
    ]) {
      const result = await runCli(args);
      expect([args.join(" "), result.code]).toEqual([args.join(" "), 5]);
      expect(result.stderr.trim().split("\n")).toHaveLength(1);
      expect(result.stderr).toStartWith("msgbus: ");
    }
    const taken = await runCli(["get", "sensors.cli", ...url, "--token", "s3cret-admin"]);
    expect(taken).toMatchObject({ code: 0, stdoutText: "1" });
  });

  test("refused tokens are logged without the token, and counted in msgbus_auth_failures_total", async () => {
    const resp = await Resp.connect(server.port);
    expect(word(await resp.send(["AUTH", "very-secret-guess"]))).toBe("WRONGPASS");
    resp.close();
    await waitFor(() => server.stderrText().includes("refused a wrong token"), { what: "the log line" });
    expect(server.stderrText()).not.toContain("very-secret-guess");
    expect(server.stderrText()).not.toContain("nope");
    const metrics = await (await http(server, "/_/metrics", "s3cret-admin")).text();
    expect(Number(/^msgbus_auth_failures_total (\d+)$/m.exec(metrics)?.[1])).toBeGreaterThan(0);
  });
});

describe.skipIf(!hasBinary())("reloading --acl", () => {
  test("a changed file applies to the next command of open connections; a removed token gets -NOAUTH", async () => {
    const file = aclFile();
    const server = await startServer({ httpPort: 0, args: ["--acl", file] });
    const worker = await authed(server.port, "worker-k3y");
    const sensor = await authed(server.port, "sensor-k3y");
    try {
      expect(await worker.send(["PUT", "jobs", "a"])).toBe(1);
      expect(word(await worker.send(["PUT", "sensors.x", "a"]))).toBe("NOPERM");
      // worker-k3y may now only read jobs, but write sensors.*; sensor-k3y is gone.
      writeAcl(file, "s3cret-admin admin *\nworker-k3y r jobs sensors.*\n");
      await waitFor(() => server.stderrText().includes("changed: reloaded"), { what: "the reload to be logged" });
      expect(word(await worker.send(["PUT", "jobs", "b"]))).toBe("NOPERM");
      expect(await worker.send(["LLEN", "jobs"])).toBe(1);
      expect(await worker.send(["LLEN", "sensors.x"])).toBe(0);
      expect(word(await sensor.send(["PUT", "sensors.x", "a"]))).toBe("NOAUTH");
      expect(word(await sensor.send(["AUTH", "sensor-k3y"]))).toBe("WRONGPASS");
    } finally {
      worker.close();
      sensor.close();
      expect(await server.stop()).toBe(0);
    }
  });

  test("SIGHUP reloads at once; open subscriptions the new rules forbid end on RESP, SSE and WebSocket", async () => {
    const file = aclFile();
    const server = await startServer({ args: ["--acl", file] });
    const sub = await authed(server.port, "dash-k3y");
    const kept = await authed(server.port, "dash-k3y");
    const sse = await SseReader.open(`${server.httpUrl}/sensors.a?token=dash-k3y`);
    const ws = await WsCollector.open(`ws://127.0.0.1:${server.httpPort}/sensors.a?token=dash-k3y`);
    try {
      expect(await sub.send(["SUB", "sensors.a"])).toBe("OK");
      expect(await kept.send(["SUB", "jobs.dead"])).toBe("OK");
      const closed = sub.next(); // the error the reload sends before it closes the connection
      writeFileSync(file, EXAMPLE.replace("dash-k3y       r        sensors.* jobs.dead", "dash-k3y r jobs.dead"));
      server.proc.kill("SIGHUP");
      expect(word(await closed)).toBe("NOPERM");
      expect(await ws.waitForClose()).toBe(4403);
      await waitFor(() => sse.ended, { what: "the SSE stream to end" });
      // The subscription the rules still allow stays.
      expect(await kept.send(["PING"])).toEqual([new TextEncoder().encode("pong"), new Uint8Array(0)]);
      expect(server.stderrText()).toContain("SIGHUP: reloaded acl");
    } finally {
      sub.close();
      kept.close();
      sse.close();
      ws.close();
      expect(await server.stop()).toBe(0);
    }
  });

  test("a malformed file at reload keeps the rules in force and logs the line", async () => {
    const file = aclFile();
    const server = await startServer({ httpPort: 0, args: ["--acl", file] });
    const worker = await authed(server.port, "worker-k3y");
    try {
      writeAcl(file, "s3cret-admin admin *\n\nworker-k3y wr jobs\n");
      await waitFor(() => /line 3: unknown rights 'wr' \(expected r, w, rw or admin\); keeping the rules in force/.test(server.stderrText()), {
        what: "the refusal to be logged",
      });
      expect(await worker.send(["PUT", "jobs", "still"])).toBe(1);
      expect(await (await authed(server.port, "sensor-k3y")).send(["PUT", "sensors.y", "1"])).toBe(1);
    } finally {
      worker.close();
      expect(await server.stop()).toBe(0);
    }
  });
});

describe.skipIf(!hasBinary())("starting with --acl", () => {
  async function serveOnce(args: string[]): Promise<{ code: number; stderr: string }> {
    const proc = spawnTracked([BINARY, "serve", "--port", "0", "--http-port", "0", ...args], { env: testEnv() });
    const code = await proc.exited;
    return { code, stderr: await new Response(proc.stderr as ReadableStream).text() };
  }

  test("a malformed file is a usage error (exit 2) naming the line", async () => {
    for (const [text, why] of [
      ["# ok\nadmin-k3y admin *\nsensor-k3y w\n", /line 3: expected TOKEN RIGHTS TOPIC-GLOB/],
      ["a admin *\nb rwx jobs\n", /line 2: unknown rights 'rwx'/],
      ["a admin *\na r jobs\n", /line 2: the token of line 1 again/],
      ["a r jobs/x\n", /line 1: 'jobs\/x' is not a topic or a glob/],
      ["# nothing but comments\n\n", /no token lines/],
    ] as const) {
      const { code, stderr } = await serveOnce(["--acl", aclFile(text)]);
      expect([text, code]).toEqual([text, 2]);
      expect(stderr).toMatch(why);
      expect(stderr.trim().split("\n")).toHaveLength(1);
    }
    const missing = await serveOnce(["--acl", join(dir, "missing")]);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain("cannot read it");
  });

  test("--token beside --acl is one more admin", async () => {
    const server = await startServer({ httpPort: 0, args: ["--acl", aclFile(), "--token", "extra-admin"] });
    try {
      await waitFor(() => server.stderrText().includes("(4 tokens, plus --token as an admin)"), { what: "the configuration line" });
      const admin = await authed(server.port, "extra-admin");
      expect(await admin.send(["PUT", "anything", "x"])).toBe(1);
      expect(await admin.send(["PURGE", "anything"])).toBe(1);
      admin.close();
    } finally {
      await server.stop();
    }
  });

  test("binding a non-loopback address without --token or --acl warns at start; with either it does not", async () => {
    const open = await startServer({ httpPort: 0, args: ["--host", "0.0.0.0"] });
    await open.stop();
    expect(open.stderrText()).toMatch(/WARN .*listening on 0\.0\.0\.0, reachable from other machines, with neither --token nor --acl/);
    const guarded = await startServer({ httpPort: 0, args: ["--host", "0.0.0.0", "--acl", aclFile()] });
    await guarded.stop();
    expect(guarded.stderrText()).not.toContain("reachable from other machines");
  });
});
