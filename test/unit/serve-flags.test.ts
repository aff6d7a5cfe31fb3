// serve's start-up fast path (src/cli.ts, commands/_serve.ts): the flags it parses without citty
// give the configuration citty's parse gives, and anything it does not know is left to citty.

import { describe, expect, test } from "bun:test";
import { parseArgs } from "citty";
import { serverArgs } from "../../src/commands/_args.ts";
import { plainServeFlags } from "../../src/commands/_serve.ts";
import { resolveConfig } from "../../src/config.ts";

/** The configuration citty's parse of `args` gives (what `serve` resolves), with no environment. */
const viaCitty = (args: string[]) => resolveConfig(parseArgs(args, serverArgs), {});

describe("plainServeFlags", () => {
  test("plain setting flags give the configuration citty gives", () => {
    for (const args of [
      [],
      ["--port", "7000"],
      ["--port=7000", "--http-port", "0", "--host", "0.0.0.0"],
      ["--data", "/var/lib/msgbus", "--fsync", "always", "--max-queue", "10", "--max-memory", "1GiB"],
      ["--no-console", "--log-level", "warn", "--log-format=json"],
      ["--console", "--token", "s3cret", "--acl", "/etc/msgbus.acl", "--max-age=5m"],
      ["--redis", "redis://127.0.0.1:6379/2", "--redis-prefix", "a:", "--tls-cert", "c.pem", "--tls-key", "k.pem"],
      ["--allow-origin", "https://app.example", "--send-buffer", "1MiB", "--max-input=2MiB", "--input-timeout", "0"],
    ]) {
      const flags = plainServeFlags(args);
      expect(flags).toBeDefined();
      expect({ args, config: resolveConfig(flags, {}) }).toEqual({ args, config: viaCitty(args) });
    }
  });

  test("anything else is left to citty (which parses, checks and explains it)", () => {
    for (const args of [
      ["--help"],
      ["-h"],
      ["-p", "7000"],
      ["--prot", "7000"], // a typo: citty's strict check names it
      ["--httpPort", "7000"], // camelCase: citty's to map
      ["--port", "7000", "--port", "7001"],
      ["--port"],
      ["--port", "--data", "x"],
      ["--token", "-abc"],
      ["--token="],
      ["--console=false"],
      ["--no-port"],
      ["--url", "tcp://x:1"], // a client setting
      ["--insecure"],
      ["extra"],
      ["--", "--port", "7000"],
    ]) {
      expect({ args, flags: plainServeFlags(args) }).toEqual({ args, flags: undefined });
    }
  });
});
