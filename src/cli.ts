#!/usr/bin/env bun
// The msgbus entry point: one binary, server and client. Subcommands load lazily so that
// `--help` and small commands start fast.

import { defineCommand, runMain } from "citty";

declare const MSGBUS_VERSION: string | undefined;
const version = typeof MSGBUS_VERSION === "string" ? MSGBUS_VERSION : "0.0.0-dev";

const main = defineCommand({
  meta: {
    name: "msgbus",
    version,
    description: "A message bus server and command-line client in one binary",
  },
  subCommands: {
    serve: () => import("./commands/serve.ts").then((m) => m.default),
    put: () => import("./commands/put.ts").then((m) => m.default),
    get: () => import("./commands/get.ts").then((m) => m.default),
    on: () => import("./commands/on.ts").then((m) => m.default),
    pub: () => import("./commands/pub.ts").then((m) => m.default),
    sub: () => import("./commands/sub.ts").then((m) => m.default),
    ack: () => import("./commands/ack.ts").then((m) => m.default),
    nack: () => import("./commands/nack.ts").then((m) => m.default),
  },
});

runMain(main);
