// `msgbus ping`: is the server there? One round trip, timed, and the server's version; exit code 4
// when it cannot be reached (5 when it refuses the token).

import { defineCommand } from "citty";
import { connectionArgs } from "./_args.ts";
import { connectFromArgs } from "./_connect.ts";
import { guarded, usage } from "./_exit.ts";
import { writeStdout } from "./_io.ts";

export default defineCommand({
  meta: {
    name: "ping",
    description: "Check the server: round-trip time and its version; exit code 4 when it cannot be reached",
  },
  args: {
    json: { type: "boolean" as const, description: 'print {"url":…,"ms":…,"version":…}' },
    ...connectionArgs,
  },
  run: ({ args }) =>
    guarded(async () => {
      if (args._.length > 0) throw usage(`ping takes no arguments (got "${args._[0]}")`);
      const { client, url } = await connectFromArgs(args);
      const { ms, version } = await client.ping();
      await client.close();
      const rounded = Math.round(ms * 100) / 100;
      await writeStdout(
        args.json
          ? JSON.stringify({ url, ms: rounded, version: version ?? null }) + "\n"
          : `PONG from ${url} in ${rounded} ms${version ? ` (msgbus ${version})` : ""}\n`,
      );
      process.exit(0);
    }),
});
