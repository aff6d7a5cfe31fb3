// The end-to-end test kit in one import. A typical file:
//
//   import { afterAll, expect, test } from "bun:test";
//   import { cleanupAll, runCli, startServer } from "../helpers/index.ts";
//   afterAll(() => cleanupAll());
//   test("a put message can be taken with get", async () => {
//     const server = await startServer();
//     const env = { MSGBUS_URL: server.url };
//     expect((await runCli(["put", "jobs", "hello"], { env })).code).toBe(0);
//     expect((await runCli(["get", "jobs"], { env })).stdoutText).toBe("hello");
//   });

export { BINARY, hasBinary } from "./binary.ts";
export { runCli, spawnCli, type CliOptions, type CliResult, type RunningCli } from "./cli.ts";
export { freePort } from "./ports.ts";
export { cleanupAll, liveCount, Output, spawnTracked, stopProcess, testEnv } from "./processes.ts";
export { hasRedis, ping, startRedis, type TestRedis } from "./redis.ts";
export { startServer, type ServerOptions, type TestServer } from "./server.ts";
export { canConnect, waitFor, type WaitOptions } from "./wait.ts";
export { topicStats } from "./stats.ts";
export { removeTempDirs, tempDir } from "./dirs.ts";
