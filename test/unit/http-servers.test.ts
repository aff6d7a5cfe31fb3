// Two HTTP servers in one process (tests, the library) keep their own settings: CORS is a value
// per server, not module state the last one started overwrites.

import { afterAll, expect, test } from "bun:test";
import { resolveConfig } from "../../src/config.ts";
import { configureLog } from "../../src/log.ts";
import { type RunningServer, startServer } from "../../src/server/index.ts";
import { freePort } from "../helpers/ports.ts";

configureLog("error", "text"); // startServer logs where it listens
const servers: RunningServer[] = [];
afterAll(async () => {
  for (const server of servers) await server.stop();
});

async function serve(allowOrigin: string): Promise<string> {
  const config = resolveConfig({ port: String(freePort()), "http-port": String(freePort()), "allow-origin": allowOrigin }, {});
  const server = await startServer(config);
  servers.push(server);
  return `http://127.0.0.1:${server.httpPort}`;
}

test("each server answers with its own --allow-origin, whichever started last", async () => {
  const open = await serve("*");
  const one = await serve("https://app.example");
  const closed = await serve("none");
  const origin = { origin: "https://app.example" };
  for (const [url, expected, vary] of [
    [open, "*", null],
    [one, "https://app.example", "Origin"],
    [closed, null, null],
  ] as const) {
    const written = await fetch(`${url}/jobs`, { method: "POST", body: "x", headers: origin });
    expect(written.headers.get("access-control-allow-origin")).toBe(expected);
    expect(written.headers.get("vary")).toBe(vary);
    const refused = await fetch(`${url}/_bad`, { headers: origin });
    expect(refused.status).toBe(400);
    expect(refused.headers.get("access-control-allow-origin")).toBe(expected);
    const preflight = await fetch(`${url}/jobs`, { method: "OPTIONS", headers: origin });
    expect(preflight.headers.get("access-control-allow-methods")).toBe(expected === null ? null : "GET, POST, PUT, DELETE, OPTIONS");
  }
});
