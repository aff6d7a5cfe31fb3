// Fuzzes the compiled binary's command line: random argument vectors for every subcommand (unknown
// flags, bad durations, bad urls, bad topics) against a running server. Every run must end with a
// documented exit code (README: 0, 2-10), never print a stack trace or a runtime error, and an
// unknown flag must be a usage error (exit 2). Seed and time: MSGBUS_FUZZ_SEED, MSGBUS_FUZZ_TIME_MS.

import { afterAll, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { BINARY, hasBinary } from "../helpers/binary.ts";
import { freePort } from "../helpers/ports.ts";
import { Output, cleanupAll, spawnTracked, stopProcess, testEnv } from "../helpers/processes.ts";
import { cliArgs, fuzzSeed, fuzzTimeMs, Rng } from "./generators.ts";
import { alarmingOutput, checkServer, startFuzzServer } from "./harness.ts";

// `get topic file` writes files: every run works in a directory of its own, removed afterwards.
const cwd = mkdtempSync(join(tmpdir(), "msgbus-cli-fuzz-"));
afterAll(async () => {
  await cleanupAll();
  rmSync(cwd, { recursive: true, force: true });
});

const DEFAULT_TIME_MS = 4000;
/** The README's exit codes for a run that ends by itself (1, "unexpected internal error", is a bug). */
const DOCUMENTED = new Set([0, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
/** Flags no subcommand has: each must be refused as a usage error (issue 8 item 14). */
const UNKNOWN_FLAGS = new Set(["--bogus", "--wiat", "-z"]);
const SUBCOMMANDS = new Set(["put", "pub", "get", "ack", "nack", "on", "sub", "serve"]);
/** Commands that may run until stopped: they get this long, then SIGTERM. */
const RUNNING_MS = 800;
/** Anything else must finish within this (a client against an answering or refusing server). */
const FINISH_MS = 8000;

test.skipIf(!hasBinary())(
  "CLI fuzz: random argument vectors end with a documented exit code and one line on stderr, never a stack trace",
  async () => {
    const target = await startFuzzServer(["--max-topics", "2000"]);
    const { server } = target;
    const urls = [server.url, server.httpUrl, server.httpUrl.replace("http:", "ws:")];
    const seed = fuzzSeed();
    const timeMs = fuzzTimeMs(DEFAULT_TIME_MS);
    const rng = new Rng(seed);
    const deadline = Date.now() + timeMs;
    const problems: string[] = [];
    let runs = 0;

    async function runOne(workerRng: Rng): Promise<void> {
      let args = cliArgs(workerRng, urls);
      const sub = args[0] ?? "";
      if (sub === "serve") {
        // Never the default ports, never another interface: only the flags under test plus ours.
        args = [
          ...args.filter((a, i) => !["--url", "--port", "--host"].includes(a) && !["--url", "--port", "--host"].includes(args[i - 1] ?? "")),
          "--host",
          "127.0.0.1",
          "--port",
          String(freePort()),
          "--http-port",
          String(freePort()),
        ];
      }
      const env: Record<string, string> = args.includes("--url") ? {} : { MSGBUS_URL: workerRng.pick(urls) };
      const mayRun = sub === "sub" || sub === "on" || sub === "serve" || args.includes("--wait") || args.includes("--reconnect");
      const stdin = new TextEncoder().encode(workerRng.pick(["", "line1\nline2\n", "x".repeat(workerRng.int(70000)), "\u0000\u0001"]));
      const proc = spawnTracked([BINARY, ...args], { env: testEnv(env), stdin, cwd });
      const stdout = new Output(proc.stdout);
      const stderr = new Output(proc.stderr);
      let stopped = false;
      const timer = setTimeout(
        () => {
          stopped = true;
          void stopProcess(proc, "SIGTERM", 2000);
        },
        mayRun ? RUNNING_MS : FINISH_MS,
      );
      const code = await proc.exited;
      clearTimeout(timer);
      await Promise.all([stdout.done, stderr.done]);
      runs++;
      const errors = stderr.text();
      const shown = `msgbus ${args.map((a) => JSON.stringify(a.length > 60 ? a.slice(0, 60) + "…" : a)).join(" ")} (MSGBUS_URL=${env.MSGBUS_URL ?? "-"})`;
      const why: string[] = [];
      if (stopped && !mayRun) why.push(`did not finish within ${FINISH_MS} ms`);
      if (!stopped && !DOCUMENTED.has(code)) why.push(`exit code ${code} is not a documented one`);
      if (stopped && ![0, 130, 143].includes(code)) why.push(`exit code ${code} after one SIGTERM`);
      const ownArgs = args.includes("--") ? args.slice(0, args.indexOf("--")) : args;
      const unknown = ownArgs.find((a) => UNKNOWN_FLAGS.has(a));
      if (SUBCOMMANDS.has(sub) && unknown && code !== 2) why.push(`unknown flag ${unknown} was not a usage error (exit ${code}; issue 8 item 14)`);
      if (args.length === 0 && code !== 2) why.push(`a bare msgbus exited ${code}, not 2 (issue 8 item 14)`);
      why.push(...alarmingOutput(errors));
      if (why.length && problems.length < 10) problems.push(`${shown}\n    ${why.join("; ")}\n    stderr: ${JSON.stringify(errors.slice(0, 300))}`);
    }

    const worker = async (workerRng: Rng) => {
      while (Date.now() < deadline) await runOne(workerRng);
    };
    await Promise.all([worker(rng.fork()), worker(rng.fork())]);
    const serverProblems = await checkServer(target, 0);
    const report = `cli fuzz: seed ${seed}, ${timeMs} ms, ${runs} runs\nreplay: MSGBUS_FUZZ_SEED=${seed} MSGBUS_FUZZ_TIME_MS=${timeMs} bun test test/fuzz/cli.fuzz.test.ts\n${[...problems, ...serverProblems].map((p) => `- ${p}`).join("\n")}`;
    if (problems.length + serverProblems.length === 0) console.log(report);
    expect(problems, report).toEqual([]);
    expect(serverProblems, report).toEqual([]);
  },
  fuzzTimeMs(DEFAULT_TIME_MS) + FINISH_MS + 30000,
);
