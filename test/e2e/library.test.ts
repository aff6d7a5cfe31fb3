// msgbus as a library, imported the way a consumer imports it: a project of its own whose
// node_modules/msgbus links to this repository, importing "msgbus" and "msgbus/client" by name,
// run by bun (and type-checked by tsc against the exported types).

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, mkdirSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { cleanupAll, hasBinary, Output, spawnTracked, startServer, testEnv, type TestServer } from "../helpers/index.ts";

const REPO = resolve(import.meta.dir, "..", "..");

afterAll(() => cleanupAll());

const CONSUMER = `
import { Bus, BusError, MAX_PEEK } from "msgbus";
import { connect, type Client, type ReceivedMessage } from "msgbus/client";

const text = (s: string) => new TextEncoder().encode(s);
const out: Record<string, unknown> = {};

// The engine, in-process.
const bus = new Bus();
const seen: string[] = [];
bus.subscribe("news", { send: (m) => seen.push(new TextDecoder().decode(m.payload)) });
bus.publish("news", text("first"));
bus.publish("news", text("second"));
out.peeked = bus.peek("news", 10).map((m) => m.id);
out.taken = new TextDecoder().decode(bus.take("news")!.payload);
out.seen = seen;
out.maxPeek = MAX_PEEK;
try {
  bus.publish("_bad", text("x"));
} catch (error) {
  out.error = error instanceof BusError ? error.code : "not a BusError";
}

// The typed client, over the transport the test names.
const client: Client = await connect(process.env.MSGBUS_TEST_URL!);
const written = await client.put("lib", text("over the wire"));
const queued: ReceivedMessage[] = await client.peek("lib");
const got = await client.get("lib");
out.written = written.id;
out.queued = queued.map((m) => new TextDecoder().decode(m.payload));
out.got = got ? new TextDecoder().decode(got.payload) : null;
out.ping = (await client.ping()).version !== undefined;
await client.close();
console.log(JSON.stringify(out));
`;

describe.skipIf(!hasBinary())("the library, imported by name from another project", () => {
  let server: TestServer;
  let project: string;

  beforeAll(async () => {
    server = await startServer();
    project = mkdtempSync(join(tmpdir(), "msgbus-consumer-"));
    mkdirSync(join(project, "node_modules"));
    symlinkSync(REPO, join(project, "node_modules", "msgbus"), "dir");
    writeFileSync(join(project, "package.json"), JSON.stringify({ name: "consumer", type: "module", private: true, dependencies: { msgbus: `file:${REPO}` } }));
    writeFileSync(join(project, "consumer.ts"), CONSUMER);
    writeFileSync(
      join(project, "tsconfig.json"),
      JSON.stringify({
        compilerOptions: {
          target: "ESNext",
          module: "ESNext",
          moduleResolution: "bundler",
          lib: ["ESNext"], // Bun's recommended setting, as this repository's own
          strict: true,
          noEmit: true,
          skipLibCheck: true,
          allowImportingTsExtensions: true,
          types: ["bun"],
          typeRoots: [join(REPO, "node_modules", "@types")],
        },
        files: ["consumer.ts"],
      }),
    );
  });
  afterAll(() => rmSync(project, { recursive: true, force: true }));

  async function run(cmd: string[], env: Record<string, string> = {}) {
    const proc = spawnTracked(cmd, { cwd: project, env: testEnv(env) });
    const stdout = new Output(proc.stdout);
    const stderr = new Output(proc.stderr);
    const code = await proc.exited;
    await Promise.all([stdout.done, stderr.done]);
    return { stdout: stdout.text(), stderr: stderr.text(), code };
  }

  for (const transport of ["tcp", "http", "ws"] as const) {
    test(`import { Bus } from "msgbus" and { connect } from "msgbus/client" run a round trip over ${transport}`, async () => {
      const url = transport === "tcp" ? server.url : transport === "http" ? server.httpUrl : server.httpUrl.replace("http:", "ws:");
      const result = await run([process.execPath, "consumer.ts"], { MSGBUS_TEST_URL: url });
      expect(result.stderr).toBe("");
      expect(result.code).toBe(0);
      expect(JSON.parse(result.stdout)).toEqual({
        peeked: [1, 2],
        taken: "first",
        seen: ["first", "second"],
        maxPeek: 1000,
        error: "BAD_TOPIC",
        written: expect.any(Number),
        queued: ["over the wire"],
        got: "over the wire",
        ping: true,
      });
    });
  }

  test("the exported types check: tsc finds msgbus and msgbus/client through package.json exports", async () => {
    const result = await run([process.execPath, join(REPO, "node_modules", "typescript", "bin", "tsc"), "-p", "."]);
    expect(result.stdout + result.stderr).toBe("");
    expect(result.code).toBe(0);
  }, 60000);
});
