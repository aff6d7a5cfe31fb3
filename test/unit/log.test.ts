// The one logger: an area's logger made at import time follows configureLog made later, and
// --log-format json writes one object per line with the area.

import { afterEach, expect, test } from "bun:test";
import { configureLog, logFor } from "../../src/log.ts";

const area = logFor("unit-area"); // as a module does at import time, before any configuration
const written: string[] = [];
const write = console.error;

/** The lines written to stderr while `run` runs (src/log.ts writes each with console.error("%s", line)). */
function capture(run: () => void): string[] {
  written.length = 0;
  console.error = (format: string, ...args: unknown[]) => {
    expect(format).toBe("%s");
    written.push(`${String(args[0])}\n`);
  };
  try {
    run();
  } finally {
    console.error = write;
  }
  return [...written];
}

afterEach(() => configureLog("info", "text"));

test("a logger made before configureLog follows its level and format", () => {
  const lines = capture(() => {
    configureLog("warn", "json");
    area.info("quiet");
    area.warn("loud", 42);
  });
  expect(lines).toHaveLength(1);
  expect(JSON.parse(lines[0]!)).toMatchObject({ level: "warn", area: "unit-area", msg: "loud", detail: [42] });
});

test("text lines carry the area as a tag", () => {
  const lines = capture(() => {
    configureLog("debug", "text");
    area.debug("details here");
  });
  expect(lines).toHaveLength(1);
  expect(lines[0]).toMatch(/ DEBUG \[unit-area\] details here\n$/);
});
