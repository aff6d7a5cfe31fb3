// Fuzzes the HTTP port of the compiled binary with raw-socket requests: random methods, paths
// (/_/…, /topic/id/ack, %-encodings, .., //), queries, headers (no Host, HTTP/1.0, bad
// Content-Length, chunked garbage, Last-Event-ID, SSE, Upgrade) and bodies, sometimes pipelined,
// sometimes mutated or cut short. Seed and time: MSGBUS_FUZZ_SEED, MSGBUS_FUZZ_TIME_MS.

import { afterAll, expect, test } from "bun:test";
import { hasBinary } from "../helpers/binary.ts";
import { cleanupAll } from "../helpers/processes.ts";
import { concat, httpRequest, split } from "./generators.ts";
import { fuzz, fuzzTimeBudget, open, pause, preview, startFuzzServer, write } from "./harness.ts";

afterAll(() => cleanupAll());

const DEFAULT_TIME_MS = 4000;

test.skipIf(!hasBinary())(
  "HTTP fuzz: after random, malformed and half-sent requests the server answers, stays under its RSS bound and keeps the sentinel",
  async () => {
    const target = await startFuzzServer(["--max-topics", "2000"]);
    // In memory there is no storage to fail: a 500 is the server failing on its input.
    const internalErrors: string[] = [];
    const result = await fuzz(target, "http", {
      defaultTimeMs: DEFAULT_TIME_MS,
      workers: 4,
      async session(rng, id, run) {
        const { socket, closed, received, text } = await open(target.server.httpPort);
        // One request, or a few pipelined on one keep-alive connection.
        const requests = Array.from({ length: rng.chance(0.8) ? 1 : rng.range(2, 4) }, () => httpRequest(rng));
        let bytes = concat(requests);
        const halfSent = rng.chance(0.1);
        if (halfSent) bytes = bytes.subarray(0, rng.int(bytes.length)); // headers that never end
        run.log.add(id, halfSent ? "send (cut short) and park" : "send", bytes);
        for (const piece of split(rng, bytes)) {
          if (closed()) break;
          run.sent += piece.length;
          await write(socket, piece);
          await pause(rng);
        }
        if (halfSent && run.park(socket)) return;
        // Long polls and event streams stay open: read a little, then hang up.
        const until = Date.now() + rng.range(20, 400);
        while (!closed() && Date.now() < until && received() < 1 << 20) await Bun.sleep(10);
        socket.destroy();
        const status = /^HTTP\/1\.[01] 500[^\r]*\r\n[\s\S]*?\r\n\r\n[^\r]{0,200}/m.exec(text());
        if (status && internalErrors.length < 5) internalErrors.push(`${preview(bytes)}\n    -> ${JSON.stringify(status[0])}`);
      },
    });
    if (result.problems.length + result.stalls.length + internalErrors.length === 0) console.log(result.report());
    expect(result.problems, result.report()).toEqual([]);
    expect(result.stalls, result.report()).toEqual([]);
    expect(internalErrors, `500 answers (seed ${result.seed}):\n${internalErrors.join("\n")}`).toEqual([]);
  },
  fuzzTimeBudget(DEFAULT_TIME_MS),
);
