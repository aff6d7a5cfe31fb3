// `msgbus serve`: run the server until SIGTERM/SIGINT, then stop gracefully and exit 0.

import { defineCommand } from "citty";
import { serverArgs } from "./_args.ts";
import { runServe } from "./_serve.ts";

export default defineCommand({
  meta: { name: "serve", description: "Run the message bus server (TCP/RESP, HTTP, SSE, WebSocket)" },
  args: { ...serverArgs },
  run: ({ args }) => runServe(args),
});
