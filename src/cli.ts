#!/usr/bin/env bun
// The msgbus entry point: one binary, server and client. Subcommands load lazily so that
// `--help` and small commands start fast.

// citty decides on colours once, when it loads, from NO_COLOR/TERM/CI alone: help piped into a file
// or a pager must be plain text. The environment is put back for the handlers `on` and `sub` run.
export {}; // a module, so that it may await at the top level
if (process.argv[2] === "serve") (await import("./early-signals.ts")).catchStopSignals();
const noColor = process.env.NO_COLOR;
if (!process.stdout.isTTY || noColor) process.env.NO_COLOR = "1";
const { defineCommand, renderUsage, runCommand, runMain } = await import("citty");
if (noColor === undefined) delete process.env.NO_COLOR;
else process.env.NO_COLOR = noColor;

// build.ts defines both: --version prints e.g. "0.1.0 (commit 4d03afe1c2b3, built 2025-11-30T13:20:00Z, linux-x64)",
// the version first so that `msgbus --version | cut -d' ' -f1` is the bare version. A constant after minifying.
declare const MSGBUS_VERSION: string | undefined;
declare const MSGBUS_BUILD: string | undefined;
const version = (typeof MSGBUS_VERSION === "string" ? MSGBUS_VERSION : "0.0.0-dev") + (typeof MSGBUS_BUILD === "string" ? ` (${MSGBUS_BUILD})` : "");

const main = defineCommand({
  meta: {
    name: "msgbus",
    version,
    description: "A message bus server and command-line client in one binary",
  },
  // Each subcommand refuses flags it does not declare (src/commands/_flags.ts).
  subCommands: {
    serve: () => strict(import("./commands/serve.ts")),
    put: () => strict(import("./commands/put.ts")),
    get: () => strict(import("./commands/get.ts")),
    on: () => strict(import("./commands/on.ts")),
    pub: () => strict(import("./commands/pub.ts")),
    sub: () => strict(import("./commands/sub.ts")),
    ack: () => strict(import("./commands/ack.ts")),
    nack: () => strict(import("./commands/nack.ts")),
  },
});

// biome-ignore lint/suspicious/noExplicitAny: each command declares its own argument types
type Loaded = { default: import("citty").CommandDef<any>; normalizeArgs?: (rawArgs: string[]) => string[] };
async function strict(loading: Promise<Loaded>) {
  const [module, { withStrictFlags }] = await Promise.all([loading, import("./commands/_flags.ts")]);
  return withStrictFlags(module.default, module.normalizeArgs);
}

const rawArgs = process.argv.slice(2);
const dashes = rawArgs.indexOf("--");
const ownArgs = dashes < 0 ? rawArgs : rawArgs.slice(0, dashes);
const asksForHelp = ownArgs.some((a) => a === "--help" || a === "-h");

if (ownArgs.length === 0) {
  // A bare `msgbus` (or `msgbus -- …`) is a usage error: the usage goes to stderr, so a script that forgot its
  // subcommand fails (exit 2) rather than carrying on with help text on stdout.
  process.stderr.write((await renderUsage(main)) + "\n");
  process.exit(2);
} else if (rawArgs[0]!.startsWith("-") && !["--help", "-h", "--version", "-v"].includes(rawArgs[0]!)) {
  process.stderr.write(`msgbus: unknown option ${rawArgs[0]} (the command comes first: msgbus <command> [options]; see msgbus --help)\n`);
  process.exit(2);
} else if (asksForHelp || (ownArgs.length === 1 && (ownArgs[0] === "--version" || ownArgs[0] === "-v"))) {
  runMain(main, { rawArgs: ownArgs }); // usage and version, citty's way (what follows `--` is a handler's)
} else {
  // Not runMain: it would take a handler's own `--help` (after `--`) as ours, and it exits 1 on a
  // usage error where our exit-code table says 2.
  runCommand(main, { rawArgs }).catch((error: unknown) => {
    if (error instanceof Error && error.name === "CLIError") {
      // biome-ignore lint/suspicious/noControlCharactersInRegex: strips the colour codes citty adds
      process.stderr.write(`msgbus: ${error.message.replace(/\x1b\[[0-9;]*m/g, "")} (see msgbus --help)\n`);
      process.exit(2);
    }
    import("./commands/_exit.ts").then(({ fail }) => fail(error));
  });
}
