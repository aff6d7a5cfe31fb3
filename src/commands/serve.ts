// `msgbus serve`: run the server until SIGTERM/SIGINT, then stop gracefully and exit 0.

import { defineCommand } from "citty";
import { resolveConfig } from "../config.ts";
import { configureLog, log } from "../log.ts";
import { startServer } from "../server/index.ts";
import { serverArgs } from "./_args.ts";
import { guarded, usage } from "./_exit.ts";
import { catchStopSignals, onStopSignal } from "../early-signals.ts";

export default defineCommand({
  meta: { name: "serve", description: "Run the message bus server (TCP/RESP, HTTP, SSE, WebSocket)" },
  args: { ...serverArgs },
  run: ({ args }) =>
    guarded(async () => {
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
    }),
});

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
