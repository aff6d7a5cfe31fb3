#!/usr/bin/env bun
// The msgbus entry point: one binary, server and client. Subcommands load lazily so that
// `--help` and small commands start fast.

export {}; // a module, so that it may await at the top level
// build.ts defines both: --version prints e.g. "0.1.0 (commit 4d03afe1c2b3, built 2025-11-30T13:20:00Z, linux-x64)",
// the version first so that `msgbus --version | cut -d' ' -f1` is the bare version. A constant after minifying.
declare const MSGBUS_VERSION: string | undefined;
declare const MSGBUS_BUILD: string | undefined;
const version = (typeof MSGBUS_VERSION === "string" ? MSGBUS_VERSION : "0.0.0-dev") + (typeof MSGBUS_BUILD === "string" ? ` (${MSGBUS_BUILD})` : "");

// biome-ignore lint/suspicious/noExplicitAny: each command declares its own argument types
type Command = import("citty").CommandDef<any>;
type Loaded = { default: Command; normalizeArgs?: (rawArgs: string[]) => string[] };

/**
 * Every command, loaded lazily: the one list the citty table, the fast paths and shell completion
 * read. Each refuses flags it does not declare (src/commands/_flags.ts).
 */
const COMMANDS: Record<string, () => Promise<Command>> = {
  serve: () => strict(import("./commands/serve.ts")),
  put: () => strict(import("./commands/put.ts")),
  get: () => strict(import("./commands/get.ts")),
  on: () => strict(import("./commands/on.ts")),
  pub: () => strict(import("./commands/pub.ts")),
  sub: () => strict(import("./commands/sub.ts")),
  ack: () => strict(import("./commands/ack.ts")),
  nack: () => strict(import("./commands/nack.ts")),
  pull: () => strict(import("./commands/get.ts")).then(hidden), // prologic's msgbus name for get
  topics: () => strict(import("./commands/topics.ts")),
  stats: () => strict(import("./commands/stats.ts")),
  peek: () => strict(import("./commands/peek.ts")),
  purge: () => strict(import("./commands/purge.ts")),
  rm: () => strict(import("./commands/rm.ts")),
  ping: () => strict(import("./commands/ping.ts")),
  top: () => strict(import("./commands/top.ts")),
  completion: () => strict(import("./commands/completion.ts").then((m) => ({ default: m.completionCommand(main!) }))),
  bench: () => strict(import("./commands/bench.ts")),
};
let main: Command | undefined;

async function strict(loading: Promise<Loaded>): Promise<Command> {
  const [module, { withStrictFlags }] = await Promise.all([loading, import("./commands/_flags.ts")]);
  return withStrictFlags(module.default, module.normalizeArgs);
}

/** An alias: it works, and help lists it beside its command (get's meta names pull) rather than as a line of its own. */
function hidden<T extends { meta?: unknown }>(command: T): T {
  return { ...command, meta: { ...(command.meta as object), hidden: true } };
}

const rawArgs = process.argv.slice(2);
// beuss's upper-case commands (PUT, GET, ON) work: every command name is case-insensitive.
if (rawArgs[0] && !(rawArgs[0] in COMMANDS) && rawArgs[0].toLowerCase() in COMMANDS) rawArgs[0] = rawArgs[0].toLowerCase();
const dashes = rawArgs.indexOf("--");
const ownArgs = dashes < 0 ? rawArgs : rawArgs.slice(0, dashes);

// `msgbus --version` is answered before anything else loads (citty included): it starts in the
// time of a hello world (docs/BENCHMARKS.md, start-up).
if (ownArgs.length === 1 && (ownArgs[0] === "--version" || ownArgs[0] === "-v")) {
  console.log(version);
  process.exit(0);
}

