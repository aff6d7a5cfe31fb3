// Token auth shared by every transport, and the one place rights are decided: `rights(who, topic,
// need)`. Tokens come from --token (one admin on every topic) and --acl FILE (re-read on SIGHUP and
// when the file changes; a bad file keeps the rules in force). Every transport asks per command.

import { BusError, isBusError } from "../core/errors.ts";
import { globMatch } from "../core/glob.ts";
import { logFor } from "../log.ts";
import { type AclEntry, GRANTS, type Need, type Rights, parseAcl } from "./acl.ts";

export type { Need } from "./acl.ts";

const authLog = logFor("auth");

/** A client that presented a token the rules knew: the token's SHA-256, never the token. */
export interface Principal {
  readonly key: string;
  /** A short prefix of the hash, safe for logs. */
  readonly tag: string;
}

interface Rule {
  readonly digest: Uint8Array;
  readonly grants: ReadonlySet<Need>;
  readonly rights: Rights;
  readonly topics: readonly string[];
  /** Topic -> whether a glob matches it: a hot topic is matched once per rule set. */
  readonly matched: Map<string, boolean>;
}

/** The rules in force: replaced whole on a reload, so a command sees the old set or the new one. */
interface RuleSet {
  readonly byKey: ReadonlyMap<string, Rule>;
  readonly digests: readonly Uint8Array[];
}

const MEMO_LIMIT = 4096;
/** At most one line about refused tokens this often; the others are counted into the next line. */
const FAILURE_LOG_MS = 10000;
/** How often the --acl file's mtime, size and inode are looked at. */
const WATCH_MS = 500;

const VERB: Record<Need, string> = { read: "read", write: "write to", take: "take from", admin: "purge or delete" };

// Bun's own hasher and Web Crypto's timingSafeEqual rather than node:crypto, and node:fs only for
// --acl: a server loads no node:* module it does not use (each costs MBs resident; docs/BENCHMARKS.md).
function digest(token: string | Uint8Array): Uint8Array {
  return new Bun.CryptoHasher("sha256").update(token).digest();
}

/** What reading and watching the --acl file takes: node:fs, which only a server given --acl loads. */
export type AclFiles = Pick<typeof import("node:fs"), "readFileSync" | "statSync">;

export interface AuthOptions {
  /** --token: one more token, with admin rights on every topic. */
  token?: string | undefined;
  /** --acl FILE. */
  aclFile?: string | undefined;
}

export class Auth {
  /** Failed attempts since start, for /_/metrics. */
  failures = 0;
  private rules: RuleSet;
  private readonly listeners: (() => void)[] = [];
  private suppressed = 0;
  private lastLogged = 0;
  private flushTimer: ReturnType<typeof setTimeout> | undefined;
  private watchTimer: ReturnType<typeof setInterval> | undefined;
  private fileState = "";

  /** Loads node:fs when there is an --acl file, and reads it (see the constructor). */
  static async open(options: AuthOptions): Promise<Auth> {
    return new Auth(options, options.aclFile ? await import("node:fs") : undefined);
  }

  /**
   * Reads --acl now: a bad file throws (BAD_REQUEST, the line named), so `serve` exits 2. `files`
   * (node:fs) is needed with an --acl file only; Auth.open passes it.
   */
  constructor(
    private readonly options: AuthOptions,
    private readonly files?: AclFiles,
  ) {
    if (options.aclFile && !files) throw new Error("Auth: an --acl file needs node:fs (use Auth.open)");
    this.fileState = this.statFile();
    this.rules = this.build(this.readFile());
  }

  /** Whether clients must present a token at all. */
  get required(): boolean {
    return this.options.token !== undefined || this.options.aclFile !== undefined;
  }

  /** For the start-up line: none, token, or the ACL file and its token count. */
  describe(): string {
    if (!this.required) return "none (any client may do anything)";
    if (!this.options.aclFile) return "token (one admin token)";
    const n = this.rules.byKey.size - (this.options.token !== undefined ? 1 : 0);
    return `acl ${this.options.aclFile} (${n} token${n === 1 ? "" : "s"}${this.options.token !== undefined ? ", plus --token as an admin" : ""})`;
  }

  /**
   * The principal of a presented token, or undefined when no rule knows it. Constant time: the
   * token's SHA-256 is compared with every rule's, all of them, so neither which token nor its
   * length shows in the time taken.
   */
  identify(presented: string | Uint8Array | undefined | null): Principal | undefined {
    if (presented === undefined || presented === null) return undefined;
    const hash = digest(presented);
    let found = -1;
    const { digests } = this.rules;
    for (let i = 0; i < digests.length; i++) if (crypto.timingSafeEqual(hash, digests[i]!)) found = i;
    if (found < 0) return undefined;
    const key = Buffer.from(hash).toString("hex");
    return { key, tag: key.slice(0, 8) };
  }

  /** Whether `who` still holds a token the rules know (a reload may have removed it). */
  accepts(who: Principal | undefined): boolean {
    return !this.required || (who !== undefined && this.rules.byKey.has(who.key));
  }

