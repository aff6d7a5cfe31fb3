// Fuzzes the WebSocket side of the compiled binary's HTTP port: after a real upgrade, valid and
// invalid frames over a raw socket (bad opcodes, masked and unmasked, oversized lengths, fragmented
// control frames, frames cut short), plus random text and binary messages through Bun's WebSocket
// client in every mode. Seed and time: MSGBUS_FUZZ_SEED, MSGBUS_FUZZ_TIME_MS.

import { afterAll, expect, test } from "bun:test";
import { hasBinary } from "../helpers/binary.ts";
import { cleanupAll } from "../helpers/processes.ts";
import { wsHandshake } from "../e2e/transports.ts";
import { concat, split, utf8, wsFrame, wsPath, type Rng } from "./generators.ts";
import { fuzz, fuzzTimeBudget, open, pause, startFuzzServer, write, type RunState } from "./harness.ts";

afterAll(() => cleanupAll());

const DEFAULT_TIME_MS = 4000;
/** Raw sessions that got a 101 and sent frames, and client sessions that opened: a run that upgraded nothing tested nothing. */
const opened = { raw: 0, client: 0 };

test.skipIf(!hasBinary())(
  "WebSocket fuzz: after random and malformed frames the server answers, stays under its RSS bound and keeps the sentinel",
  async () => {
    const target = await startFuzzServer(["--max-topics", "2000"]);
    const { httpPort } = target.server;
    const result = await fuzz(target, "ws", {
      defaultTimeMs: DEFAULT_TIME_MS,
      workers: 4,
      session: (rng, id, run) => (rng.chance(0.7) ? rawSession(httpPort, rng, id, run) : clientSession(httpPort, rng, id, run)),
    });
    if (result.problems.length + result.stalls.length === 0) console.log(`${result.report()}\nupgraded: ${opened.raw} raw, ${opened.client} client`);
    expect(opened.raw).toBeGreaterThan(0);
    expect(result.problems, result.report()).toEqual([]);
    expect(result.stalls, result.report()).toEqual([]);
  },
  fuzzTimeBudget(DEFAULT_TIME_MS),
);

/** A real upgrade on a raw socket, then frames as they come from the generator. */
async function rawSession(port: number, rng: Rng, id: number, run: RunState): Promise<void> {
  const { socket, closed, text } = await open(port);
  const path = wsPath(rng);
  const extra = rng.pick(["", "", "Sec-WebSocket-Protocol: x\r\n", "Sec-WebSocket-Extensions: permessage-deflate\r\n", "Origin: https://evil.example\r\n"]);
  run.log.add(id, `upgrade ${path}`);
  await write(socket, utf8(wsHandshake(path, extra)));
  const until = Date.now() + 500;
  while (!closed() && !text().includes("\r\n\r\n") && Date.now() < until) await Bun.sleep(5);
  if (!text().startsWith("HTTP/1.1 101")) return void socket.destroy();
  opened.raw++;
  for (let frames = rng.range(1, 20); frames > 0 && !closed() && Date.now() < run.deadline && run.sent < run.budget(); frames--) {
    // Sometimes several frames in one write: a fragmented message with a control frame inside.
    const bytes = rng.chance(0.2) ? concat(Array.from({ length: rng.range(2, 5) }, () => wsFrame(rng))) : wsFrame(rng);
    run.log.add(id, "frame", bytes);
    for (const piece of split(rng, bytes)) {
      run.sent += piece.length;
      await write(socket, piece);
      await pause(rng);
    }
  }
  // A frame header announcing far more than will come, left open.
  if (!closed() && rng.chance(0.1)) {
    const header = new Uint8Array([0x82, 0xff, 0, 0, 0, 0, 0x7f, 0xff, 0xff, 0xff, 1, 2, 3, 4]);
    run.log.add(id, "frame header and park", header);
    await write(socket, header);
    if (run.park(socket)) return;
  }
  await Bun.sleep(rng.int(50));
  socket.destroy();
}

/** Bun's WebSocket client: random text and binary messages in a random mode, then a close. */
async function clientSession(port: number, rng: Rng, id: number, run: RunState): Promise<void> {
  const path = wsPath(rng);
  run.log.add(id, `client ${path}`);
  const ws = new WebSocket(`ws://127.0.0.1:${port}${path}`);
  ws.binaryType = "arraybuffer";
  let state = "opening" as "opening" | "open" | "closed";
  ws.addEventListener("open", () => (state = "open"));
  ws.addEventListener("close", () => (state = "closed"));
  ws.addEventListener("error", () => (state = "closed"));
  const until = Date.now() + 1000;
  while (state === "opening" && Date.now() < until) await Bun.sleep(5);
  if (state === "open") opened.client++;
  for (let n = rng.range(1, 15); n > 0 && state === "open" && run.sent < run.budget(); n--) {
    const message = rng.chance(0.5)
      ? `w${rng.int(1000)}${"x".repeat(rng.chance(0.1) ? rng.range(60000, 70000) : rng.int(50))}`
      : rng.bytes(rng.chance(0.1) ? rng.range(60000, 70000) : rng.int(100));
    run.log.add(id, typeof message === "string" ? "client text" : "client binary", typeof message === "string" ? utf8(message) : message);
    run.sent += message.length;
    ws.send(message);
    await pause(rng);
  }
  await Bun.sleep(rng.int(100));
  if (rng.chance(0.8)) ws.close(rng.pick([1000, 1001, 3000, 4999]), rng.chance(0.5) ? "bye" : "");
  else ws.terminate?.();
  const closing = Date.now() + 500;
  while (state !== "closed" && Date.now() < closing) await Bun.sleep(5);
}
