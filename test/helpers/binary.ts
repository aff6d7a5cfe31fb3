// Where the compiled binary lives: `bun run build:local` writes it, end-to-end tests run it.
// Every test that runs it imports this file, so a missing binary stops the run here with one line
// (instead of every end-to-end file skipping or failing with ENOENT); unit tests never import it.

import { existsSync } from "node:fs";
import { join, relative } from "node:path";

export const BINARY = join(import.meta.dir, "..", "..", "dist", process.platform === "win32" ? "msgbus.exe" : "msgbus");

if (!existsSync(BINARY)) {
  console.error(
    `\n${relative(process.cwd(), BINARY)} is missing: run \`bun run build:local\` first (npm test does it); \`bun test test/unit\` needs no binary.\n`,
  );
  process.exit(1);
}

/** True when dist/msgbus exists: always, once this module has loaded (kept for `describe.skipIf(!hasBinary())`). */
export function hasBinary(): boolean {
  return existsSync(BINARY);
}
