// The --acl file's parser and the one rights() check, in-process: what each right allows, globs,
// tokens compared whole, reloads that keep the old rules when the new file is bad.

import { describe, expect, test } from "bun:test";
import * as fs from "node:fs";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { BusError } from "../../src/core/errors.ts";
import { parseAcl } from "../../src/server/acl.ts";
import { Auth, type Need } from "../../src/server/auth.ts";

const EXAMPLE = `# token        rights   topics (glob: * matches any characters)
s3cret-admin   admin    *
sensor-k3y     w        sensors.*   # a trailing comment
dash-k3y       r        sensors.* jobs.dead

worker-k3y     rw       jobs jobs.dead
`;

function codeOf(f: () => void): string | undefined {
  try {
    f();
    return undefined;
  } catch (error) {
    return (error as BusError).code;
  }
}

function authWith(text: string, token?: string): { auth: Auth; file: string } {
  const file = join(mkdtempSync(join(tmpdir(), "msgbus-acl-unit-")), "acl");
  writeFileSync(file, text);
  return { auth: new Auth({ aclFile: file, token }, fs), file };
}

describe("parseAcl", () => {
  test("reads tokens, rights and globs, skipping comments and blank lines", () => {
    expect(parseAcl(EXAMPLE, "f").map((e) => [e.token, e.rights, e.topics, e.line])).toEqual([
      ["s3cret-admin", "admin", ["*"], 2],
      ["sensor-k3y", "w", ["sensors.*"], 3],
      ["dash-k3y", "r", ["sensors.*", "jobs.dead"], 4],
      ["worker-k3y", "rw", ["jobs", "jobs.dead"], 6],
    ]);
  });

  test("a bad line is a BAD_REQUEST naming the source and the line number", () => {
    for (const [text, message] of [
      ["a r\n", "f line 1: expected TOKEN RIGHTS TOPIC-GLOB… (e.g. sensor-k3y w sensors.*)"],
      ["\n\na x jobs", "f line 3: unknown rights 'x' (expected r, w, rw or admin)"],
      ["a r jobs$\n", "f line 1: 'jobs$' is not a topic or a glob (characters A-Z a-z 0-9 . _ - : and *)"],
      ["a r x\nb w y\na w z\n", "f line 3: the token of line 1 again: one line per token"],
      ["# only\n", "f: no token lines (TOKEN RIGHTS TOPIC-GLOB…): every client would be refused"],
    ]) {
      expect(() => parseAcl(text!, "f")).toThrow(new BusError("BAD_REQUEST", message!));
    }
  });
});

describe("Auth.rights", () => {
  const { auth } = authWith(EXAMPLE);
  const who = (token: string) => auth.identify(token);
  const may = (token: string, topic: string, need: Need) => auth.may(who(token), topic, need);

  test("r reads, w writes, rw also takes, admin also purges and deletes, each on its topics only", () => {
    const table: [string, string, Record<Need, boolean>][] = [
      ["sensor-k3y", "sensors.kitchen", { read: false, write: true, take: false, admin: false }],
      ["sensor-k3y", "jobs", { read: false, write: false, take: false, admin: false }],
      ["dash-k3y", "sensors.kitchen", { read: true, write: false, take: false, admin: false }],
      ["dash-k3y", "jobs.dead", { read: true, write: false, take: false, admin: false }],
      ["dash-k3y", "jobs", { read: false, write: false, take: false, admin: false }],
      ["worker-k3y", "jobs", { read: true, write: true, take: true, admin: false }],
      ["worker-k3y", "jobs.dead", { read: true, write: true, take: true, admin: false }],
      ["worker-k3y", "jobs.other", { read: false, write: false, take: false, admin: false }],
      ["s3cret-admin", "anything", { read: true, write: true, take: true, admin: true }],
    ];
    for (const [token, topic, rights] of table) {
      for (const need of Object.keys(rights) as Need[]) expect([token, topic, need, may(token, topic, need)]).toEqual([token, topic, need, rights[need]]);
    }
  });

  test("a glob does not match a longer name by prefix: sensors.* is not sensors (the dot is needed)", () => {
    expect(may("sensor-k3y", "sensors", "write")).toBe(false);
    expect(may("sensor-k3y", "sensors.", "write")).toBe(true);
  });

  test("no token or an unknown one is UNAUTHORIZED; a known one outside its rights FORBIDDEN", () => {
    expect(codeOf(() => auth.rights(undefined, "jobs", "read"))).toBe("UNAUTHORIZED");
    expect(auth.identify("worker-k3")).toBeUndefined();
    expect(auth.identify("worker-k3y ")).toBeUndefined();
    expect(codeOf(() => auth.rights(who("dash-k3y"), "jobs", "read"))).toBe("FORBIDDEN");
    expect(codeOf(() => auth.rights(who("dash-k3y"), undefined, undefined))).toBeUndefined();
  });

  test("without --token or --acl everything is allowed; --token alone is an admin on every topic", () => {
    expect(new Auth({}).required).toBe(false);
    expect(codeOf(() => new Auth({}).rights(undefined, "jobs", "admin"))).toBeUndefined();
    const one = new Auth({ token: "s3cret" });
    expect(one.may(one.identify("s3cret"), "jobs", "admin")).toBe(true);
    expect(one.identify("s3cre")).toBeUndefined();
  });

  test("a reload replaces the rules; a bad file keeps them", () => {
    const { auth: reloading, file } = authWith(EXAMPLE);
    const dash = reloading.identify("dash-k3y");
    writeFileSync(file, "dash-k3y rw jobs\n");
    expect(reloading.reload("test")).toBe(true);
    expect(reloading.may(dash, "jobs", "take")).toBe(true);
    expect(reloading.may(dash, "sensors.a", "read")).toBe(false);
    expect(reloading.accepts(reloading.identify("worker-k3y"))).toBe(false);
    writeFileSync(file, "dash-k3y rw\n");
    expect(reloading.reload("test")).toBe(false);
    expect(reloading.may(dash, "jobs", "take")).toBe(true);
  });
});
