// Start-up of the client as a process (`bun bench/run.ts --only startup`): hyperfine runs
// `msgbus put`, `msgbus --version`, `redis-cli RPUSH` (the same server) and a compiled Bun hello
// world, in alternating rounds; the table gives each one's median and its ratio to redis-cli.

import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { BINARY, need, startMsgbus, table } from "./lib.ts";

interface HyperfineResult {
  command: string;
  median: number;
  mean: number;
  stddev: number;
}

export async function run({ quick }: { quick: boolean }): Promise<void> {
  need("hyperfine", "apt-get install hyperfine");
  need("redis-cli", "apt-get install redis-tools");
  const runs = quick ? 30 : 100;
  const rounds = quick ? 1 : 2;
  console.log(`\n## Start-up: one process per command (hyperfine -N, ${runs} runs x ${rounds} alternating rounds, median)\n`);

  const dir = mkdtempSync(join(tmpdir(), "msgbus-startup-"));
  const server = await startMsgbus();
  try {
    // The floor: what any compiled Bun program costs to start and exit.
    await Bun.write(join(dir, "hello.ts"), 'console.log("hello");\n');
    const built = Bun.spawnSync(["bun", "build", "--compile", "--minify", "--bytecode", join(dir, "hello.ts"), "--outfile", join(dir, "hello")], {
      stdout: "ignore",
      stderr: "pipe",
    });
    if (!built.success) throw new Error(`bun build --compile hello.ts failed: ${built.stderr.toString()}`);

    const commands: Record<string, string> = {
      "msgbus put t x": `${BINARY} put startup.t x`,
      "msgbus --version": `${BINARY} --version`,
      "redis-cli RPUSH t x": `redis-cli -p ${server.port} RPUSH startup.t x`,
      "Bun hello world (compiled)": join(dir, "hello"),
    };
    const medians: Record<string, number[]> = {};
    for (let round = 0; round < rounds; round++) {
      const names = Object.keys(commands);
      if (round % 2 === 1) names.reverse();
      const out = join(dir, `round${round}.json`);
      const args = ["hyperfine", "-N", "--warmup", "10", "--runs", String(runs), "--export-json", out, "--style", "none"];
      for (const name of names) args.push("-n", name, commands[name]!);
      const proc = Bun.spawnSync(args, { env: { ...process.env, MSGBUS_URL: `tcp://127.0.0.1:${server.port}` }, stdout: "ignore", stderr: "pipe" });
      if (!proc.success) throw new Error(`hyperfine failed: ${proc.stderr.toString()}`);
      const { results } = (await Bun.file(out).json()) as { results: HyperfineResult[] };
      for (const r of results) (medians[r.command] ??= []).push(r.median * 1000);
    }
    const best = (name: string) => Math.min(...medians[name]!);
    const redis = best("redis-cli RPUSH t x");
    console.log(
      table(
        ["command", "median ms (best round)", "vs redis-cli RPUSH"],
        Object.keys(commands).map((name) => [name, best(name).toFixed(2), `${(best(name) / redis).toFixed(2)}x`]),
      ),
    );
  } finally {
    await server.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}
