// Configuration: flags > MSGBUS_* > beuss's BHOST/BPORT/BMAXMESSAGESIZE > defaults, the size and
// duration syntaxes, and errors that name the flag or variable at fault.

import { describe, expect, test } from "bun:test";
import { BusError } from "../../src/core/errors.ts";
import { DEFAULT_LIMITS } from "../../src/core/limits.ts";
import {
  busLimits,
  clientUrl,
  durationText,
  parseDuration,
  parseSize,
  resolveConfig,
  SETTINGS,
  settingArgs,
  sizeText,
  type Environment,
  type Flags,
} from "../../src/config.ts";

function configError(flags: Flags, env: Environment): BusError {
  let thrown: unknown;
  try {
    resolveConfig(flags, env);
  } catch (e) {
    thrown = e;
  }
  if (thrown === undefined) throw new Error(`expected a BAD_REQUEST for ${JSON.stringify({ flags, env })}`);
  expect(thrown).toBeInstanceOf(BusError);
  expect((thrown as BusError).code).toBe("BAD_REQUEST");
  return thrown as BusError;
}

describe("defaults", () => {
  test("with no flags and no environment every setting has its documented default", () => {
    expect(resolveConfig({}, {})).toEqual({
      host: "127.0.0.1",
      port: 6552,
      httpPort: 6553,
      url: undefined,
      token: undefined,
      acl: undefined,
      data: undefined,
      redis: undefined,
      redisPrefix: "msgbus:",
      redisPassword: undefined,
      fsync: "process",
      maxMessageSize: 1048576,
      maxQueue: 100000,
      maxQueueBytes: 64 * 1048576,
      maxMemory: 256 * 1048576,
      overflow: "drop-oldest",
      maxAge: 0,
      maxTopics: 10000,
      leaseTime: 30000,
      maxDeliveries: 5,
      sendBuffer: 8 * 1048576,
      maxInput: 64 * 1048576,
      inputTimeout: 30000,
      maxConnections: 10000,
      allowOrigin: "*",
      tlsCert: undefined,
      tlsKey: undefined,
      cacert: undefined,
      insecure: false,
      console: true,
      logLevel: "info",
      logFormat: "text",
    });
  });

  test("the bus's limits default to the engine's own defaults, shown as a user writes them", () => {
    const config = resolveConfig({}, {});
    expect(busLimits(config)).toEqual({ ...DEFAULT_LIMITS, maxTombstones: undefined } as never);
    const help = settingArgs("server");
    expect(help["max-queue-bytes"]!.description).toEndWith("; default 64MiB)");
    expect(help["lease-time"]!.description).toEndWith("; default 30s)");
    expect(help["max-message-size"]!.description).toEndWith("; default 1048576)");
  });

  test("sizes and durations written for --help read back as the same number", () => {
    for (const bytes of [0, 1, 1000, 1024, 1048576, 64 * 1048576, 3 * 1073741824, 1048577]) expect(parseSize(sizeText(bytes))).toBe(bytes);
    for (const ms of [0, 1, 999, 1000, 30000, 90000, 3600000, 86400000, 1500]) expect(parseDuration(durationText(ms))).toBe(ms);
    expect([sizeText(64 * 1048576), sizeText(1536), durationText(30000), durationText(0), durationText(1500)]).toEqual(["64MiB", "1536", "30s", "0", "1500ms"]);
  });

  test("without an env argument it reads process.env", () => {
    const before = process.env.MSGBUS_LOG_FORMAT;
    process.env.MSGBUS_LOG_FORMAT = "json";
    try {
      expect(resolveConfig({}).logFormat).toBe("json");
    } finally {
      if (before === undefined) delete process.env.MSGBUS_LOG_FORMAT;
      else process.env.MSGBUS_LOG_FORMAT = before;
    }
  });
});

