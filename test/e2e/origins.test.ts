// --allow-origin: which browser pages (by their Origin) may use the HTTP API and WebSockets.
// Any page by default; one origin, or none (same-origin only) when the operator says so.

import { afterAll, describe, expect, test } from "bun:test";
import { cleanupAll, startServer } from "../helpers/index.ts";

afterAll(() => cleanupAll());

/** Opens a WebSocket with an Origin header; resolves "open" or "refused". */
function openWith(url: string, origin?: string): Promise<"open" | "refused"> {
  return new Promise((resolve) => {
    const ws = new WebSocket(url, origin ? { headers: { origin } } : undefined);
    ws.onopen = () => {
      ws.close();
      resolve("open");
    };
    ws.onerror = () => resolve("refused");
  });
}

describe("--allow-origin", () => {
  test("by default any page may read replies and open WebSockets", async () => {
    const server = await startServer();
    const reply = await fetch(`${server.httpUrl}/jobs`, { method: "POST", body: "x", headers: { origin: "https://anywhere.example" } });
    expect(reply.headers.get("access-control-allow-origin")).toBe("*");
    expect(await openWith(`ws://127.0.0.1:${server.httpPort}/jobs`, "https://anywhere.example")).toBe("open");
  });

  test("one origin: only that page's WebSockets are accepted, and replies name it", async () => {
    const server = await startServer({ args: ["--allow-origin", "https://app.example"] });
    const reply = await fetch(`${server.httpUrl}/jobs`, { method: "POST", body: "x" });
    expect(reply.headers.get("access-control-allow-origin")).toBe("https://app.example");
    const preflight = await fetch(`${server.httpUrl}/jobs`, { method: "OPTIONS" });
    expect(preflight.headers.get("access-control-allow-origin")).toBe("https://app.example");
    const ws = `ws://127.0.0.1:${server.httpPort}/jobs`;
    expect(await openWith(ws, "https://app.example")).toBe("open");
    expect(await openWith(ws, "https://evil.example")).toBe("refused");
    expect(await openWith(ws)).toBe("open"); // not a browser: no Origin header
  });

  test("none: no CORS headers, and no WebSocket from a page of another origin", async () => {
    const server = await startServer({ env: { MSGBUS_ALLOW_ORIGIN: "none" } });
    const reply = await fetch(`${server.httpUrl}/jobs`, { method: "POST", body: "x" });
    expect(reply.status).toBe(200);
    expect(reply.headers.get("access-control-allow-origin")).toBeNull();
    const refused = await fetch(`${server.httpUrl}/jobs`, {
      headers: {
        upgrade: "websocket",
        connection: "Upgrade",
        "sec-websocket-key": "dGhlIHNhbXBsZSBub25jZQ==",
        "sec-websocket-version": "13",
        origin: "https://evil.example",
      },
    });
    expect(refused.status).toBe(403);
    expect(((await refused.json()) as { error: string }).error).toContain("refused");
  });
});
