// `msgbus top`: the busiest topics, refreshed in place on a terminal (like nats-top): q or Ctrl-C
// quits, s changes the order. When stdout is not a terminal, or with --once, one snapshot and exit.

import { defineCommand } from "citty";
import type { Client, ServerStats, TopicStats } from "../client/client.ts";
import { connectionArgs, countOption, durationOption } from "./_args.ts";
import { connectFromArgs, type Connected } from "./_connect.ts";
import { guarded, usage } from "./_exit.ts";
import { writeStdout } from "./_io.ts";
import { formatBytes, formatRate, formatUptime, stdoutIsTerminal, topicTable } from "./_table.ts";

const SORTS = ["rate", "depth", "name"] as const;
type Sort = (typeof SORTS)[number];

const ORDER: Record<Sort, (a: TopicStats, b: TopicStats) => number> = {
  rate: (a, b) => b.rateIn + b.rateOut - (a.rateIn + a.rateOut) || b.depth - a.depth || byName(a, b),
  depth: (a, b) => b.depth - a.depth || b.rateIn + b.rateOut - (a.rateIn + a.rateOut) || byName(a, b),
  name: (a, b) => byName(a, b),
};

function byName(a: TopicStats, b: TopicStats): number {
  return a.name < b.name ? -1 : a.name > b.name ? 1 : 0;
}

interface Snapshot {
  server: ServerStats;
  topics: TopicStats[];
}

async function snapshot(client: Client): Promise<Snapshot> {
  const [server, topics] = await Promise.all([client.serverStats(), client.topics()]);
  return { server, topics };
}

/** The screen (or the one snapshot printed): a header line, totals, then the busiest topics. */
function render(s: Snapshot, url: string, sort: Sort, rows: number): string {
  const { server } = s;
  const rateIn = s.topics.reduce((sum, t) => sum + t.rateIn, 0);
  const rateOut = s.topics.reduce((sum, t) => sum + t.rateOut, 0);
  const shown = [...s.topics].sort(ORDER[sort]).slice(0, rows);
  const header =
    `msgbus top  ${url}  up ${formatUptime(server.uptime)}  topics ${server.topics}  connections ${server.connections}  ` +
    `memory ${formatBytes(server.bytes)} of ${formatBytes(server.maxMemory)}\n` +
    `in ${formatRate(rateIn)}/s  out ${formatRate(rateOut)}/s  dropped ${server.dropped}  redelivered ${server.redelivered}  ` +
    `dead-lettered ${server.deadLettered}  sorted by ${sort}${shown.length < s.topics.length ? `, ${shown.length} of ${s.topics.length} shown` : ""}\n\n`;
  return header + (shown.length > 0 ? topicTable(shown) : "(no topics)\n");
}

const ALTERNATE_SCREEN = "\x1b[?1049h\x1b[?25l";
const NORMAL_SCREEN = "\x1b[?25h\x1b[?1049l";
const HOME_AND_CLEAR = "\x1b[H\x1b[2J";

export default defineCommand({
  meta: {
    name: "top",
    description: "Watch the busiest topics live (rates, depth, leases), refreshed in place; q or Ctrl-C quits",
  },
  args: {
    interval: { type: "string" as const, valueHint: "duration", description: "time between refreshes (default 1s)" },
    sort: {
      type: "string" as const,
      valueHint: SORTS.join("|"),
      description: "order of the topics (default rate: messages in + out per second); the s key cycles",
    },
    rows: { type: "string" as const, valueHint: "n", description: "at most this many topics (default: what fits the terminal; 20 for a snapshot)" },
    once: { type: "boolean" as const, description: "print one snapshot and exit (what happens anyway when stdout is not a terminal)" },
    json: { type: "boolean" as const, description: 'the snapshot as one JSON object {"server":{…},"topics":[…]}, every topic, sorted' },
    ...connectionArgs,
  },
  run: ({ args }) =>
    guarded(async () => {
      if (args._.length > 0) throw usage(`top takes no arguments (got "${args._[0]}")`);
      const interval = durationOption(args.interval, "interval") ?? 1000;
      if (interval < 100) throw usage("--interval: at least 100ms");
      let sort = (args.sort ?? "rate") as Sort;
      if (!SORTS.includes(sort)) throw usage(`--sort: one of ${SORTS.join(", ")} (got "${args.sort}")`);
      const rowsOption = countOption(args.rows, "rows");
      const connected = await connectFromArgs(args);
      if (args.once || args.json || !stdoutIsTerminal()) {
        const s = await snapshot(connected.client);
        await connected.client.close();
        await writeStdout(
          args.json ? JSON.stringify({ server: s.server, topics: [...s.topics].sort(ORDER[sort]) }) + "\n" : render(s, connected.url, sort, rowsOption ?? 20),
        );
        process.exit(0);
      }
      await live(
        connected,
        args,
        interval,
        rowsOption,
        () => sort,
        (next) => (sort = next),
      );
    }),
});

/** Refreshes the screen every interval until q, Ctrl-C or a stop signal; a lost server is shown and tried again. */
async function live(
  first: Connected,
  args: Parameters<typeof connectFromArgs>[0],
  interval: number,
  rowsOption: number | undefined,
  sort: () => Sort,
  setSort: (sort: Sort) => void,
): Promise<never> {
  let connected: Connected | undefined = first;
  let last: Snapshot | undefined;
  let problem: string | undefined;
  let timer: ReturnType<typeof setTimeout> | undefined;

  const quit = () => {
    clearTimeout(timer);
    process.stdout.write(NORMAL_SCREEN);
    if (process.stdin.isTTY) process.stdin.setRawMode(false);
    void connected?.client.close();
    process.exit(0);
  };
  process.on("SIGINT", quit);
  process.on("SIGTERM", quit);
  process.on("SIGHUP", quit);
  if (process.stdin.isTTY) {
    process.stdin.setRawMode(true);
    process.stdin.on("data", (key: Buffer) => {
      const k = key.toString();
      if (k === "q" || k === "Q" || k === "\x03" || k === "\x04") quit();
      if (k === "s" || k === "S") {
        setSort(SORTS[(SORTS.indexOf(sort()) + 1) % SORTS.length]!);
        draw();
      }
    });
  }
  process.stdout.on("resize", () => draw());
  process.stdout.write(ALTERNATE_SCREEN);

  function draw() {
    const rows = rowsOption ?? Math.max(1, (process.stdout.rows || 24) - 6);
    let screen = last ? render(last, first.url, sort(), rows) : "";
    if (problem) screen += `\n${problem}\n`;
    screen += "\nq quit  s sort\n";
    process.stdout.write(HOME_AND_CLEAR + screen);
  }

  for (;;) {
    try {
      connected ??= await connectFromArgs(args);
      last = await snapshot(connected.client);
      problem = undefined;
    } catch (error) {
      problem = `msgbus: ${error instanceof Error ? error.message : String(error)}; trying again every ${interval / 1000} s`;
      void connected?.client.close();
      connected = undefined;
    }
    draw();
    await new Promise<void>((resolve) => {
      timer = setTimeout(resolve, interval);
    });
  }
}
