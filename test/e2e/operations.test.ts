// The compiled binary run the way the README says: under Debian's supervisord (the README's program
// block), under pm2 (the README's ecosystem.config.cjs), and the systemd unit in docs/ checked by
// systemd-analyze. Start, write, restart (messages kept with --data), stop: exit 0.

import { afterAll, describe, expect, test } from "bun:test";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { BINARY, hasBinary } from "../helpers/binary.ts";
import { runCli } from "../helpers/cli.ts";
import { freePort } from "../helpers/ports.ts";
import { cleanupAll, spawnTracked, stopProcess, testEnv } from "../helpers/processes.ts";
import { fencedBlock, repoFile } from "../helpers/readme.ts";
import { canConnect, waitFor } from "../helpers/wait.ts";

afterAll(() => cleanupAll());

const ROOT = join(import.meta.dir, "..", "..");
const PM2 = join(ROOT, "node_modules", "pm2", "bin", "pm2");

/** Runs a tool to its end; its output for the failure message. */
async function run(cmd: string[], env: Record<string, string> = {}): Promise<{ code: number; out: string }> {
  const proc = spawnTracked(cmd, { env: testEnv(env) });
  const [out, err] = await Promise.all([new Response(proc.stdout as ReadableStream).text(), new Response(proc.stderr as ReadableStream).text()]);
  return { code: await proc.exited, out: out + err };
}

function which(tool: string): boolean {
  return Bun.which(tool) !== null;
}

/** The README's setup, made to run here: this binary, a temporary data directory, free ports. */
function localise(text: string, dir: string): string {
  return text
    .replaceAll("/usr/local/bin/msgbus", BINARY)
    .replaceAll("/var/lib/msgbus", join(dir, "data"))
    .replaceAll("/var/log/msgbus.log", join(dir, "msgbus.log"));
}

async function putAndCheck(url: string, token: string, topic: string): Promise<void> {
  for (const payload of ["one", "two"]) expect(await runCli(["put", topic, payload, "--url", url, "--token", token])).toMatchObject({ code: 0 });
}

async function takeAll(url: string, token: string, topic: string): Promise<string[]> {
  const got: string[] = [];
  for (;;) {
    const result = await runCli(["get", topic, "--url", url, "--token", token]);
    if (result.code === 3) return got;
    expect(result.code).toBe(0);
    got.push(result.stdoutText);
  }
}

describe.skipIf(!hasBinary() || !which("supervisord") || !which("supervisorctl"))("under supervisord (the README's program block)", () => {
  test("start, write, supervisorctl restart keeps the messages (--data), stop exits 0", async () => {
    const dir = mkdtempSync(join(tmpdir(), "msgbus-supervisor-"));
    mkdirSync(join(dir, "data"));
    const port = freePort();
    const httpPort = freePort();
    const block = fencedBlock("README.md", "ini", "[program:msgbus]");
    const token = /MSGBUS_TOKEN="([^"]+)"/.exec(block)?.[1];
    expect(token).toBeDefined();
    // The README's block, with this test's ports added to its environment line.
    const program = localise(block, dir).replace(/^environment=(.*)$/m, `environment=$1,MSGBUS_PORT="${port}",MSGBUS_HTTP_PORT="${httpPort}"`);
    const conf = join(dir, "supervisord.conf");
    writeFileSync(
      conf,
      [
        "[unix_http_server]",
        `file=${dir}/supervisor.sock`,
        "[supervisord]",
        `logfile=${dir}/supervisord.log`,
        `pidfile=${dir}/supervisord.pid`,
        `childlogdir=${dir}`,
        "nodaemon=true",
        "[rpcinterface:supervisor]",
        "supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface",
        "[supervisorctl]",
        `serverurl=unix://${dir}/supervisor.sock`,
        program,
      ].join("\n"),
    );
    const ctl = (...args: string[]) => run(["supervisorctl", "-c", conf, ...args]);
    const supervisord = spawnTracked(["supervisord", "-c", conf], { env: testEnv() });
    const url = `tcp://127.0.0.1:${port}`;
    try {
      await waitFor(() => canConnect(port), { timeoutMs: 15000, what: "msgbus under supervisord" });
      await putAndCheck(url, token!, "jobs");
      const restarted = await ctl("restart", "msgbus");
      expect(restarted.code).toBe(0);
      expect(restarted.out).toContain("msgbus: started");
      await waitFor(() => canConnect(port), { timeoutMs: 15000, what: "msgbus after the restart" });
      expect(await takeAll(url, token!, "jobs")).toEqual(["one", "two"]);
      const stopped = await ctl("stop", "msgbus");
      expect(stopped.code).toBe(0);
      const log = readFileSync(join(dir, "msgbus.log"), "utf8");
      expect(log).toContain("SIGTERM: stopping");
      expect(log.trim().split("\n").at(-1)).toContain("stopped");
      // supervisord saw both stops end with exit status 0 (expected), not a kill.
      const supervisorLog = readFileSync(join(dir, "supervisord.log"), "utf8");
      expect(supervisorLog.match(/stopped: msgbus \(exit status 0\)/g)).toHaveLength(2);
      expect(supervisorLog).not.toContain("SIGKILL");
    } finally {
      await ctl("shutdown");
      await stopProcess(supervisord, "SIGTERM", 10000);
    }
  }, 60000);
});

