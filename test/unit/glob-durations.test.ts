// The glob matcher (linear, never a RegExp), the duration ceilings and the long timer.

import { describe, expect, test } from "bun:test";
import { globMatch } from "../../src/core/glob.ts";
import { checkDelay, checkLease, checkWait, MAX_LEASE_MS, MAX_WAIT_MS } from "../../src/core/durations.ts";
import { setLongTimeout } from "../../src/long-timeout.ts";
import { parseDuration } from "../../src/config.ts";

describe("globMatch", () => {
  test.each([
    ["*", "", true],
    ["*", "anything", true],
    ["", "", true],
    ["", "a", false],
    ["sensors.*", "sensors.kitchen", true],
    ["sensors.*", "sensors", false],
    ["sensors.*", "sensorsX", false],
    ["a?c", "abc", true],
    ["a?c", "ac", false],
    ["*max*", "proto-max-bulk-len", true],
    ["*len", "proto-max-bulk-len", true],
    ["*len", "proto-max-bulk-lenx", false],
    ["a*b*c", "aXbYc", true],
    ["a*b*c", "aXbY", false],
    ["**a**", "xxaxx", true],
    ["jobs", "jobs", true],
    ["jobs", "jobs.dead", false],
    ["[a]", "[a]", true], // no character classes: brackets are literal
    [".*", "ab", false], // a dot is a dot
    [".*", ".ab", true],
  ])("%p matches %p: %p", (pattern, text, expected) => {
    expect(globMatch(pattern as string, text as string)).toBe(expected as boolean);
  });

  test("case is ignored when asked", () => {
    expect(globMatch("MAX*", "maxclients", true)).toBe(true);
    expect(globMatch("MAX*", "maxclients")).toBe(false);
  });

  test("a pattern built to make a backtracking RegExp explode answers at once", () => {
    const started = performance.now();
    expect(globMatch("*".repeat(30) + "#", "proto-max-bulk-len".repeat(20))).toBe(false);
    expect(globMatch("a*".repeat(2000) + "b", "a".repeat(5000))).toBe(false);
    expect(performance.now() - started).toBeLessThan(2000);
  });
});

describe("duration ceilings", () => {
  test("leases: at least 1 ms, at most 12h; infinity, NaN and negatives refused", () => {
    expect(checkLease(0)).toBe(1);
    expect(checkLease(MAX_LEASE_MS)).toBe(MAX_LEASE_MS);
    for (const bad of [MAX_LEASE_MS + 1, Infinity, NaN, -1]) expect(() => checkLease(bad)).toThrow(/lease/);
  });

  test("delays: 0 to 12h", () => {
    expect(checkDelay(0)).toBe(0);
    expect(() => checkDelay(Infinity)).toThrow(/delay/);
    expect(() => checkDelay(13 * 3600000)).toThrow(/maximum of 12h/);
  });

  test("waits: 0 (forever) to 365 days; 25 days is fine", () => {
    expect(checkWait(0)).toBe(0);
    expect(checkWait(25 * 86400000)).toBe(25 * 86400000);
    expect(() => checkWait(MAX_WAIT_MS + 1)).toThrow(/365d/);
  });
});

describe("parseDuration", () => {
  test("a tiny positive duration is 1 ms, never 0 (which means forever to a wait)", () => {
    expect(parseDuration("0.0004")).toBe(1);
    expect(parseDuration("0.1ms")).toBe(1);
    expect(parseDuration("0")).toBe(0);
  });

  test("a duration too large to count exactly is not a duration", () => {
    expect(parseDuration("9".repeat(400))).toBeUndefined();
    expect(parseDuration("99999999999999999d")).toBeUndefined();
    expect(parseDuration("99999999999")).toBe(99999999999000);
  });
});

describe("setLongTimeout", () => {
  test("a short timer fires once; a cleared one never does", async () => {
    let fired = 0;
    setLongTimeout(() => fired++, 5);
    const cleared = setLongTimeout(() => fired++, 5);
    cleared.clear();
    await Bun.sleep(40);
    expect(fired).toBe(1);
  });

  test("a timer longer than 2^31-1 ms does not fire early", async () => {
    let fired = false;
    const timer = setLongTimeout(() => (fired = true), 2 ** 31 + 1000);
    await Bun.sleep(30);
    expect(fired).toBe(false);
    timer.clear();
  });
});