// A write in its common form (`msgbus put jobs hello`, `… | msgbus put jobs`, --url and --token at
// most, to a tcp:// server) loads only a plain connection and the settings (commands/_write-fast.ts).
// Other writes of plain words (no option, no `--`: tls://, http://) leave citty nothing to parse or
// check: they run the write that `put` and `pub` run, without loading the parser.
const command = rawArgs[0];
const write = command === "put" || command === "pub";
if (write && (await (await import("./commands/_write-fast.ts")).fastWrite(rawArgs.slice(1)))) {
  // written, or failed with its exit code
} else if (write && rawArgs.length >= 3 && rawArgs.every((a) => !a.startsWith("-"))) {
  const { runWrite } = await import("./commands/_write.ts");
  await runWrite(command, { topic: rawArgs[1], _: rawArgs.slice(1) });
} else if (command === "serve" && !ownArgs.some((a) => a === "--help" || a === "-h")) {
  // serve with plain setting flags (most servers: `msgbus serve --port 7000 --data /var/lib/msgbus`)
  // runs without citty, and so without node:util: less memory held for the server's lifetime.
  (await import("./early-signals.ts")).catchStopSignals();
  const { plainServeFlags, runServe } = await import("./commands/_serve.ts");
  const flags = plainServeFlags(rawArgs.slice(1));
  if (flags) await runServe(flags);
  else await withCitty();
} else {
  await withCitty();
}

async function withCitty(): Promise<void> {
  if (rawArgs[0] === "serve") (await import("./early-signals.ts")).catchStopSignals();
  const asksForHelp = ownArgs.some((a) => a === "--help" || a === "-h");

  // citty decides on colours once, when it loads, from NO_COLOR/TERM/CI alone: help piped into a file
  // or a pager must be plain text. The environment is put back for the handlers `on` and `sub` run.
  // Only help and usage are coloured, so only they ask whether stdout is a terminal: that question
  // loads Node's stream machinery, which costs a client command more than the rest of its start-up.
  const noColor = process.env.NO_COLOR;
  if (noColor || ((asksForHelp || ownArgs.length === 0) && !process.stdout.isTTY)) process.env.NO_COLOR = "1";
  const { defineCommand, renderUsage, runCommand, runMain } = await import("citty");
  if (noColor === undefined) delete process.env.NO_COLOR;
  else process.env.NO_COLOR = noColor;

  const msgbus = defineCommand({
    meta: {
      name: "msgbus",
      version,
      description: "A message bus server and command-line client in one binary",
    },
    subCommands: COMMANDS,
  });
  main = msgbus;

  if (ownArgs.length === 0) {
    // A bare `msgbus` (or `msgbus -- …`) is a usage error: the usage goes to stderr, so a script that forgot its
    // subcommand fails (exit 2) rather than carrying on with help text on stdout.
    process.stderr.write((await renderUsage(msgbus)) + "\n");
    process.exit(2);
  } else if (rawArgs[0]!.startsWith("-") && !["--help", "-h", "--version", "-v"].includes(rawArgs[0]!)) {
    process.stderr.write(`msgbus: unknown option ${rawArgs[0]} (the command comes first: msgbus <command> [options]; see msgbus --help)\n`);
    process.exit(2);
  } else if (asksForHelp) {
    runMain(msgbus, { rawArgs: ownArgs }); // usage, citty's way (what follows `--` is a handler's)
  } else {
    // Not runMain: it would take a handler's own `--help` (after `--`) as ours, and it exits 1 on a
    // usage error where our exit-code table says 2.
    runCommand(msgbus, { rawArgs }).catch((error: unknown) => {
      if (error instanceof Error && error.name === "CLIError") {
        // biome-ignore lint/suspicious/noControlCharactersInRegex: strips the colour codes citty adds
        process.stderr.write(`msgbus: ${error.message.replace(/\x1b\[[0-9;]*m/g, "")} (see msgbus --help)\n`);
        process.exit(2);
      }
      import("./commands/_exit.ts").then(({ fail }) => fail(error));
    });
  }
}
