// The operator commands on the compiled binary (topics, stats, peek, purge, rm, ping, top,
// completion), each in its text and --json forms, and the seed tools' habits: pull, upper-case
// PUT/GET/ON, and `sub <topic> <command>` without --.

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { BINARY, cleanupAll, hasBinary, runCli, spawnCli, startServer, type TestServer } from "../helpers/index.ts";

afterAll(() => cleanupAll());

let counter = 0;
const fresh = (name: string) => `${name}-${++counter}-${Date.now()}`;

describe.skipIf(!hasBinary())("operator commands", () => {
  let server: TestServer;
  let tcp: Record<string, string>;
  let http: Record<string, string>;

  beforeAll(async () => {
    server = await startServer();
    tcp = { MSGBUS_URL: server.url };
    http = { MSGBUS_URL: server.httpUrl };
  });

  const put = async (topic: string, ...messages: string[]) => {
    for (const m of messages) expect((await runCli(["put", topic, m], { env: tcp })).code).toBe(0);
  };
  const depth = async (topic: string) => JSON.parse((await runCli(["stats", topic, "--json"], { env: tcp })).stdoutText).depth as number;

  for (const transport of ["tcp", "http"] as const) {
    test(`topics lists every topic as a table, --json and --names (${transport})`, async () => {
      const env = transport === "tcp" ? tcp : http;
      const topic = fresh(`listed-${transport}`);
      await put(topic, "a", "bb");
      const table = await runCli(["topics"], { env });
      expect(table.code).toBe(0);
      const lines = table.stdoutText.trimEnd().split("\n");
      expect(lines[0]).toMatch(/^TOPIC\s+DEPTH\s+BYTES\s+IN FLIGHT\s+SUBS\s+CONSUMERS\s+IN\/S\s+OUT\/S$/);
      expect(lines.find((l) => l.startsWith(topic))).toMatch(new RegExp(`^${topic}\\s+2\\s+195 B\\s+0\\s+0\\s+0\\s`));
      const json = JSON.parse((await runCli(["topics", "--json"], { env })).stdoutText) as { name: string; depth: number; inflight: number }[];
      expect(json.find((t) => t.name === topic)).toMatchObject({ depth: 2, inflight: 0, subscribers: 0, consumers: 0 });
      expect((await runCli(["topics", "--names"], { env })).stdoutText.split("\n")).toContain(topic);
    });
  }

  test("stats shows one topic in detail, or the server's totals; --json as one object; an unknown topic is exit 2", async () => {
    const topic = fresh("stats");
    await put(topic, "x");
    const text = await runCli(["stats", topic], { env: tcp });
    expect(text.code).toBe(0);
    expect(text.stdoutText).toMatch(new RegExp(`^topic\\s+${topic}\\n`));
    expect(text.stdoutText).toMatch(/\ndepth\s+1 queued/);
    for (const env of [tcp, http]) {
      expect(JSON.parse((await runCli(["stats", topic, "--json"], { env })).stdoutText)).toMatchObject({ name: topic, depth: 1, published: 1, lastId: 1 });
      const totals = JSON.parse((await runCli(["stats", "--json"], { env })).stdoutText);
      expect(totals.messagesIn).toBeGreaterThanOrEqual(1);
      expect(totals.uptime).toBeGreaterThanOrEqual(0);
      expect(totals.connections).toBeGreaterThanOrEqual(1);
    }
    expect((await runCli(["stats"], { env: tcp })).stdoutText).toMatch(/^uptime\s+\d+s\ntopics\s+\d+\n/);
    const missing = await runCli(["stats", fresh("nothing")], { env: tcp });
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/^msgbus: no topic /);
  });

  test("peek shows queued messages (a table, or --json lines) and takes none; -n limits them", async () => {
    const topic = fresh("peek");
    await put(topic, "hello", "line1\nline2", "third");
    const table = await runCli(["peek", topic], { env: tcp });
    expect(table.code).toBe(0);
    const lines = table.stdoutText.trimEnd().split("\n");
    expect(lines[0]).toMatch(/^ID\s+CREATED\s+DELIVERED\s+SIZE\s+PAYLOAD$/);
    expect(lines[1]).toMatch(/^ 1 {2}\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\s+0\s+5 {2}hello$/);
    expect(lines[2]).toEndWith("line1\\nline2");
    for (const env of [tcp, http]) {
      const json = await runCli(["peek", topic, "-n", "2", "--json"], { env });
      const envelopes = json.stdoutText
        .trimEnd()
        .split("\n")
        .map((l) => JSON.parse(l));
      expect(envelopes.map((e) => e.payload)).toEqual(["hello", "line1\nline2"]);
      expect(envelopes[0]).toMatchObject({ id: 1, topic, deliveries: 0 });
    }
    expect(await depth(topic)).toBe(3);
    expect((await runCli(["get", topic], { env: tcp })).stdoutText).toBe("hello");
    const empty = await runCli(["peek", fresh("empty")], { env: tcp });
    expect(empty.code).toBe(0);
    expect(empty.stdoutText).toBe("");
    expect((await runCli(["peek", topic, "-n", "1001"], { env: tcp })).code).toBe(2);
  });

  test("purge, not on a terminal, drops the queued messages without asking; the topic stays", async () => {
    const topic = fresh("purge");
    await put(topic, "a", "b");
    const text = await runCli(["purge", topic], { env: tcp });
    expect(text.code).toBe(0);
    expect(text.stdoutText).toBe(`purged 2 messages from ${topic}\n`);
    expect(await depth(topic)).toBe(0);
    await put(topic, "c");
    const json = await runCli(["purge", topic, "--yes", "--json"], { env: http });
    expect(JSON.parse(json.stdoutText)).toEqual({ topic, purged: 1 });
    expect((await runCli(["stats", topic], { env: tcp })).code).toBe(0);
  });

  test("rm deletes the topic and what it holds; a second rm is exit 2", async () => {
    const topic = fresh("rm");
    await put(topic, "a");
    const text = await runCli(["rm", topic], { env: tcp });
    expect(text.code).toBe(0);
    expect(text.stdoutText).toBe(`deleted ${topic} (1 message dropped)\n`);
    expect((await runCli(["stats", topic], { env: tcp })).code).toBe(2);
    const again = await runCli(["rm", topic], { env: tcp });
    expect(again.code).toBe(2);
    expect(again.stderr).toBe(`msgbus: no topic ${topic}\n`);
    await put(topic, "b");
    expect(JSON.parse((await runCli(["rm", topic, "--json"], { env: http })).stdoutText)).toEqual({ topic, deleted: true, dropped: 1 });
  });

  test("ping answers the round trip and the server's version over every transport; exit 4 when the server is down", async () => {
    for (const url of [server.url, server.httpUrl, server.httpUrl.replace("http:", "ws:")]) {
      const text = await runCli(["ping", "--url", url]);
      expect(text.code).toBe(0);
      expect(text.stdoutText).toMatch(new RegExp(`^PONG from ${url.replace(/[/.]/g, "\\$&")} in [\\d.]+ ms \\(msgbus \\S+\\)\\n$`));
      const json = JSON.parse((await runCli(["ping", "--url", url, "--json"])).stdoutText);
      expect(json).toMatchObject({ url, version: expect.any(String) });
      expect(json.ms).toBeGreaterThan(0);
    }
    const down = await runCli(["ping", "--url", "tcp://127.0.0.1:1"]);
    expect(down.code).toBe(4);
    expect(down.stderr).toMatch(/^msgbus: cannot reach msgbus at tcp:\/\/127\.0\.0\.1:1/);
    expect((await runCli(["ping", "--url", "http://127.0.0.1:1"])).code).toBe(4);
  });

  test("top, when stdout is not a terminal, prints one snapshot with the busiest topic first and exits; --json as an object", async () => {
    const busy = fresh("busy");
    await put(busy, ...Array.from({ length: 5 }, (_, i) => String(i)));
    const snapshot = await runCli(["top", "--sort", "depth"], { env: tcp });
    expect(snapshot.code).toBe(0);
    const lines = snapshot.stdoutText.split("\n");
    expect(lines[0]).toMatch(/^msgbus top {2}tcp:\/\/127\.0\.0\.1:\d+ {2}up \S+ {2}topics \d+ {2}connections \d+ {2}memory /);
    expect(lines[1]).toMatch(/^in \S+\/s {2}out \S+\/s .* sorted by depth/);
    expect(lines[3]).toMatch(/^TOPIC\s+DEPTH/);
    expect(lines[4]).toStartWith(busy);
    const json = JSON.parse((await runCli(["top", "--once", "--json", "--sort", "depth"], { env: http })).stdoutText);
    expect(json.topics[0]).toMatchObject({ name: busy, depth: 5 });
    expect(json.server.topics).toBeGreaterThanOrEqual(1);
    expect((await runCli(["top", "--sort", "loudest"], { env: tcp })).code).toBe(2);
  });
});

