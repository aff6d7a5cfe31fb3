// The --acl file: `TOKEN RIGHTS TOPIC-GLOB…` per line, `#` comments, blank lines. Parsed here as a
// pure function over the text (no file, no logging), so that a bad line is named by its number.

import { BusError } from "../core/errors.ts";

/** What a request needs: read (subscribe, peek, stats), write, take (take, lease, ack, nack, touch), admin (purge, delete). */
export type Need = "read" | "write" | "take" | "admin";

/** The rights a line grants, as written in the file. */
export type Rights = "r" | "w" | "rw" | "admin";

/** Each right and what it allows: rw also takes; admin does everything. */
export const GRANTS: Record<Rights, ReadonlySet<Need>> = {
  r: new Set(["read"]),
  w: new Set(["write"]),
  rw: new Set(["read", "write", "take"]),
  admin: new Set(["read", "write", "take", "admin"]),
};

export interface AclEntry {
  token: string;
  rights: Rights;
  /** Topic globs (`*` any run of characters), matched with core/glob.ts. */
  topics: string[];
  /** 1-based, for messages. */
  line: number;
}

/** Characters of a topic name, plus the glob's `*` and `?`. */
const TOPIC_GLOB = /^[A-Za-z0-9._:\-*?]{1,128}$/;

/** Parses an ACL file's text; a bad line throws BAD_REQUEST naming `source` and the line number. */
export function parseAcl(text: string, source: string): AclEntry[] {
  const entries: AclEntry[] = [];
  const seen = new Map<string, number>();
  const lines = text.split(/\r?\n/);
  for (let i = 0; i < lines.length; i++) {
    const line = i + 1;
    const bad = (why: string) => new BusError("BAD_REQUEST", `${source} line ${line}: ${why}`);
    // A comment starts at a `#` that opens the line or follows a space.
    const fields = lines[i]!.replace(/(^|\s)#.*$/, "")
      .trim()
      .split(/\s+/)
      .filter(Boolean);
    if (fields.length === 0) continue;
    const [token, rights, ...topics] = fields as [string, string | undefined, ...string[]];
    if (rights === undefined || topics.length === 0) throw bad("expected TOKEN RIGHTS TOPIC-GLOB… (e.g. sensor-k3y w sensors.*)");
    if (!(rights in GRANTS)) throw bad(`unknown rights '${rights.slice(0, 32)}' (expected r, w, rw or admin)`);
    for (const topic of topics) {
      if (!TOPIC_GLOB.test(topic)) throw bad(`'${topic.slice(0, 64)}' is not a topic or a glob (characters A-Z a-z 0-9 . _ - : and *)`);
    }
    const before = seen.get(token);
    if (before !== undefined) throw bad(`the token of line ${before} again: one line per token`);
    seen.set(token, line);
    entries.push({ token, rights: rights as Rights, topics, line });
  }
  if (entries.length === 0) throw new BusError("BAD_REQUEST", `${source}: no token lines (TOKEN RIGHTS TOPIC-GLOB…): every client would be refused`);
  return entries;
}
