// Where the compiled binary lives: `bun run build:local` writes it, end-to-end tests run it.

import { existsSync } from "node:fs";
import { join } from "node:path";

export const BINARY = join(import.meta.dir, "..", "..", "dist", process.platform === "win32" ? "msgbus.exe" : "msgbus");

/** True when dist/msgbus exists (tests that need it can `describe.skipIf(!hasBinary())`). */
export function hasBinary(): boolean {
  return existsSync(BINARY);
}
