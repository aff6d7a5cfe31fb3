// Bundles the web console into one HTML page at build time: a Bun macro (src/server/console.ts
// imports it `with { type: "macro" }`), so `bun build --compile` embeds the result in the binary and
// a run from source bundles it as the server's code is loaded. The page's code never ships twice.

import { readFileSync } from "node:fs";
import { join } from "node:path";

/**
 * What the server serves: the page, with its script and style inline, and the Content-Security-Policy
 * that allows exactly that script and style (by hash) and nothing from elsewhere.
 */
export interface ConsolePage {
  html: string;
  csp: string;
}

/** Bun.build cannot run inside a macro (the bundler waits for the macro): the CLI does the work. */
function bunBuild(file: string): string {
  const result = Bun.spawnSync([process.execPath, "build", join(import.meta.dir, file), "--minify", "--target=browser", "--format=iife"], {
    env: { ...process.env, BUN_BE_BUN: "1" },
  });
  if (result.exitCode !== 0) throw new Error(`bundling the console's ${file} failed:\n${result.stderr.toString()}`);
  return result.stdout.toString().trim();
}

function sha256(text: string): string {
  return `'sha256-${new Bun.CryptoHasher("sha256").update(text).digest("base64")}'`;
}

/** Synchronous, so that the server's code reads its result as the value it is after bundling. */
export function consolePage(): ConsolePage {
  const template = readFileSync(join(import.meta.dir, "index.html"), "utf8");
  // "</script" cannot appear inside an inline script; the minifier writes strings so it never does.
  const script = bunBuild("main.ts").replaceAll("</script", "<\\/script");
  const style = bunBuild("style.css");
  const html = template
    .replace(/\n\s*/g, "\n")
    .replace("<!--style-->", () => `<style>${style}</style>`)
    .replace("<!--script-->", () => `<script>${script}</script>`);
  const csp = [
    "default-src 'none'",
    `script-src ${sha256(script)}`,
    `style-src ${sha256(style)}`,
    "connect-src 'self'",
    "img-src 'self' data: blob:",
    "base-uri 'none'",
    "form-action 'none'",
    "frame-ancestors 'none'",
  ].join("; ");
  return { html, csp };
}