describe.skipIf(!hasBinary())("the seed tools' habits", () => {
  let server: TestServer;
  let env: Record<string, string>;

  beforeAll(async () => {
    server = await startServer();
    env = { MSGBUS_URL: server.url };
  });

  test("pull is get: it takes the message, and exits 3 when there is none", async () => {
    const topic = fresh("pull");
    await runCli(["put", topic, "pulled"], { env });
    const pulled = await runCli(["pull", topic], { env });
    expect(pulled.code).toBe(0);
    expect(pulled.stdoutText).toBe("pulled");
    expect((await runCli(["pull", topic], { env })).code).toBe(3);
  });

  test("beuss's upper-case PUT, GET and ON work as put, get and on", async () => {
    const topic = fresh("upper");
    expect((await runCli(["PUT", topic, "one"], { env })).code).toBe(0);
    expect((await runCli(["PUT", topic, "two"], { env })).code).toBe(0);
    expect((await runCli(["GET", topic], { env })).stdoutText).toBe("one");
    const on = spawnCli(["ON", topic], { env });
    expect(await on.waitForLines(1)).toEqual(["two"]);
    expect(await on.stop()).toBe(0);
    expect((await runCli(["Topics", "--names"], { env })).code).toBe(0);
  });

  test("sub <topic> <command> [args…] without -- runs the command per message; its own flags stay its own", async () => {
    const topic = fresh("sub-command");
    const sub = spawnCli(["sub", topic, "sh", "-c", 'printf "%s:%s\\n" "$MSGBUS_ID" "$(cat)"', "--json"], { env });
    // The subscription is live once a write reaches it: write until one line arrives.
    for (let i = 0; sub.lines().length === 0 && i < 50; i++) {
      await runCli(["pub", topic, `m${i}`], { env });
      await Bun.sleep(50);
    }
    const [first] = await sub.waitForLines(1);
    expect(first).toMatch(/^\d+:m\d+$/);
    expect(await sub.stop()).toBe(0);
  });

  test("sub <topic> without a command still prints each message", async () => {
    const topic = fresh("sub-print");
    const sub = spawnCli(["sub", topic], { env });
    for (let i = 0; sub.lines().length === 0 && i < 50; i++) {
      await runCli(["pub", topic, "printed"], { env });
      await Bun.sleep(50);
    }
    expect((await sub.waitForLines(1))[0]).toBe("printed");
    expect(await sub.stop()).toBe(0);
  });
});

