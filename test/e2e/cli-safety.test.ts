// The CLI's promises under misuse and faults, end to end with the compiled binary: unknown flags
// are usage errors, a message is never lost to an output that cannot be written, stdin is read
// only up to the message limit, TLS needs both files and a way to trust a self-signed server,
// `on` renews its leases, and `put --lines` survives over-long lines and server restarts.

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { BINARY, hasBinary } from "../helpers/binary.ts";
import { runCli, spawnCli, type CliResult } from "../helpers/cli.ts";
import { cleanupAll, Output, spawnTracked, testEnv } from "../helpers/processes.ts";
import { startServer, type TestServer } from "../helpers/server.ts";
import { selfSignedCertificate } from "../helpers/tls.ts";
import { topicStats } from "../helpers/stats.ts";
import { waitFor } from "../helpers/wait.ts";

let topicCount = 0;
const freshTopic = (name: string) => `${name}-${++topicCount}`;

/** A failure is one line on stderr, "msgbus: …", and no stack trace. */
function expectOneLineError(result: CliResult, code: number, pattern: RegExp): void {
  expect(result.code).toBe(code);
  expect(result.stdout.length).toBe(0);
  const lines = result.stderr.split("\n").filter((line) => line !== "");
  expect(lines).toHaveLength(1);
  expect(lines[0]).toStartWith("msgbus: ");
  expect(lines[0]).toMatch(pattern);
}

/** Runs a shell line with $MSGBUS as the binary (for pipes and redirections). */
async function shell(script: string, env: Record<string, string>): Promise<{ code: number; stdout: string; stderr: string }> {
  const proc = spawnTracked(["sh", "-c", script], { env: testEnv({ ...env, MSGBUS: BINARY }) });
  const stdout = new Output(proc.stdout);
  const stderr = new Output(proc.stderr);
  const code = await proc.exited;
  await Promise.all([stdout.done, stderr.done]);
  return { code, stdout: stdout.text(), stderr: stderr.text() };
}

afterAll(() => cleanupAll());