describe.skipIf(!hasBinary() || !existsSync(PM2))("under pm2 (the README's ecosystem.config.cjs)", () => {
  test("start, write, pm2 restart keeps the messages (--data), stop exits 0", async () => {
    const dir = mkdtempSync(join(tmpdir(), "msgbus-pm2-"));
    mkdirSync(join(dir, "data"));
    const port = freePort();
    const httpPort = freePort();
    const block = fencedBlock("README.md", "js", "module.exports = {");
    const token = /MSGBUS_TOKEN: "([^"]+)"/.exec(block)?.[1];
    expect(token).toBeDefined();
    const ecosystem = join(dir, "ecosystem.config.cjs");
    writeFileSync(ecosystem, localise(block, dir).replace("env: {", `env: { MSGBUS_PORT: "${port}", MSGBUS_HTTP_PORT: "${httpPort}",`));
    const env = { PM2_HOME: join(dir, "pm2"), PM2_DISCRETE_MODE: "true" };
    const pm2 = (...args: string[]) => run(["node", PM2, ...args], env);
    const url = `tcp://127.0.0.1:${port}`;
    try {
      const started = await pm2("start", ecosystem);
      expect(started.code).toBe(0);
      await waitFor(() => canConnect(port), { timeoutMs: 20000, what: "msgbus under pm2" });
      await putAndCheck(url, token!, "jobs");
      expect((await pm2("restart", "msgbus")).code).toBe(0);
      await waitFor(() => canConnect(port), { timeoutMs: 20000, what: "msgbus after pm2 restart" });
      expect(await takeAll(url, token!, "jobs")).toEqual(["one", "two"]);
      expect((await pm2("stop", "msgbus")).code).toBe(0);
      // msgbus logs to stderr: pm2's "error" log. With MSGBUS_LOG_FORMAT=json, one object per line.
      const log = readFileSync(join(dir, "pm2", "logs", "msgbus-error.log"), "utf8");
      const entries = log
        .trim()
        .split("\n")
        .map((line) => JSON.parse(line) as { msg: string });
      expect(entries.filter((e) => e.msg === "stopped")).toHaveLength(2);
      const daemonLog = readFileSync(join(dir, "pm2", "pm2.log"), "utf8");
      expect(daemonLog.match(/App \[msgbus:\d+\] exited with code \[0\]/g)).toHaveLength(2);
    } finally {
      await pm2("kill");
    }
  }, 60000);
});

describe("the systemd unit in docs/", () => {
  const unit = repoFile("docs/msgbus.service");

  test("restarts on failure, runs as a dedicated user with a state directory, and is hardened", () => {
    for (const line of ["Restart=on-failure", "User=msgbus", "StateDirectory=msgbus", "NoNewPrivileges=yes", "ProtectSystem=strict", "KillSignal=SIGTERM"]) {
      expect(unit.split("\n")).toContain(line);
    }
    expect(unit).toContain("ExecStart=/usr/local/bin/msgbus serve --data /var/lib/msgbus");
    // The README shows the same unit.
    expect(repoFile("README.md")).toContain("docs/msgbus.service");
  });

  test.skipIf(!hasBinary())("systemd-analyze verify finds nothing to say", async () => {
    if (!which("systemd-analyze")) {
      console.warn("skipped: systemd-analyze is not installed (Debian: apt-get install systemd)");
      return;
    }
    const dir = mkdtempSync(join(tmpdir(), "msgbus-systemd-"));
    const file = join(dir, "msgbus.service");
    writeFileSync(file, localise(unit, dir));
    const proc = spawnTracked(["systemd-analyze", "verify", "--man=no", file], { env: testEnv({ SYSTEMD_LOG_COLOR: "0" }) });
    const out = (await new Response(proc.stdout as ReadableStream).text()) + (await new Response(proc.stderr as ReadableStream).text());
    const code = await proc.exited;
    expect({ code, out: out.split("\n").filter((l) => l.includes("msgbus.service")) }).toEqual({ code: 0, out: [] });
  });
});
