// The client commands end to end: the compiled binary against `msgbus serve` on free loopback
// ports. Every README example, byte-exact payloads, order, competing consumers, fan-out, and the
// one-line errors with their exit codes.

import { selfSignedCertificate } from "../helpers/tls.ts";
import { topicStats } from "../helpers/stats.ts";
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { BINARY, hasBinary } from "../helpers/binary.ts";
import { runCli, spawnCli, type CliResult } from "../helpers/cli.ts";
import { freePort } from "../helpers/ports.ts";
import { cleanupAll, Output, spawnTracked, stopProcess, testEnv } from "../helpers/processes.ts";
import { startServer, type TestServer } from "../helpers/server.ts";
import { canConnect, waitFor } from "../helpers/wait.ts";

const MiB = 1048576;

/** A failure is one line on stderr, "msgbus: …", and no stack trace. */
function expectOneLineError(result: CliResult, code: number, pattern: RegExp): void {
  expect(result.code).toBe(code);
  expect(result.stdout.length).toBe(0);
  const lines = result.stderr.split("\n").filter((line) => line !== "");
  expect(lines).toHaveLength(1);
  expect(lines[0]).toStartWith("msgbus: ");
  expect(lines[0]).toMatch(pattern);
  expect(result.stderr).not.toMatch(/\n\s+at /);
}

function randomBytes(n: number): Uint8Array<ArrayBufferLike> {
  const bytes = new Uint8Array(n);
  for (let i = 0; i < n; i += 65536) crypto.getRandomValues(bytes.subarray(i, Math.min(n, i + 65536)));
  return bytes;
}

let topicCount = 0;
/** A fresh topic per test, so tests sharing a server do not see each other's messages. */
const freshTopic = (name: string) => `${name}-${++topicCount}`;

afterAll(() => cleanupAll());