describe.skipIf(!hasBinary())("the CLI under misuse and faults", () => {
  let server: TestServer;
  let env: Record<string, string>;
  let dir: string;
  const cli = (args: string[], options: { stdin?: Uint8Array | string; timeoutMs?: number } = {}) => runCli(args, { env, ...options });
  const queued = async (topic: string) => (await topicStats(server.port, topic).catch(() => ({ depth: 0 }))).depth;

  beforeAll(async () => {
    server = await startServer();
    env = { MSGBUS_URL: server.url };
    dir = mkdtempSync(join(tmpdir(), "msgbus-safety-"));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  describe("unknown flags and a bare msgbus", () => {
    test("get jobs --wiat 3s is a usage error naming --wiat, at once, and takes nothing", async () => {
      const topic = freshTopic("jobs");
      await cli(["put", topic, "x"]);
      const started = Date.now();
      expectOneLineError(await cli(["get", topic, "--wiat", "3s"]), 2, /unknown option --wiat for get/);
      expect(Date.now() - started).toBeLessThan(2500);
      expect(await queued(topic)).toBe(1);
    });

    test("put jobs --bogus x is a usage error and writes nothing", async () => {
      const topic = freshTopic("jobs");
      expectOneLineError(await cli(["put", topic, "--bogus", "x"]), 2, /unknown option --bogus for put/);
      expect((await cli(["get", topic])).code).toBe(3);
    });

    test("every subcommand refuses an unknown flag with exit code 2", async () => {
      for (const args of [["serve"], ["put", "t", "x"], ["pub", "t", "x"], ["get", "t"], ["on", "t"], ["sub", "t"], ["ack", "t", "1"], ["nack", "t", "1"]]) {
        const result = await cli([...args, "--no-such-flag"]);
        expect(result.code, args[0]).toBe(2);
        expect(result.stderr).toContain(`unknown option --no-such-flag for ${args[0]}`);
      }
      expectOneLineError(await cli(["get", "t", "--wait", "--bogus"]), 2, /unknown option --bogus/);
    });

    test("a flag's missing value is not taken from the next flag: serve --token --port 5000 is a usage error, --token=-x is a value", async () => {
      expectOneLineError(await cli(["serve", "--token", "--port", "5000"]), 2, /option --token needs a value, not --port \(.*--token=--port/);
      expectOneLineError(await cli(["put", "t", "x", "--token", "-z"]), 2, /option --token needs a value, not -z/);
      expectOneLineError(await cli(["pub", "t", "--url", "-z", "x"]), 2, /option --url needs a value, not -z/);
      // Written with =, a value may start with "-" (this server has no token, so any token will do).
      const topic = freshTopic("dash-value");
      expect((await cli(["put", topic, "x", "--token=-z"])).code).toBe(0);
      expect((await cli(["get", topic])).stdoutText).toBe("x");
    });

    test("arguments after -- belong to the handler (on) or the message (put), not to msgbus", async () => {
      const topic = freshTopic("dashes");
      expect((await cli(["put", topic, "--", "-5", "--not-a-flag"])).code).toBe(0);
      expect((await cli(["get", topic])).stdoutText).toBe("-5 --not-a-flag");
      expectOneLineError(await cli(["put", topic, "-5"]), 2, /unknown option -5 for put.*after --/);
      await cli(["put", topic, "payload"]);
      const on = spawnCli(["on", topic, "--", "sh", "-c", 'cat; echo " $0"', "--handler-flag"], { env });
      expect(await on.waitForLines(1)).toEqual(["payload --handler-flag"]);
      expect(await on.stop()).toBe(0);
    });

    test("--version -- prints the version; msgbus -- with no command is a usage error (exit 2)", async () => {
      for (const args of [
        ["--version", "--"],
        ["-v", "--"],
      ]) {
        const result = await runCli(args);
        expect(result.code).toBe(0);
        expect(result.stdoutText.trim()).toMatch(/^\d+\.\d+\.\d+/);
      }
      for (const args of [["--"], ["--", "put"]]) {
        const result = await runCli(args);
        expect(result.code).toBe(2);
        expect(result.stdout.length).toBe(0);
      }
    });

    test("a bare msgbus exits 2 with its usage on stderr and nothing on stdout", async () => {
      const result = await runCli([]);
      expect(result.code).toBe(2);
      expect(result.stdout.length).toBe(0);
      expect(result.stderr).toContain("USAGE msgbus");
      expect((await runCli(["--help"])).code).toBe(0);
    });
  });

  describe("get never loses a message to an output it cannot write", () => {
    test("get q /etc (a directory) exits 2 with one line, and the message stays queued", async () => {
      const topic = freshTopic("q");
      await cli(["put", topic, "keep me"]);
      expectOneLineError(await cli(["get", topic, "/etc"]), 2, /cannot write \/etc: it is a directory/);
      expectOneLineError(await cli(["get", topic, "/nonexistent/dir/f"]), 2, /cannot write \/nonexistent\/dir\/f: its directory does not exist/);
      expect(await queued(topic)).toBe(1);
      expect((await cli(["get", topic])).stdoutText).toBe("keep me");
    });

    test("get q > /dev/full (stdout fails) exits non-zero and gives the message back", async () => {
      const topic = freshTopic("q");
      await cli(["put", topic, "keep me too"]);
      const result = await shell(`"$MSGBUS" get ${topic} > /dev/full`, env);
      expect(result.code).not.toBe(0);
      expect(result.stderr).toMatch(/could not write message 1 of .*: .*ENOSPC.*goes back to the topic/);
      expect(await queued(topic)).toBe(1);
      expect((await cli(["get", topic])).stdoutText).toBe("keep me too");
    });

    test("get into a file that does not exist yet creates it only when a message was taken", async () => {
      const topic = freshTopic("q");
      const file = join(dir, `${topic}.out`);
      expect((await cli(["get", topic, file])).code).toBe(3);
      expect(existsSync(file)).toBe(false);
      await cli(["put", topic, "into the file"]);
      expect((await cli(["get", topic, file])).code).toBe(0);
      expect(await Bun.file(file).text()).toBe("into the file");
    });

    test("get --lease without --json names the id and delivery to ack on stderr; stdout stays the payload", async () => {
      const topic = freshTopic("leased");
      await cli(["put", topic, "work"]);
      const result = await cli(["get", topic, "--lease", "30s"]);
      expect(result.stdoutText).toBe("work");
      expect(result.stderr).toMatch(/id=1 delivery=1 .*msgbus ack .* 1 --delivery 1/);
      expect((await cli(["ack", topic, "1", "--delivery", "1"])).code).toBe(0);
    });
  });

  describe("durations past their maximum are usage errors", () => {
    test("get --wait 400d and on --lease 13h exit 2 before connecting", async () => {
      const offline = { MSGBUS_URL: "tcp://127.0.0.1:1" };
      expectOneLineError(await runCli(["get", "t", "--wait", "400d"], { env: offline }), 2, /--wait is longer than the maximum/);
      expectOneLineError(await runCli(["get", "t", "--lease", "13h"], { env: offline }), 2, /--lease is longer than the maximum of 12h/);
      expectOneLineError(await runCli(["on", "t", "--lease", "13h"], { env: offline }), 2, /--lease is longer than the maximum of 12h/);
      expectOneLineError(await runCli(["on", "t", "--retry-delay", "13h"], { env: offline }), 2, /--retry-delay is longer than the maximum of 12h/);
    });
  });

  describe("whole numbers are decimal digits only", () => {
    // Number() made "0x10" 16 and "1e3" 1000: the command then connected and ran with them.
    test("sub --since 0x10 and on --concurrency 1e3 are usage errors (exit 2) before connecting", async () => {
      const offline = { MSGBUS_URL: "tcp://127.0.0.1:1" };
      expectOneLineError(await runCli(["sub", "t", "--since", "0x10"], { env: offline }), 2, /--since: expected a whole number of at least 0 \(got "0x10"\)/);
      expectOneLineError(
        await runCli(["on", "t", "--concurrency", "1e3"], { env: offline }),
        2,
        /--concurrency: expected a whole number of at least 1 \(got "1e3"\)/,
      );
      expectOneLineError(await runCli(["put", "t", "--lines", "--buffer", " 5"], { env: offline }), 2, /--buffer: expected a whole number/);
    });

    test("ack jobs 0x10 and ack jobs 1 --delivery 1.0 are usage errors, and the lease stays", async () => {
      const topic = freshTopic("hex-ack");
      for (let i = 0; i < 16; i++) await cli(["put", topic, `m${i}`]);
      for (let i = 0; i < 16; i++) expect((await cli(["get", topic, "--lease", "30s", "--json"])).code).toBe(0);
      expectOneLineError(await cli(["ack", topic, "0x10"]), 2, /ack needs the message's id, a whole number of at least 1/);
      expectOneLineError(await cli(["ack", topic, "16", "--delivery", "1.0"]), 2, /--delivery: expected a whole number of at least 1 \(got "1.0"\)/);
      expect((await cli(["ack", topic, "16", "--delivery", "1"])).code).toBe(0);
    });
  });

  describe("long waits", () => {
    for (const url of ["tcp", "http"] as const) {
      test(`get --wait 25d over ${url} is still waiting after 1.5 s, and takes a later write`, async () => {
        const topic = freshTopic(`long-${url}`);
        const target = url === "tcp" ? server.url : server.httpUrl;
        const waiting = spawnCli(["get", topic, "--wait", "25d"], { env: { MSGBUS_URL: target } });
        await Bun.sleep(1500);
        expect(waiting.proc.exitCode).toBeNull();
        expect((await cli(["put", topic, "late"])).code).toBe(0);
        expect(await waiting.proc.exited).toBe(0);
        expect(new TextDecoder().decode(waiting.stdoutBytes())).toBe("late");
        expect(server.stderrText()).not.toContain("TimeoutOverflowWarning");
      });
    }
  });

  describe.skipIf(!existsSync("/usr/bin/time"))("put reads stdin only up to the message limit", () => {
    test("200 MB piped into put exits 6 at once, with a small peak RSS, and writes nothing", async () => {
      const topic = freshTopic("big");
      const started = Date.now();
      const result = await shell(`head -c 200000000 /dev/zero | /usr/bin/time -f "maxrss=%M" "$MSGBUS" put ${topic}`, env);
      expect(result.code).toBe(6);
      expect(Date.now() - started).toBeLessThan(10000);
      expect(result.stderr).toMatch(/msgbus: stdin holds more than 1048576 bytes: larger than the limit of 1048576 bytes \(the server's --max-message-size\)/);
      const rssKiB = Number(/maxrss=(\d+)/.exec(result.stderr)![1]);
      expect(rssKiB).toBeLessThan(150 * 1024);
      expect(await queued(topic)).toBe(0);
    });

    test("the server's limit is learnt over HTTP too (from /_/health)", async () => {
      const topic = freshTopic("big");
      const result = await shell(`head -c 5000000 /dev/zero | "$MSGBUS" put ${topic} --url ${server.httpUrl}`, env);
      expect(result.code).toBe(6);
      expect(result.stderr).toMatch(/larger than the limit of 1048576 bytes \(the server's --max-message-size\)/);
    });
  });

  describe.skipIf(!Bun.which("openssl"))("TLS", () => {
    test("serve with --tls-cert but no --tls-key (or the reverse) is a usage error, one line, exit 2", async () => {
      expectOneLineError(await runCli(["serve", "--port", "0", "--http-port", "0", "--tls-cert", "cert.pem"]), 2, /--tls-cert needs --tls-key/);
      expectOneLineError(await runCli(["serve", "--port", "0", "--http-port", "0"], { env: { MSGBUS_TLS_KEY: "key.pem" } }), 2, /--tls-key needs --tls-cert/);
    });

    test("a self-signed server is trusted with --cacert (tls://, https://, wss://); without it, exit 4 naming the certificate", async () => {
      const { cert, key } = selfSignedCertificate(dir);
      const secure = await startServer({ args: ["--tls-cert", cert, "--tls-key", key] });
      const tls = `tls://127.0.0.1:${secure.port}`;
      const https = `https://127.0.0.1:${secure.httpPort}`;
      const wss = `wss://127.0.0.1:${secure.httpPort}`;
      expect(await runCli(["put", "--url", tls, "--cacert", cert, "t", "x"])).toMatchObject({ code: 0, stderr: "" });
      expectOneLineError(await runCli(["put", "--url", tls, "t", "x"]), 4, /certificate.*--cacert/);
      expect(await runCli(["put", "--url", https, "t", "y"], { env: { MSGBUS_CACERT: cert } })).toMatchObject({ code: 0, stderr: "" });
      expectOneLineError(await runCli(["get", "--url", https, "t"]), 4, /certificate.*--cacert/);
      expect(await runCli(["put", "--url", wss, "--cacert", cert, "t", "z"])).toMatchObject({ code: 0, stderr: "" });
      expect(await runCli(["get", "--url", tls, "--insecure", "t"])).toMatchObject({ code: 0, stdoutText: "x" });
      expect(await runCli(["get", "--url", wss, "t"], { env: { MSGBUS_INSECURE: "1" } })).toMatchObject({ code: 0, stdoutText: "y" });
      expectOneLineError(await runCli(["get", "--url", tls, "--cacert", key, "t"]), 2, /--cacert: .* holds no PEM certificate/);
      expect(await secure.stop()).toBe(0);
    });
  });

  describe("on renews its lease while the handler runs", () => {
    test("on --lease 1s with a 3 s handler processes the message exactly once, though another on waits meanwhile", async () => {
      const topic = freshTopic("slow");
      const slow = spawnCli(["on", topic, "--lease", "1s", "--", "sh", "-c", 'sleep 3; cat; echo " slow $MSGBUS_DELIVERY"'], { env });
      await waitFor(async () => (await topicStats(server.port, topic)).consumers === 1, { what: "the first on to consume" });
      await cli(["put", topic, "job"]);
      await waitFor(async () => (await topicStats(server.port, topic)).inflight === 1, { what: "the job to be leased" });
      const other = spawnCli(["on", topic, "--lease", "1s", "--", "sh", "-c", 'cat; echo " other"'], { env });
      expect(await slow.waitForLines(1, 8000)).toEqual(["job slow 1"]);
      await waitFor(async () => (await topicStats(server.port, topic)).acked === 1, { what: "the job to be acked" });
      expect(other.lines()).toEqual([]);
      expect(slow.stderrText()).not.toMatch(/renew|could not ack/);
      expect(await other.stop()).toBe(0);
      expect(await slow.stop()).toBe(0);
      expect((await topicStats(server.port, topic)).redelivered).toBe(0);
    });

    test("the last failed delivery is logged as moved to <topic>.dead, not nacked", async () => {
      const topic = freshTopic("failing");
      await cli(["put", topic, "doomed"]);
      const on = spawnCli(["on", topic, "--max-deliveries", "2", "--", "false"], { env });
      await on.waitForStderr(/moved to failing-\d+\.dead/);
      expect(on.stderrText()).toMatch(/\(delivery 1\): nacked\n.*\(delivery 2\): moved to failing-\d+\.dead/);
      expect(await on.stop()).toBe(0);
    });
  });

  describe("put --lines", () => {
    test("an over-long line is skipped with a warning naming its line number; the lines after it are written", async () => {
      const small = await startServer({ httpPort: 0, args: ["--max-message-size", "100"] });
      const topic = freshTopic("logs");
      const input = `first\n${"x".repeat(300)}\nthird\n`;
      const result = await runCli(["put", topic, "--lines"], { env: { MSGBUS_URL: small.url }, stdin: input });
      expect(result.code).toBe(0);
      expect(result.stderr).toMatch(/^msgbus: line 2 is 300 bytes, over the limit of 100: skipped/);
      expect((await runCli(["get", topic], { env: { MSGBUS_URL: small.url } })).stdoutText).toBe("first");
      expect((await runCli(["get", topic], { env: { MSGBUS_URL: small.url } })).stdoutText).toBe("third");
      const truncated = freshTopic("logs");
      const warned = await runCli(["put", truncated, "--lines", "--long-lines", "truncate"], { env: { MSGBUS_URL: small.url }, stdin: input });
      expect(warned.stderr).toMatch(/line 2 is 300 bytes, over the limit of 100: truncated to 100 bytes/);
      await runCli(["get", truncated], { env: { MSGBUS_URL: small.url } });
      expect((await runCli(["get", truncated], { env: { MSGBUS_URL: small.url } })).stdoutText).toBe("x".repeat(100));
      expectOneLineError(
        await runCli(["put", freshTopic("logs"), "--lines", "--long-lines", "fail"], { env: { MSGBUS_URL: small.url }, stdin: input }),
        6,
        /line 2 .*larger than the limit of 100 bytes/,
      );
      await small.stop();
    });

    test("--reconnect: the server restarts mid-stream on the same port, and the later lines arrive", async () => {
      const first = await startServer({ httpPort: 0 });
      const url = first.url;
      const topic = freshTopic("logs");
      const put = spawnTracked([BINARY, "put", topic, "--lines", "--reconnect"], { env: testEnv({ MSGBUS_URL: url }), stdin: "pipe" });
      const stdin = put.stdin as import("bun").FileSink;
      const stderr = new Output(put.stderr);
      const line = (text: string) => {
        stdin.write(`${text}\n`);
        stdin.flush();
      };
      line("before");
      await waitFor(async () => (await topicStats(first.port, topic).catch(() => ({ depth: 0 }))).depth === 1, { what: "the first line" });
      expect(await first.stop()).toBe(0);
      line("while away 1");
      line("while away 2");
      await waitFor(() => /trying again/.test(stderr.text()), { what: "put to notice the server is gone" });
      const second = await startServer({ httpPort: 0, port: first.port });
      line("after");
      stdin.end();
      expect(await put.exited).toBe(0);
      const got: string[] = [];
      for (;;) {
        const result = await runCli(["get", topic], { env: { MSGBUS_URL: url } });
        if (result.code !== 0) break;
        got.push(result.stdoutText);
      }
      // The first server kept "before" in memory only; everything written after the restart arrives, in order.
      expect(got).toEqual(["while away 1", "while away 2", "after"]);
      expect(stderr.text()).toMatch(/connected again: sending \d+ waiting line/);
      await second.stop();
    });
  });
});
