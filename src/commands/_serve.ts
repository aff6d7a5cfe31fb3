// What `msgbus serve` runs, without citty: the command (serve.ts) and the start-up fast path
// (src/cli.ts, when every argument is a plain setting flag) both run it with the parsed flags.

import { type Flags, SETTINGS, resolveConfig } from "../config.ts";
import { configureLog, log } from "../log.ts";
import { startServer } from "../server/index.ts";
import { guarded, usage } from "./_exit.ts";
import { catchStopSignals, onStopSignal } from "../early-signals.ts";

/**
 * serve's arguments as citty would parse them, when every one is a setting flag of the server's
 * given once: `--name value` or `--name=value` (a value that does not start with "-"), `--flag` or
 * `--no-flag` for a boolean. Undefined for anything else (--help, an unknown or repeated flag, a
 * word, `--`): citty parses and checks those (src/cli.ts). Loading citty loads node:util, which
 * costs a server ~4 MB resident for as long as it runs (docs/BENCHMARKS.md, idle RSS).
 */
export function plainServeFlags(args: string[]): Flags | undefined {
  const flags: Flags = {};
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    if (!arg.startsWith("--")) return undefined;
    const equals = arg.indexOf("=");
    let name = arg.slice(2, equals < 0 ? undefined : equals);
    let setting = SERVER_SETTINGS.get(name);
    if (setting?.kind === "boolean" || (setting === undefined && name.startsWith("no-"))) {
      // --flag and --no-flag; a boolean given a value (--console=false) is citty's to read.
      const negated = setting === undefined;
      if (negated) name = name.slice(3);
      setting = SERVER_SETTINGS.get(name);
      if (setting?.kind !== "boolean" || equals >= 0 || name in flags) return undefined;
      flags[name] = !negated;
      continue;
    }
    const value = equals < 0 ? args[++i] : arg.slice(equals + 1);
    if (setting === undefined || name in flags || value === undefined || value === "" || value.startsWith("-")) return undefined;
    flags[name] = value;
  }
  return flags;
}

/** The settings `serve` takes as flags (serve.ts: serverArgs), by flag name. */
const SERVER_SETTINGS = new Map(SETTINGS.filter((s) => s.side !== "client").map((s) => [s.flag, s]));

/** Runs the server until SIGTERM/SIGINT, then stops gracefully and exits 0. */
export function runServe(args: Flags): Promise<void> {
  return guarded(async () => {
    const config = resolveConfig(args);
    await checkTls(config.tlsCert, config.tlsKey);
    if (config.redis && config.data)
      throw usage("--redis and --data exclude each other: with --redis the bus lives in Redis, which keeps it (see Redis's appendonly)");
    configureLog(config.logLevel, config.logFormat);
    // Signals are caught from the start: one that comes while the listeners open (a supervisor
    // stopping a server it just started) stops the server as soon as it is up, gracefully.
    let server: Awaited<ReturnType<typeof startServer>> | undefined;
    let stopRequested: string | undefined;
    catchStopSignals(); // already done by the CLI entry for `msgbus serve`; here for any other caller
    const stop = (signal: string) => {
      if (stopRequested) return;
      stopRequested = signal;
      if (server) shutDown(server, signal);
    };
    onStopSignal(stop);
    server = await startServer(config);
    if (stopRequested) shutDown(server, stopRequested);
  });
}

function shutDown(server: { stop(): Promise<void> }, signal: string): void {
  log.info(`${signal}: stopping`);
  server.stop().then(
    () => {
      log.info("stopped");
      process.exit(0);
    },
    (error: unknown) => {
      log.error(`stop failed: ${String(error)}`);
      process.exit(1);
    },
  );
}

/** TLS needs both files: with one of them the listeners would serve plain text under a tls:// banner. */
async function checkTls(cert: string | undefined, key: string | undefined): Promise<void> {
  if (cert === undefined && key === undefined) return;
  if (cert === undefined) throw usage("--tls-key needs --tls-cert (MSGBUS_TLS_CERT) too: TLS takes both the certificate and its private key");
  if (key === undefined) throw usage("--tls-cert needs --tls-key (MSGBUS_TLS_KEY) too: TLS takes both the certificate and its private key");
  const { accessSync, constants } = await import("node:fs"); // only with TLS: a plain server loads no node:fs
  for (const [flag, file] of [
    ["--tls-cert", cert],
    ["--tls-key", key],
  ] as const) {
    try {
      accessSync(file, constants.R_OK);
    } catch {
      throw usage(`${flag}: cannot read ${file}`);
    }
  }
}