describe.skipIf(!hasBinary())("msgbus client commands", () => {
  let server: TestServer;
  let env: Record<string, string>;
  let dir: string;
  const cli = (args: string[], options: { stdin?: Uint8Array | string; timeoutMs?: number } = {}) => runCli(args, { env, ...options });

  beforeAll(async () => {
    server = await startServer({ httpPort: 0 });
    env = { MSGBUS_URL: server.url };
    dir = mkdtempSync(join(tmpdir(), "msgbus-cli-"));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  describe("the README examples", () => {
    test("echo hello | msgbus put jobs, then msgbus get jobs prints exactly what was written", async () => {
      const jobs = freshTopic("jobs");
      const put = await cli(["put", jobs], { stdin: "hello\n" });
      expect(put).toMatchObject({ code: 0, stdoutText: "", stderr: "" });
      const get = await cli(["get", jobs]);
      expect(get).toMatchObject({ code: 0, stdoutText: "hello\n", stderr: "" });
    });

    test("msgbus put jobs hello joins the arguments with spaces, with no newline added", async () => {
      const jobs = freshTopic("jobs");
      expect((await cli(["put", jobs, "hello", "big", "world"])).code).toBe(0);
      expect((await cli(["get", jobs])).stdoutText).toBe("hello big world");
    });

    test("msgbus get jobs out.bin writes the payload into the file, and no file when the topic is empty", async () => {
      const jobs = freshTopic("jobs");
      const payload = randomBytes(4096);
      await cli(["put", jobs], { stdin: payload });
      const file = join(dir, "out.bin");
      const got = await cli(["get", jobs, file]);
      expect(got).toMatchObject({ code: 0, stdoutText: "", stderr: "" });
      expect(new Uint8Array(readFileSync(file)) as Uint8Array).toEqual(payload);

      const none = join(dir, "none.bin");
      const empty = await cli(["get", jobs, none]);
      expect(empty.code).toBe(3);
      expect(existsSync(none)).toBe(false);
    });

    test("get on an empty topic exits 3 with nothing on stdout, so a shell while-loop ends", async () => {
      const q = freshTopic("q");
      const empty = await cli(["get", q]);
      expect(empty).toMatchObject({ code: 3, stdoutText: "", stderr: "" });

      await cli(["put", q, "--lines"], { stdin: "a\nb\nc\n" });
      const loop = spawnTracked(["sh", "-c", `n=0; while msgbus get ${q} > "$DIR/f"; do n=$((n+1)); cat "$DIR/f"; done; echo " $n"`], {
        env: testEnv({ ...env, DIR: dir, PATH: `${dirname(BINARY)}:${process.env.PATH}` }),
      });
      const out = new Output(loop.stdout);
      expect(await loop.exited).toBe(0);
      await out.done;
      expect(out.text()).toBe("abc 3\n");
    });

    test("get --wait without a value waits for the next message; --wait 300ms gives up with exit 3", async () => {
      const jobs = freshTopic("jobs");
      const started = Date.now();
      expect((await cli(["get", jobs, "--wait", "300ms"])).code).toBe(3);
      expect(Date.now() - started).toBeGreaterThanOrEqual(300);

      const file = join(dir, "waited.txt");
      const waiting = spawnCli(["get", jobs, file, "--wait", "--json"], { env });
      await waitFor(async () => (await topicStats(server.port, jobs)).consumers > 0, { what: "get to wait" });
      await cli(["put", jobs, "worth the wait"]);
      expect(await waiting.proc.exited).toBe(0);
      expect(readFileSync(file, "utf8")).toBe("worth the wait");
    });

    test("put --lines sends each line while the pipe is still open, not at end-of-file", async () => {
      const logs = freshTopic("logs");
      const put = spawnTracked([BINARY, "put", logs, "--lines"], { env: testEnv(env), stdin: "pipe" });
      const stdin = put.stdin as import("bun").FileSink;
      stdin.write("first line\n");
      await stdin.flush();
      const first = await cli(["get", logs, "--wait", "10s"]);
      expect(first.stdoutText).toBe("first line");
      expect(put.exitCode).toBeNull(); // still running: the line went out before end-of-file

      stdin.write("second\r\nthird");
      await stdin.end();
      expect(await put.exited).toBe(0);
      expect((await cli(["get", logs])).stdoutText).toBe("second");
      expect((await cli(["get", logs])).stdoutText).toBe("third");
      expect((await cli(["get", logs])).code).toBe(3);
    });

    test("msgbus on jobs prints each message and acks it once written", async () => {
      const jobs = freshTopic("jobs");
      const on = spawnCli(["on", jobs], { env });
      await cli(["put", jobs, "one"]);
      await cli(["put", jobs], { stdin: "two\n" });
      await cli(["put", jobs, "three"]);
      expect(await on.waitForLines(3)).toEqual(["one", "two", "three"]);
      await waitFor(async () => (await topicStats(server.port, jobs)).acked === 3, { what: "3 acks" });
      expect(await on.stop()).toBe(0);
      const s = await topicStats(server.port, jobs);
      expect(s).toMatchObject({ depth: 0, inflight: 0, acked: 3, redelivered: 0 });
    });

    test("msgbus on jobs -- handler runs the handler per message with the payload on stdin and the message in its environment", async () => {
      const jobs = freshTopic("jobs");
      const out = join(dir, "handled");
      const handler = `cat > "${out}.$MSGBUS_ID"; echo "$MSGBUS_TOPIC $MSGBUS_ID $MSGBUS_DELIVERY $MSGBUS_CREATED" > "${out}.$MSGBUS_ID.env"`;
      const binary = new Uint8Array([0, 255, 10, 13, 0x80, 0]);
      await cli(["put", jobs, "hello"]);
      await cli(["put", jobs], { stdin: binary });
      const on = spawnCli(["on", jobs, "--", "sh", "-c", handler], { env });
      await waitFor(async () => (await topicStats(server.port, jobs)).acked === 2, { what: "both messages acked" });
      expect(await on.stop()).toBe(0);
      expect(readFileSync(`${out}.1`, "utf8")).toBe("hello");
      expect(new Uint8Array(readFileSync(`${out}.2`))).toEqual(binary);
      const [topic, id, delivery, created] = readFileSync(`${out}.2.env`, "utf8").trim().split(" ");
      expect([topic, id, delivery]).toEqual([jobs, "2", "1"]);
      expect(Math.abs(Number(created) - Date.now())).toBeLessThan(60000);
    });

    test("msgbus sub sensors and msgbus pub sensors: every subscriber gets every message", async () => {
      const sensors = freshTopic("sensors");
      const a = spawnCli(["sub", sensors], { env });
      const b = spawnCli(["sub", sensors], { env });
      await waitFor(async () => (await topicStats(server.port, sensors)).subscribers === 2, { what: "2 subscribers" });
      await cli(["pub", sensors, '{"t":21.5}']);
      await cli(["pub", sensors], { stdin: "ends with a newline\n" });
      const expected = ['{"t":21.5}', "ends with a newline"];
      expect(await a.waitForLines(2)).toEqual(expected);
      expect(await b.waitForLines(2)).toEqual(expected);
      expect(await a.stop()).toBe(0);
      expect(await b.stop()).toBe(0);
    });
  });

  describe("payloads byte for byte", () => {
    for (const size of [0, 1, MiB]) {
      test(`a ${size}-byte payload comes back byte-exact, through stdout and through a file`, async () => {
        const topic = freshTopic("bytes");
        const payload = randomBytes(size);
        expect(await cli(["put", topic], { stdin: payload })).toMatchObject({ code: 0, stderr: "" });
        expect(await cli(["put", topic], { stdin: payload })).toMatchObject({ code: 0, stderr: "" });
        const out = await cli(["get", topic]);
        expect(out.code).toBe(0);
        expect(out.stdout).toEqual(payload);
        const file = join(dir, `payload-${size}`);
        expect((await cli(["get", topic, file])).code).toBe(0);
        expect(new Uint8Array(readFileSync(file)) as Uint8Array).toEqual(payload);
      });
    }

    test("a payload one byte over --max-message-size is refused with exit code 6, and the server keeps serving", async () => {
      const topic = freshTopic("big");
      // The client stops reading stdin at the server's limit ...
      const refused = await cli(["put", topic], { stdin: randomBytes(MiB + 1) });
      expectOneLineError(refused, 6, /stdin holds more than 1048576 bytes: larger than the limit of 1048576 bytes \(the server's --max-message-size\)/);
      // ... and told a larger one, it sends the message, which the server refuses.
      const sent = await cli(["put", topic, "--max-message-size", "2MiB"], { stdin: randomBytes(MiB + 1) });
      expectOneLineError(sent, 6, /1048577 bytes is larger than the limit of 1048576/);
      expect((await cli(["put", topic, "small"])).code).toBe(0);
      expect((await cli(["get", topic])).stdoutText).toBe("small");
    });

    test("get --json gives id, topic, created, deliveries and the payload, base64 when not UTF-8", async () => {
      const topic = freshTopic("json");
      await cli(["put", topic, "héllo"]);
      await cli(["put", topic], { stdin: new Uint8Array([0xff, 0xfe, 0]) });
      const first = JSON.parse((await cli(["get", topic, "--json"])).stdoutText);
      expect(first).toEqual({ id: 1, topic, created: expect.any(Number), deliveries: 1, payload: "héllo" });
      const second = JSON.parse((await cli(["get", topic, "--json"])).stdoutText);
      expect(second).toEqual({ id: 2, topic, created: expect.any(Number), deliveries: 1, payload: "//4A", encoding: "base64" });
    });
  });

  describe("order and sharing", () => {
    test("messages are taken in the order they were written (FIFO)", async () => {
      const topic = freshTopic("fifo");
      const lines = Array.from({ length: 200 }, (_, i) => `m${i + 1}`);
      await cli(["put", topic, "--lines"], { stdin: lines.join("\n") + "\n" });
      expect((await cli(["get", topic])).stdoutText).toBe("m1");
      expect((await cli(["get", topic])).stdoutText).toBe("m2");
      const on = spawnCli(["on", topic, "--json"], { env });
      const got = (await on.waitForLines(198)).map((line) => JSON.parse(line));
      expect(got.map((m) => m.payload)).toEqual(lines.slice(2));
      expect(got.map((m) => m.id)).toEqual(lines.slice(2).map((_, i) => i + 3));
      await on.stop();
    });

    test("two consumers share 100 messages: none lost, none twice", async () => {
      const topic = freshTopic("shared");
      const a = spawnCli(["on", topic], { env });
      const oneConsumer = await waitFor(async () => (await topicStats(server.port, topic)).consumers, { what: "the first consumer" });
      const b = spawnCli(["on", topic], { env });
      await waitFor(async () => (await topicStats(server.port, topic)).consumers > oneConsumer, { what: "the second consumer" });
      const lines = Array.from({ length: 100 }, (_, i) => `job ${i + 1}`);
      await cli(["put", topic, "--lines"], { stdin: lines.join("\n") });
      await waitFor(() => a.lines().length + b.lines().length >= 100, { what: "100 messages printed" });
      await waitFor(async () => (await topicStats(server.port, topic)).acked === 100, { what: "100 acks" });
      expect(await a.stop()).toBe(0);
      expect(await b.stop()).toBe(0);
      const all = [...a.lines(), ...b.lines()];
      expect(all).toHaveLength(100);
      expect(new Set(all).size).toBe(100);
      expect([...all].sort()).toEqual([...lines].sort());
      expect(a.lines().length).toBeGreaterThan(0);
      expect(b.lines().length).toBeGreaterThan(0);
      expect(await topicStats(server.port, topic)).toMatchObject({ depth: 0, inflight: 0, redelivered: 0 });
    });

    test("two subscribers each see every message, in order", async () => {
      const topic = freshTopic("fanout");
      const a = spawnCli(["sub", topic, "--json"], { env });
      const b = spawnCli(["sub", topic], { env });
      await waitFor(async () => (await topicStats(server.port, topic)).subscribers === 2, { what: "2 subscribers" });
      const lines = Array.from({ length: 500 }, (_, i) => `reading ${i + 1}`);
      await cli(["pub", topic, "--lines"], { stdin: lines.join("\n") });
      const fromA = (await a.waitForLines(500)).map((line) => JSON.parse(line));
      expect(fromA.map((m) => m.payload)).toEqual(lines);
      expect(fromA.map((m) => m.id)).toEqual(lines.map((_, i) => i + 1));
      expect(await b.waitForLines(500)).toEqual(lines);
      await a.stop();
      await b.stop();
    });

    test("sub --since replays the still-queued messages after that id, then continues live", async () => {
      const topic = freshTopic("since");
      await cli(["put", topic, "--lines"], { stdin: "one\ntwo\nthree\n" });
      const sub = spawnCli(["sub", topic, "--since", "1"], { env });
      expect(await sub.waitForLines(2)).toEqual(["two", "three"]);
      await cli(["pub", topic, "four"]);
      expect(await sub.waitForLines(3)).toEqual(["two", "three", "four"]);
      await sub.stop();
    });
  });

  describe("errors: one line on stderr and the documented exit code", () => {
    test("a bad topic name exits 2", async () => {
      expectOneLineError(await cli(["put", "no spaces", "x"]), 2, /topic name "no spaces" has a character outside/);
      expectOneLineError(await cli(["get", "_server"]), 2, /starts with "_"/);
      expectOneLineError(await cli(["on", "a/b"]), 2, /topic name/);
    });

    test("an unreachable server exits 4 and names the address", async () => {
      const port = freePort();
      for (const args of [
        ["put", "jobs", "x"],
        ["get", "jobs"],
        ["on", "jobs"],
        ["sub", "jobs"],
      ]) {
        const result = await runCli([...args, "--url", `tcp://127.0.0.1:${port}`]);
        expectOneLineError(result, 4, new RegExp(`cannot reach msgbus at tcp://127\\.0\\.0\\.1:${port}: connection refused`));
      }
    });

    test("bad arguments exit 2 before anything is sent", async () => {
      expectOneLineError(await cli(["get", "jobs", "--lease", "soon"]), 2, /--lease: expected a duration/);
      expectOneLineError(await cli(["on", "jobs", "--concurrency", "0"]), 2, /--concurrency/);
      expectOneLineError(await cli(["put"]), 2, /put needs a topic/);
      expectOneLineError(await cli(["ack", "jobs", "seven"]), 2, /id/);
      expectOneLineError(await cli(["on", "jobs", "--", "./no-such-handler"]), 2, /cannot run "\.\/no-such-handler"/);
      expectOneLineError(await cli(["get", "jobs", "--url", "ftp://x"]), 2, /unsupported URL scheme/);
    });

    test("put's fast path (put <topic> [message…], --url, --token, stdin) answers as the full path does", async () => {
      const secured = await startServer({ args: ["--token", "s3cret", "--max-message-size", "10"] });
      const port = freePort();
      // A port that closes every connection at once, unanswered (as a TLS port does to plain text).
      const closing = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { open: (socket) => void socket.end(), data() {} } });
      const cases: [string[], Record<string, string>, string?][] = [
        [["put", "jobs", "x", "--url", `tcp://127.0.0.1:${port}`], {}],
        [["put", "no@good", "x"], env],
        [["put", "jobs", "x", `--url=${secured.url}`], {}],
        [["pub", "jobs", "x", "--url", secured.url, "--token", "wrong"], {}],
        [["put", "jobs", "x", "y", "z", "--token=s3cret", "--url", secured.url], {}],
        [["put", "jobs", "12345678901", "--url", secured.url, "--token", "s3cret"], {}],
        [["put", "jobs", "12345"], { ...env, MSGBUS_MAX_MESSAGE_SIZE: "3" }],
        [["put", "jobs", "x"], { ...env, MSGBUS_MAX_QUEUE: "lots" }],
        [["put", "jobs", "x"], { MSGBUS_URL: "not a url" }],
        [["put", "jobs", "x", "--url", `tcp://127.0.0.1:${secured.httpPort}`], {}],
        // The message from stdin: the server's limit, the client's, an empty message, no server.
        [["put", "jobs"], { MSGBUS_URL: secured.url, MSGBUS_TOKEN: "s3cret" }, "12345678901"],
        [["put", "jobs", "--url", secured.url, "--token", "s3cret"], {}, "1234567890"],
        [["put", "jobs"], { ...env, MSGBUS_MAX_MESSAGE_SIZE: "3" }, "12345"],
        [["pub", "jobs"], env, ""],
        [["put", "jobs", "--url", `tcp://127.0.0.1:${port}`], {}, "x"],
      ];
      const codes: number[] = [];
      for (const [args, caseEnv, stdin] of cases) {
        const fast = await runCli(args, { env: caseEnv, ...(stdin !== undefined ? { stdin } : {}) });
        // A server-side variable set (harmless to a client) sends the write the full way.
        const full = await runCli(args, { env: { ...caseEnv, MSGBUS_LOG_LEVEL: "info" }, ...(stdin !== undefined ? { stdin } : {}) });
        expect({ args, code: fast.code, stderr: fast.stderr, stdout: fast.stdoutText }).toEqual({
          args,
          code: full.code,
          stderr: full.stderr,
          stdout: full.stdoutText,
        });
        codes.push(fast.code);
      }
      expect(codes).toEqual([4, 2, 5, 5, 0, 6, 6, 2, 2, 4, 6, 0, 6, 0, 4]);
      // Which of the two lines a port that closes at once gets depends on timing (did our write meet its FIN or its reset?), on either path.
      expectOneLineError(
        await runCli(["put", "jobs", "x", "--url", `tcp://127.0.0.1:${closing.port}`]),
        4,
        /lost the connection to msgbus at tcp:\/\/127\.0\.0\.1:\d+: (the server closed the connection before answering \(if it uses TLS, connect with tls:\/\/\)|connection reset \(ECONNRESET\))$/,
      );
      closing.stop(true);
      await secured.stop();
    });

    test("put's fast path writes stdin byte for byte", async () => {
      const topic = freshTopic("fast-stdin");
      const bytes = randomBytes(300000);
      expect(await cli(["put", topic], { stdin: bytes })).toMatchObject({ code: 0, stderr: "" });
      const got = await cli(["get", topic]);
      expect(got.code).toBe(0);
      expect(Buffer.from(got.stdout).equals(Buffer.from(bytes))).toBe(true);
    });

    test("put's fast path writes a long message (many words) whole", async () => {
      const topic = freshTopic("long");
      const words = Array.from({ length: 16 }, (_, i) => String.fromCharCode(97 + i).repeat(60000));
      expect(await cli(["put", topic, ...words])).toMatchObject({ code: 0, stderr: "" });
      const got = await cli(["get", topic]);
      expect(got.code).toBe(0);
      expect(got.stdoutText === words.join(" ")).toBe(true);
    });

    test("ack of a message that is not leased exits 8", async () => {
      expectOneLineError(await cli(["ack", freshTopic("jobs"), "1"]), 8, /no lease on message 1/);
    });

    test("on and sub exit 4 with one line when the server goes away", async () => {
      const doomed = await startServer({ httpPort: 0 });
      const denv = { MSGBUS_URL: doomed.url };
      const on = spawnCli(["on", "jobs"], { env: denv });
      const sub = spawnCli(["sub", "news"], { env: denv });
      await waitFor(async () => (await topicStats(doomed.port, "news")).subscribers === 1 && (await topicStats(doomed.port, "jobs")).consumers > 0, {
        what: "the consumer and the subscriber",
      });
      await doomed.stop("SIGKILL");
      for (const proc of [on, sub]) {
        expect(await proc.proc.exited).toBe(4);
        const lines = proc.stderrText().trim().split("\n");
        expect(lines).toHaveLength(1);
        expect(lines[0]).toMatch(/^msgbus: lost the connection to msgbus at tcp:\/\/127\.0\.0\.1:\d+/);
      }
    });
  });

  describe("--reconnect", () => {
    test("on --reconnect waits for a server that is not up yet, and comes back after a restart", async () => {
      const port = freePort();
      const topic = "jobs";
      const on = spawnCli(["on", topic, "--reconnect", "--url", `tcp://127.0.0.1:${port}`]);
      await on.waitForStderr(/cannot reach msgbus at tcp:\/\/127\.0\.0\.1:\d+: connection refused \(ECONNREFUSED\); trying again in 1 s/);
      let later = await startServer({ httpPort: 0, port });
      await runCli(["put", topic, "first"], { env: { MSGBUS_URL: later.url } });
      expect(await on.waitForLines(1, 10000)).toEqual(["first"]);

      await later.stop("SIGKILL");
      await on.waitForStderr(/lost the connection to msgbus at tcp:\/\/127\.0\.0\.1:\d+.*; trying again in 1 s/);
      later = await startServer({ httpPort: 0, port });
      await runCli(["put", topic, "second"], { env: { MSGBUS_URL: later.url } });
      expect(await on.waitForLines(2, 10000)).toEqual(["first", "second"]);
      expect(on.stderrText()).toContain("connected to tcp://127.0.0.1:");
      expect(await on.stop()).toBe(0);
      await later.stop();
    });

    test("sub --reconnect resumes after a restart; SIGTERM while waiting to reconnect exits 0", async () => {
      const first = await startServer({ httpPort: 0 });
      const sub = spawnCli(["sub", "news", "--reconnect", "--url", first.url]);
      await waitFor(async () => (await topicStats(first.port, "news")).subscribers === 1, { what: "the subscriber" });
      await runCli(["pub", "news", "before"], { env: { MSGBUS_URL: first.url } });
      expect(await sub.waitForLines(1)).toEqual(["before"]);
      await first.stop("SIGKILL");
      const again = await startServer({ httpPort: 0, port: first.port });
      await waitFor(async () => (await topicStats(again.port, "news")).subscribers === 1, { timeoutMs: 10000, what: "the subscriber to come back" });
      await runCli(["pub", "news", "after"], { env: { MSGBUS_URL: again.url } });
      expect(await sub.waitForLines(2)).toEqual(["before", "after"]);
      await again.stop("SIGKILL");
      await sub.waitForStderr(/trying again/);
      const started = Date.now();
      expect(await sub.stop()).toBe(0);
      expect(Date.now() - started).toBeLessThan(2000);
    });
  });

  describe("with --token", () => {
    let secured: TestServer;
    beforeAll(async () => {
      secured = await startServer({ httpPort: 0, args: ["--token", "s3cret"] });
    });

    test("the right token is accepted, from --token or MSGBUS_TOKEN", async () => {
      const put = await runCli(["put", "jobs", "x", "--url", secured.url, "--token", "s3cret"]);
      expect(put).toMatchObject({ code: 0, stderr: "" });
      const get = await runCli(["get", "jobs"], { env: { MSGBUS_URL: secured.url, MSGBUS_TOKEN: "s3cret" } });
      expect(get).toMatchObject({ code: 0, stdoutText: "x" });
    });

    test("a missing or wrong token exits 5 with one line", async () => {
      expectOneLineError(await runCli(["put", "jobs", "x", "--url", secured.url]), 5, /requires a token/);
      expectOneLineError(await runCli(["put", "jobs", "x", "--url", secured.url, "--token", "wrong"]), 5, /refused the token/);
      expectOneLineError(await runCli(["on", "jobs", "--url", secured.url, "--token", "wrong"]), 5, /refused the token/);
      expectOneLineError(await runCli(["sub", "jobs", "--url", secured.url]), 5, /requires a token/);
    });

    test("a token sent to a server without auth does no harm (MSGBUS_TOKEN set for another server)", async () => {
      const topic = freshTopic("token-unneeded");
      expect(await cli(["put", topic, "x", "--token", "s3cret"])).toMatchObject({ code: 0, stderr: "" });
      expect(await cli(["get", topic, "--token", "s3cret"])).toMatchObject({ code: 0, stdoutText: "x" });
    });
  });

  describe.skipIf(!Bun.which("openssl"))("over TLS", () => {
    test("tls:// reaches a server with --tls-cert; its certificate must be trusted (NODE_EXTRA_CA_CERTS)", async () => {
      const { cert, key } = selfSignedCertificate(dir);
      const secure = await startServer({ httpPort: 0, args: ["--tls-cert", cert, "--tls-key", key] });
      const url = `tls://127.0.0.1:${secure.port}`;
      const trusted = { MSGBUS_URL: url, NODE_EXTRA_CA_CERTS: cert };
      expect(await runCli(["put", "secret", "over tls"], { env: trusted })).toMatchObject({ code: 0, stderr: "" });
      expect(await runCli(["get", "secret"], { env: trusted })).toMatchObject({ code: 0, stdoutText: "over tls" });
      expectOneLineError(
        await runCli(["get", "secret"], { env: { MSGBUS_URL: url } }),
        4,
        /cannot reach msgbus at tls:\/\/127\.0\.0\.1:\d+: TLS handshake failed/,
      );
      expectOneLineError(await runCli(["get", "secret"], { env: { MSGBUS_URL: secure.url } }), 4, /if it uses TLS, connect with tls:\/\//);
      await secure.stop();
    });
  });

  describe("the beuss variables", () => {
    test("BHOST, BPORT and BMAXMESSAGESIZE are honoured by serve and by the client", async () => {
      const port = freePort();
      const beuss = { BHOST: "127.0.0.1", BPORT: String(port), BMAXMESSAGESIZE: "1000" };
      const serve = spawnTracked([BINARY, "serve", "--http-port", "0"], { env: testEnv(beuss) });
      const serveErr = new Output(serve.stderr);
      await waitFor(() => canConnect(port), { timeoutMs: 15000, what: `serve on BPORT ${port}` }).catch((error) => {
        throw new Error(`${error.message}\n${serveErr.text()}`);
      });
      const client = { BHOST: "127.0.0.1", BPORT: String(port) };
      // The server's limit: 1000 bytes.
      expect((await runCli(["put", "beuss"], { env: client, stdin: randomBytes(1000) })).code).toBe(0);
      expectOneLineError(await runCli(["put", "beuss"], { env: client, stdin: randomBytes(1001) }), 6, /larger than the limit of 1000/);
      // The client's own limit, checked before sending.
      expectOneLineError(
        await runCli(["put", "beuss", "more than ten bytes"], { env: { ...client, BMAXMESSAGESIZE: "10" } }),
        6,
        /larger than the limit of 10 bytes/,
      );
      expect((await runCli(["get", "beuss"], { env: client })).stdout.length).toBe(1000);
      expect((await runCli(["get", "beuss"], { env: client })).code).toBe(3);
      expect(await stopProcess(serve)).toBe(0);
    });
  });
});