describe("precedence", () => {
  test("a flag beats MSGBUS_*, which beats the beuss variable, which beats the default", () => {
    const all = { MSGBUS_HOST: "10.0.0.2", BHOST: "10.0.0.3" };
    expect(resolveConfig({ host: "10.0.0.1" }, all).host).toBe("10.0.0.1");
    expect(resolveConfig({}, all).host).toBe("10.0.0.2");
    expect(resolveConfig({}, { BHOST: "10.0.0.3" }).host).toBe("10.0.0.3");
    expect(resolveConfig({}, {}).host).toBe("127.0.0.1");
  });

  test("the port follows the same order: --port, MSGBUS_PORT, BPORT, 6552", () => {
    const all = { MSGBUS_PORT: "7001", BPORT: "7002" };
    expect(resolveConfig({ port: "7000" }, all).port).toBe(7000);
    expect(resolveConfig({}, all).port).toBe(7001);
    expect(resolveConfig({}, { BPORT: "7002" }).port).toBe(7002);
  });

  test("the maximum message size follows the same order, down to BMAXMESSAGESIZE", () => {
    const all = { MSGBUS_MAX_MESSAGE_SIZE: "2KiB", BMAXMESSAGESIZE: "3072" };
    expect(resolveConfig({ "max-message-size": "1KiB" }, all).maxMessageSize).toBe(1024);
    expect(resolveConfig({}, all).maxMessageSize).toBe(2048);
    expect(resolveConfig({}, { BMAXMESSAGESIZE: "3072" }).maxMessageSize).toBe(3072);
  });

  test("an empty flag or variable counts as not given", () => {
    expect(resolveConfig({ port: "" }, { MSGBUS_PORT: "", BPORT: "7002" }).port).toBe(7002);
    expect(resolveConfig({ host: "" }, { MSGBUS_HOST: "" }).host).toBe("127.0.0.1");
  });

  test("a bad value at a lower level does not matter when a higher level is given", () => {
    expect(resolveConfig({ port: "7000" }, { MSGBUS_PORT: "nonsense", BPORT: "worse" }).port).toBe(7000);
  });

  test("flags are read by their kebab-case name and by citty's camelCase key", () => {
    const kebab = resolveConfig({ "max-message-size": "2KiB", "http-port": "8000", "lease-time": "5s" }, {});
    const camel = resolveConfig({ maxMessageSize: "2KiB", httpPort: "8000", leaseTime: "5s" }, {});
    expect([kebab.maxMessageSize, kebab.httpPort, kebab.leaseTime]).toEqual([2048, 8000, 5000]);
    expect([camel.maxMessageSize, camel.httpPort, camel.leaseTime]).toEqual([2048, 8000, 5000]);
  });

  test("a flag given as a number rather than a string is read too", () => {
    expect(resolveConfig({ port: 7100, "max-queue": 5 }, {})).toMatchObject({ port: 7100, maxQueue: 5 });
  });

  test("the fixed names of the spec are the ones read", () => {
    const config = resolveConfig(
      {},
      {
        MSGBUS_HTTP_PORT: "1",
        MSGBUS_URL: "ws://example:1",
        MSGBUS_TOKEN: "secret",
        MSGBUS_DATA: "/var/lib/msgbus",
        MSGBUS_MAX_QUEUE: "9",
        MSGBUS_OVERFLOW: "reject",
        MSGBUS_TLS_CERT: "cert.pem",
        MSGBUS_TLS_KEY: "key.pem",
      },
    );
    expect(config).toMatchObject({
      httpPort: 1,
      url: "ws://example:1",
      token: "secret",
      data: "/var/lib/msgbus",
      maxQueue: 9,
      overflow: "reject",
      tlsCert: "cert.pem",
      tlsKey: "key.pem",
    });
  });
});

describe("sizes", () => {
  test.each([
    ["1048576", 1048576],
    ["64KiB", 65536],
    ["1MiB", 1048576],
    ["2GB", 2_000_000_000],
    ["2GiB", 2 * 1073741824],
    ["1k", 1024],
    ["1kb", 1000],
    ["1KB", 1000],
    ["10b", 10],
    ["1.5MiB", 1572864],
    [" 2 MiB ", 2 * 1048576],
    ["0", 0],
  ])("%p is %p bytes", (text, bytes) => {
    expect(parseSize(text)).toBe(bytes);
    expect(resolveConfig({ "max-message-size": text }, {}).maxMessageSize).toBe(bytes);
  });

  test.each(["", "MiB", "-1", "1XB", "1 2", "1.2.3", "abc", "1e3", "0x10", "1MiBs"])("%p is not a size", (text) => {
    expect(parseSize(text)).toBeUndefined();
  });
});

describe("durations", () => {
  test.each([
    ["500ms", 500],
    ["30s", 30_000],
    ["5m", 300_000],
    ["1h", 3_600_000],
    ["2d", 172_800_000],
    ["10", 10_000],
    ["1.5s", 1500],
    ["0", 0],
    [" 30 s ", 30_000],
  ])("%p is %p ms", (text, ms) => {
    expect(parseDuration(text)).toBe(ms);
    expect(resolveConfig({ "lease-time": text }, {}).leaseTime).toBe(ms);
  });

  test.each(["", "s", "-1s", "5x", "1 minute", "1ms5", "5M", "PT5S"])("%p is not a duration", (text) => {
    expect(parseDuration(text)).toBeUndefined();
  });
});

