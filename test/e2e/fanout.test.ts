// Fan-out to many TCP subscribers of the compiled binary (src/server/tcp-fanout.ts shares one
// buffer of frames per topic and event-loop turn among them): every subscriber gets every message
// in id order whatever its frame form, a connection's other output keeps its place around the
// shared frames, and a subscriber that stops reading is cut off without holding up the others.

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import net from "node:net";
import { encodeCommand } from "../../src/protocol/resp-writer.ts";
import { RespPush, RespReader, type RespValue } from "../../src/protocol/resp-reader.ts";
import { cleanupAll, hasBinary, startServer, waitFor, type TestServer } from "../helpers/index.ts";

afterAll(() => cleanupAll());

let counter = 0;
const fresh = (name: string) => `${name}-${++counter}-${Date.now()}`;
const decoder = new TextDecoder();
const text = (v: RespValue) => (v instanceof Uint8Array ? decoder.decode(v) : v);

/** A raw connection that collects every value it reads. */
class Client {
  readonly values: RespValue[] = [];
  closed = false;
  private readonly reader = new RespReader();

  private constructor(readonly socket: net.Socket) {
    socket.on("data", (chunk: Buffer) => {
      this.reader.feed(new Uint8Array(chunk));
      for (let item = this.reader.next(); item; item = this.reader.next()) this.values.push(item.value);
    });
    socket.on("close", () => (this.closed = true));
    socket.on("error", () => (this.closed = true));
  }

  static async open(port: number): Promise<Client> {
    const socket = net.connect(port, "127.0.0.1");
    await new Promise<void>((resolve) => socket.once("connect", () => resolve()));
    return new Client(socket);
  }

  /** Sends the commands in one write and waits until `count` values in all have come. */
  async send(commands: (string | Uint8Array)[][], count: number): Promise<void> {
    this.socket.write(Buffer.concat(commands.map((c) => Buffer.from(encodeCommand(c)))));
    await this.waitFor(count);
  }

  async waitFor(count: number, timeoutMs = 20000): Promise<void> {
    await waitFor(() => this.values.length >= count, { timeoutMs, what: `${count} values (have ${this.values.length})` });
  }

  /** The payloads of the messages pushed (native or Redis frames), in the order they came. */
  payloads(): string[] {
    const out: string[] = [];
    for (const value of this.values) {
      const items = value instanceof RespPush ? value.items : Array.isArray(value) ? value : undefined;
      if (items && text(items[0]!) === "message") out.push(String(text(items[2]!)));
    }
    return out;
  }

  close(): void {
    this.socket.destroy();
  }
}

