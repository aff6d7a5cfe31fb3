// The compiled server collects garbage once a burst of writes is over (server/idle-gc.ts): it
// says so at debug level, keeps every message and answers at once afterwards.

import { afterAll, describe, expect, test } from "bun:test";
import { hasBinary } from "../helpers/binary.ts";
import { cleanupAll } from "../helpers/processes.ts";
import { startServer } from "../helpers/server.ts";
import { waitFor } from "../helpers/wait.ts";
import { Resp, rawExchange } from "./transports.ts";

afterAll(() => cleanupAll());

describe.skipIf(!hasBinary())("idle garbage collection", () => {
  test("after 100,000 writes and a quiet moment the server collects once, and serves as before", async () => {
    const server = await startServer({ args: ["--log-level", "debug"] });
    const client = await Resp.connect(server.port);
    try {
      // One pipelined burst: 100,000 LPUSHes in a single write; the last reply is the list's length.
      const one = "*3\r\n$5\r\nLPUSH\r\n$4\r\nwork\r\n$5\r\nhello\r\n";
      const collected = () => server.stderrText().includes("collected garbage");
      expect(collected()).toBe(false);
      const replies = await rawExchange(server.port, [one.repeat(100_000)], { done: (text) => text.endsWith(":100000\r\n"), timeoutMs: 20_000 });
      expect(replies.endsWith(":100000\r\n")).toBe(true);
      await waitFor(async () => collected(), { what: "the idle collection", timeoutMs: 10_000 });
      const started = performance.now();
      expect(await client.send(["PING"])).toBe("PONG");
      expect(performance.now() - started).toBeLessThan(1000);
      expect(new TextDecoder().decode((await client.send(["RPOP", "work"])) as Uint8Array)).toBe("hello");
      expect(await client.send(["LLEN", "work"])).toBe(99_999);
      expect(server.stderrText().match(/collected garbage/g)?.length).toBe(1);
    } finally {
      client.close();
      await server.stop();
    }
  }, 60_000);
});
