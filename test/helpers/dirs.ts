// Temporary directories for tests (data directories, config files): made under the system's temp
// directory and removed by removeTempDirs() in the file's afterAll.

import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const made: string[] = [];

/** A new empty directory, e.g. tempDir("msgbus-durable-") → /tmp/msgbus-durable-Xa3f9Q. */
export function tempDir(prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  made.push(dir);
  return dir;
}

/** Removes every directory tempDir made, whatever is in it. */
export function removeTempDirs(): void {
  for (const dir of made.splice(0)) rmSync(dir, { recursive: true, force: true });
}