describe.skipIf(!hasBinary())("TCP fan-out", () => {
  let server: TestServer;

  beforeAll(async () => {
    server = await startServer({ httpPort: 0 });
  });

  test("every subscriber (SUB and SUBSCRIBE, RESP2 and RESP3) gets every message, in order, across many reads", async () => {
    const topic = fresh("many");
    const subscribers: Client[] = [];
    for (const [hello, command] of [
      [undefined, "SUB"],
      [undefined, "SUB"],
      ["3", "SUB"],
      [undefined, "SUBSCRIBE"],
      [undefined, "SUBSCRIBE"],
      ["3", "SUBSCRIBE"],
    ] as const) {
      const client = await Client.open(server.port);
      const commands = hello
        ? [
            ["HELLO", hello],
            [command, topic],
          ]
        : [[command, topic]];
      await client.send(commands, commands.length);
      subscribers.push(client);
    }
    const writer = await Client.open(server.port);
    const expected = Array.from({ length: 3000 }, (_, i) => `m${i}`);
    for (let i = 0; i < expected.length; i += 500)
      await writer.send(
        expected.slice(i, i + 500).map((p) => ["PUBLISH", topic, p]),
        i + 500,
      );
    expect(writer.values.every((v) => v === 6)).toBe(true); // each PUBLISH reached the six
    for (const client of subscribers) {
      await waitFor(() => client.payloads().length >= expected.length, { what: "every message" });
      expect(client.payloads()).toEqual(expected);
      client.close();
    }
    writer.close();
  });

  test("a connection subscribed to two topics gets their messages in the order they were written", async () => {
    const [a, b] = [fresh("a"), fresh("b")];
    const both = await Client.open(server.port);
    await both.send(
      [
        ["SUB", a],
        ["SUB", b],
      ],
      2,
    );
    // Others on each topic, so both groups have connections that share their turn's frames.
    const onA = await Client.open(server.port);
    await onA.send([["SUB", a]], 1);
    const onB = await Client.open(server.port);
    await onB.send([["SUBSCRIBE", b]], 1);
    const writer = await Client.open(server.port);
    const order: string[] = [];
    const commands: string[][] = [];
    for (let i = 0; i < 200; i++) {
      const topic = i % 3 === 0 ? b : a;
      order.push(`${topic === a ? "a" : "b"}${i}`);
      commands.push(["PUBLISH", topic, order[order.length - 1]!]);
    }
    await writer.send(commands, commands.length);
    await waitFor(() => both.payloads().length >= order.length, { what: "every message" });
    expect(both.payloads()).toEqual(order);
    const ofA = order.filter((p) => p.startsWith("a"));
    await waitFor(() => onA.payloads().length >= ofA.length, { what: "the messages of a" });
    expect(onA.payloads()).toEqual(ofA);
    for (const client of [both, onA, onB, writer]) client.close();
  });

  test("a RESP3 subscriber's own PUBLISH: the push comes before the reply, and replies stay in order", async () => {
    const topic = fresh("own");
    const other = await Client.open(server.port);
    await other.send([["SUBSCRIBE", topic]], 1);
    const self = await Client.open(server.port);
    await self.send(
      [
        ["HELLO", "3"],
        ["SUBSCRIBE", topic],
      ],
      2,
    );
    await self.send([["PUBLISH", topic, "one"], ["PING"], ["PUBLISH", topic, "two"]], 2 + 5);
    const seen = self.values.slice(2).map((v) => (v instanceof RespPush ? `push ${text(v.items[2]!)}` : String(text(v))));
    expect(seen).toEqual(["push one", "2", "PONG", "push two", "2"]);
    await waitFor(() => other.payloads().length >= 2, { what: "both messages" });
    expect(other.payloads()).toEqual(["one", "two"]);
    other.close();
    self.close();
  });

  test("a RESP3 subscriber that switches to RESP2 (HELLO 2) gets its pushes as RESP2 arrays from then on", async () => {
    const topic = fresh("switch");
    const others = [await Client.open(server.port), await Client.open(server.port)];
    const switching = await Client.open(server.port);
    for (const client of [...others, switching])
      await client.send(
        [
          ["HELLO", "3"],
          ["SUB", topic],
        ],
        2,
      );
    const writer = await Client.open(server.port);
    await writer.send([["PUBLISH", topic, "before"]], 1);
    await switching.waitFor(3);
    await switching.send([["HELLO", "2"]], 4);
    await writer.send([["PUBLISH", topic, "after"]], 2);
    await switching.waitFor(5);
    expect(switching.values[2]).toBeInstanceOf(RespPush);
    expect(Array.isArray(switching.values[4])).toBe(true);
    expect(switching.payloads()).toEqual(["before", "after"]);
    for (const client of others) {
      await waitFor(() => client.payloads().length === 2, { what: "both messages" });
      expect(client.values[3]).toBeInstanceOf(RespPush);
      client.close();
    }
    switching.close();
    writer.close();
  });

  test("a subscriber that falls behind gets every payload as written, though the queue's memory is reused under it", async () => {
    // Each write is taken at once (LPOP), so the topic's one small chunk is written over from its
    // start by the next: a push waiting for the stalled socket must hold its own copy of the payload.
    const roomy = await startServer({ httpPort: 0, args: ["--send-buffer", "256MiB"] });
    const topic = fresh("behind");
    const stalled = await Client.open(roomy.port);
    await stalled.send([["SUB", topic]], 1);
    stalled.socket.pause();
    const writer = await Client.open(roomy.port);
    const payload = (i: number) => `${i}:`.padEnd(100, "abcdefghijklmnopqrstuvwxyz".charAt(i % 26));
    const total = 120000;
    for (let sent = 0; sent < total; sent += 2000) {
      const commands: string[][] = [];
      for (let i = sent; i < sent + 2000; i++) commands.push(["PUBLISH", topic, payload(i)], ["LPOP", topic]);
      await writer.send(commands, (sent + 2000) * 2);
    }
    stalled.socket.resume();
    await stalled.waitFor(1 + total, 60000);
    const got = stalled.payloads();
    expect(got.length).toBe(total);
    for (let i = 0; i < total; i++) if (got[i] !== payload(i)) expect(`${i}: ${got[i]}`).toBe(`${i}: ${payload(i)}`);
    stalled.close();
    writer.close();
    expect(await roomy.stop()).toBe(0);
  }, 90000);

  test("a subscriber that stops reading is cut off; the others of its topic get everything, in order", async () => {
    const small = await startServer({ httpPort: 0, args: ["--send-buffer", "64KiB"] });
    const topic = fresh("flood");
    const stalled = await Client.open(small.port);
    await stalled.send([["SUB", topic]], 1);
    stalled.socket.pause();
    const readers = [await Client.open(small.port), await Client.open(small.port)];
    await readers[0]!.send([["SUB", topic]], 1);
    await readers[1]!.send([["SUBSCRIBE", topic]], 1);
    const writer = await Client.open(small.port);
    const payload = "x".repeat(900);
    let sent = 0;
    for (let round = 0; round < 40 && !small.stderrText().includes("slow consumer"); round++) {
      await writer.send(
        Array.from({ length: 200 }, () => ["PUBLISH", topic, `${payload}${sent++}`]),
        sent,
      );
      // The readers keep up: each step is read before the next.
      for (const reader of readers) await waitFor(() => reader.payloads().length >= sent, { what: "the readers to keep up" });
    }
    await waitFor(() => small.stderrText().includes("slow consumer"), { timeoutMs: 10000, what: "the stalled reader to be cut off" });
    expect(small.stderrText().match(/slow consumer/g)?.length).toBe(1);
    const expected = Array.from({ length: sent }, (_, i) => `${payload}${i}`);
    for (const reader of readers) {
      expect(reader.payloads()).toEqual(expected);
      expect(reader.closed).toBe(false);
      reader.close();
    }
    stalled.close();
    writer.close();
    expect(await small.stop()).toBe(0);
  });
});