describe("bad values", () => {
  test("a bad flag is BAD_REQUEST naming the flag and the value", () => {
    const error = configError({ port: "abc" }, {});
    expect(error.message).toContain("--port");
    expect(error.message).toContain('"abc"');
  });

  test("a bad MSGBUS_* variable is BAD_REQUEST naming the variable", () => {
    expect(configError({}, { MSGBUS_PORT: "99999" }).message).toContain("MSGBUS_PORT");
    expect(configError({}, { MSGBUS_MAX_AGE: "forever" }).message).toContain("MSGBUS_MAX_AGE");
  });

  test("a bad beuss variable is BAD_REQUEST naming that variable", () => {
    expect(configError({}, { BPORT: "http" }).message).toContain("BPORT");
    expect(configError({}, { BMAXMESSAGESIZE: "big" }).message).toContain("BMAXMESSAGESIZE");
  });

  test("each kind of setting names its flag when the value is bad", () => {
    const cases: [Flags, string][] = [
      [{ "http-port": "-1" }, "--http-port"],
      [{ "max-message-size": "1XB" }, "--max-message-size"],
      [{ "max-queue": "0" }, "--max-queue"],
      [{ maxQueue: "1.5" }, "--max-queue"],
      [{ overflow: "drop" }, "--overflow"],
      [{ "max-age": "5 minutes" }, "--max-age"],
      [{ "log-level": "verbose" }, "--log-level"],
      [{ fsync: "never" }, "--fsync"],
    ];
    for (const [flags, name] of cases) expect(configError(flags, {}).message).toContain(name);
  });

  test("a choice error lists the allowed values", () => {
    expect(configError({ overflow: "drop" }, {}).message).toContain("drop-oldest, reject");
  });

  test.each(["0", "1", "65535"])("port %p is accepted", (port) => {
    expect(resolveConfig({ port }, {}).port).toBe(Number(port));
  });

  test.each(["65536", "-1", "80.5", "0x50", "1e3", "http", " ", "6552 6553"])("port %p is refused", (port) => {
    expect(configError({}, { MSGBUS_PORT: port }).message).toContain("MSGBUS_PORT");
  });

  test.each(["0", "-3", "2.5", "0x10", "1e3", " ", "ten"])("count %p is refused", (count) => {
    expect(configError({}, { MSGBUS_MAX_QUEUE: count }).message).toContain("MSGBUS_MAX_QUEUE");
  });
});

describe("client address and command-line arguments", () => {
  test("clientUrl is --url when given, else tcp://host:port with IPv6 hosts in brackets", () => {
    expect(clientUrl(resolveConfig({ url: "https://bus.example" }, {}))).toBe("https://bus.example");
    expect(clientUrl(resolveConfig({}, {}))).toBe("tcp://127.0.0.1:6552");
    expect(clientUrl(resolveConfig({}, { BHOST: "pi.local", BPORT: "7000" }))).toBe("tcp://pi.local:7000");
    expect(clientUrl(resolveConfig({ host: "::1" }, {}))).toBe("tcp://[::1]:6552");
  });

  test("settingArgs gives each side only the settings it reads, described with their variables", () => {
    const server = settingArgs("server");
    const client = settingArgs("client");
    expect(Object.keys(server)).toContain("max-queue");
    expect(Object.keys(server)).toContain("host");
    expect(Object.keys(server)).not.toContain("url");
    expect(Object.keys(client)).toContain("url");
    expect(Object.keys(client)).toContain("token");
    expect(Object.keys(client)).not.toContain("data");
    expect(server.port!.description).toContain("MSGBUS_PORT");
    expect(server.port!.description).toContain("BPORT");
    expect(server.port!.description).toContain("6552");
    expect(server["max-queue"]!.type).toBe("string");
  });

  test("every setting has a unique flag, key and MSGBUS_ variable", () => {
    for (const field of ["flag", "key", "env"] as const) {
      const values = SETTINGS.map((s) => s[field]);
      expect(new Set(values).size).toBe(values.length);
    }
    for (const s of SETTINGS) expect(s.env.startsWith("MSGBUS_")).toBe(true);
  });
});
