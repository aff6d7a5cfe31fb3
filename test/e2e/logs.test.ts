// What serve writes to stderr: levels honoured by every area's logger, and --log-format json for
// log collectors (one JSON object per line).

import { afterAll, expect, test } from "bun:test";
import { cleanupAll, startServer } from "../helpers/index.ts";

afterAll(() => cleanupAll());

test("--log-level warn silences the info lines of every area, including where the server listens", async () => {
  const server = await startServer({ args: ["--log-level", "warn"] });
  expect(await server.stop()).toBe(0);
  expect(server.stderrText()).not.toContain("INFO");
  expect(server.stderrText()).not.toContain("listening on");
});

test("--log-format json writes one JSON object per line, with level, area and message", async () => {
  const server = await startServer({ env: { MSGBUS_LOG_FORMAT: "json" } });
  expect(await server.stop()).toBe(0);
  const lines = server.stderrText().trim().split("\n");
  const entries = lines.map((line) => JSON.parse(line) as { time: string; level: string; area?: string; msg: string });
  const listening = entries.find((e) => e.msg.startsWith("listening on"));
  expect(listening).toMatchObject({ level: "info", area: "server" });
  expect(entries.every((e) => typeof e.time === "string" && typeof e.msg === "string")).toBe(true);
});
