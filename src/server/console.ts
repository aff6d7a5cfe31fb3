// The web console at GET / for browsers (Accept: text/html): one page, bundled from src/console/
// at build time and embedded in the binary. It uses the public HTTP API only, so serving it needs
// no token: the page holds no data, and asks for the token itself.

import { consolePage } from "../console/bundle.ts" with { type: "macro" };

const page = consolePage();
let gzipped: Uint8Array | undefined;

/** True when the request is a browser's asking for a page (not curl, not a JSON client). */
export function wantsConsole(req: Request): boolean {
  return (req.headers.get("accept") ?? "").includes("text/html");
}

/** The page, gzipped for clients that take it (most of its bytes are script). */
export function consoleResponse(req: Request): Response {
  const headers: Record<string, string> = {
    "content-type": "text/html; charset=utf-8",
    "content-security-policy": page.csp,
    "cache-control": "no-cache",
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    vary: "Accept, Accept-Encoding",
  };
  if (/\bgzip\b/.test(req.headers.get("accept-encoding") ?? "")) {
    gzipped ??= Bun.gzipSync(new TextEncoder().encode(page.html));
    headers["content-encoding"] = "gzip";
    return new Response(req.method === "HEAD" ? null : gzipped, { headers });
  }
  return new Response(req.method === "HEAD" ? null : page.html, { headers });
}