  /**
   * The one check of every transport: throws UNAUTHORIZED when auth is on and `who` holds no
   * known token, FORBIDDEN when its rights do not include `need` on `topic`. No topic: a
   * server-wide request, which any known token may make (what it lists is filtered by `may`).
   */
  rights(who: Principal | undefined, topic: string | undefined, need: Need | undefined): void {
    if (!this.required) return;
    const rule = who && this.rules.byKey.get(who.key);
    if (!rule) throw new BusError("UNAUTHORIZED", who ? "the token is no longer accepted" : "authentication required: a token is needed");
    if (need === undefined || topic === undefined) return;
    if (!rule.grants.has(need) || !covers(rule, topic)) throw new BusError("FORBIDDEN", `this token may not ${VERB[need]} ${topic.slice(0, 128)}`);
  }

  /** `rights` as a yes or no. */
  may(who: Principal | undefined, topic: string, need: Need): boolean {
    try {
      this.rights(who, topic, need);
      return true;
    } catch {
      return false;
    }
  }

  /**
   * A refused token (a wrong one, or one a reload removed): counted, and logged at most once every
   * 10 s with the count of those in between. Never the token: only a prefix of its SHA-256.
   */
  refused(from: string, transport: string, presented: string | Uint8Array | Principal): void {
    this.failures++;
    const now = Date.now();
    if (now - this.lastLogged < FAILURE_LOG_MS) {
      this.suppressed++;
      this.flushTimer ??= setTimeout(() => this.flushFailures(), this.lastLogged + FAILURE_LOG_MS - now);
      this.flushTimer.unref?.();
      return;
    }
    this.lastLogged = now;
    const what =
      typeof presented === "object" && "key" in presented
        ? `a token no longer accepted (sha256 ${presented.tag}…)`
        : `a wrong token (sha256 ${Buffer.from(digest(presented)).toString("hex").slice(0, 8)}…)`;
    authLog.warn(`refused ${what} from ${from} over ${transport}`);
  }

  private flushFailures(): void {
    this.flushTimer = undefined;
    if (this.suppressed === 0) return;
    authLog.warn(`refused ${this.suppressed} more attempt${this.suppressed === 1 ? "" : "s"} with a wrong token in the last ${FAILURE_LOG_MS / 1000} s`);
    this.suppressed = 0;
    this.lastLogged = Date.now();
  }

  /** Called after every reload that changed the rules: transports end what the new rules forbid. */
  onChange(listener: () => void): void {
    this.listeners.push(listener);
  }

  /** Re-reads --acl (SIGHUP, a change seen). A bad file keeps the rules in force and says why. */
  reload(why: string): boolean {
    if (!this.options.aclFile) {
      authLog.info(`${why}: no --acl file to reload`);
      return false;
    }
    this.fileState = this.statFile();
    let rules: RuleSet;
    try {
      rules = this.build(this.readFile());
    } catch (error) {
      authLog.error(`${why}: ${isBusError(error) ? error.message : String(error)}; keeping the rules in force`);
      return false;
    }
    this.rules = rules;
    authLog.info(`${why}: reloaded ${this.describe()}`);
    for (const listener of this.listeners) listener();
    return true;
  }

  /** Watches --acl: reloads when its mtime, size or inode change (editors that replace the file too). */
  watch(): void {
    if (!this.options.aclFile || this.watchTimer) return;
    this.watchTimer = setInterval(() => {
      const state = this.statFile();
      if (state !== this.fileState && state !== "missing") this.reload(`${this.options.aclFile} changed`);
    }, WATCH_MS);
    this.watchTimer.unref?.();
  }

  stop(): void {
    if (this.watchTimer) clearInterval(this.watchTimer);
    this.watchTimer = undefined;
    if (this.flushTimer) clearTimeout(this.flushTimer);
    this.flushFailures();
  }

  private statFile(): string {
    if (!this.options.aclFile) return "";
    try {
      const s = this.files!.statSync(this.options.aclFile);
      return `${s.mtimeMs}:${s.size}:${s.ino}`;
    } catch {
      return "missing";
    }
  }

  private readFile(): AclEntry[] {
    const file = this.options.aclFile;
    if (!file) return [];
    let text: string;
    try {
      text = this.files!.readFileSync(file, "utf8");
    } catch (error) {
      throw new BusError("BAD_REQUEST", `--acl ${file}: cannot read it (${error instanceof Error ? error.message : String(error)})`);
    }
    return parseAcl(text, `--acl ${file}`);
  }

  private build(entries: AclEntry[]): RuleSet {
    const all = [...entries];
    if (this.options.token !== undefined) all.push({ token: this.options.token, rights: "admin", topics: ["*"], line: 0 });
    const byKey = new Map<string, Rule>();
    for (const entry of all) {
      const d = digest(entry.token);
      // --token repeating a token of the file: --token (last) makes it an admin on every topic.
      const key = Buffer.from(d).toString("hex");
      byKey.set(key, { digest: d, grants: GRANTS[entry.rights], rights: entry.rights, topics: entry.topics, matched: new Map() });
    }
    return { byKey, digests: [...byKey.values()].map((r) => r.digest) };
  }
}

function covers(rule: Rule, topic: string): boolean {
  let hit = rule.matched.get(topic);
  if (hit === undefined) {
    hit = rule.topics.some((glob) => globMatch(glob, topic));
    if (rule.matched.size >= MEMO_LIMIT) rule.matched.clear();
    rule.matched.set(topic, hit);
  }
  return hit;
}
