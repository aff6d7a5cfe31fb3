// `msgbus serve`: run the server until SIGTERM/SIGINT, then stop gracefully and exit 0.

import { defineCommand } from "citty";
import { resolveConfig } from "../config.ts";
import { configureLog, log } from "../log.ts";
import { startServer } from "../server/index.ts";
import { guarded, serverArgs } from "./_shared.ts";

export default defineCommand({
  meta: { name: "serve", description: "Run the message bus server (TCP/RESP, HTTP, SSE, WebSocket)" },
  args: { ...serverArgs },
  run: ({ args }) =>
    guarded(async () => {
      const config = resolveConfig(args);
      configureLog(config.logLevel, config.logFormat);
      const server = await startServer(config);
      let stopping = false;
      const stop = (signal: string) => {
        if (stopping) return;
        stopping = true;
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
      };
      process.on("SIGTERM", () => stop("SIGTERM"));
      process.on("SIGINT", () => stop("SIGINT"));
    }),
});