describe.skipIf(!hasBinary())("shell completion", () => {
  const shellFound = (shell: string) => Bun.which(shell) !== null;

  test("bash: source <(msgbus completion bash) registers the completion, and it completes commands, flags and choices", async () => {
    const script = `source <("${BINARY}" completion bash); complete -p msgbus
t() { COMP_WORDS=("$@"); COMP_CWORD=$(( $# - 1 )); COMPREPLY=(); _msgbus; echo "\${COMPREPLY[*]}"; }
t msgbus pe; t msgbus peek --co; t msgbus put jobs --long-lines ""; t msgbus completion ""`;
    const proc = Bun.spawn(["bash", "-c", script], { stdout: "pipe", stderr: "pipe" });
    const [out, err] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text()]);
    expect(err).toBe("");
    expect(out.split("\n")).toEqual(["complete -o bashdefault -o default -F _msgbus msgbus", "peek", "--count", "skip truncate fail", "bash zsh fish", ""]);
  });

  for (const [shell, check] of [
    ["zsh", ["zsh", "-n"]],
    ["fish", ["fish", "-n"]],
  ] as const) {
    test(`${shell}: the script parses${shellFound(shell) ? "" : ` (skipped: ${shell} is not installed)`}`, async () => {
      const generated = await runCli(["completion", shell]);
      expect(generated.code).toBe(0);
      expect(generated.stdoutText).toContain("peek");
      if (!shellFound(shell)) {
        console.log(`skipped the ${shell} syntax check: ${shell} is not installed`);
        return;
      }
      const file = `${process.env.TMPDIR ?? "/tmp"}/msgbus-completion-${process.pid}.${shell}`;
      await Bun.write(file, generated.stdout);
      const proc = Bun.spawn([...check, file], { stdout: "pipe", stderr: "pipe" });
      expect(await new Response(proc.stderr).text()).toBe("");
      expect(await proc.exited).toBe(0);
    });
  }

  test("completion without a shell is a usage error (exit 2)", async () => {
    const result = await runCli(["completion", "tcsh"]);
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/bash, zsh, fish/);
  });
});
