// Blocks of the project's documentation, for tests that run what the docs say (the --acl example,
// the supervisord program block, the pm2 ecosystem file), so that docs and tests cannot drift apart.

import { readFileSync } from "node:fs";
import { join } from "node:path";

const ROOT = join(import.meta.dir, "..", "..");

/** The text of a file of the repository (README.md, docs/…). */
export function repoFile(path: string): string {
  return readFileSync(join(ROOT, path), "utf8");
}

/** The fenced block (```lang … ```) of `file` whose first line starts with `firstLine`; throws when there is none. */
export function fencedBlock(file: string, lang: string, firstLine: string): string {
  const blocks = [...repoFile(file).matchAll(/^```(\w*)\n([\s\S]*?)^```$/gm)];
  const found = blocks.find(([, l, body]) => l === lang && body!.startsWith(firstLine));
  if (!found) throw new Error(`${file} has no \`\`\`${lang} block starting with ${JSON.stringify(firstLine)}`);
  return found[2]!;
}
