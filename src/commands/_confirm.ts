// The question `purge` and `rm` ask before they drop messages: only when a person can answer it
// (stdin is a terminal) and --yes was not given. A script, a pipe or cron is never asked.

import { createInterface } from "node:readline";

export const yesArg = {
  yes: {
    type: "boolean" as const,
    alias: "y",
    description: "do not ask (the question is only asked when stdin is a terminal: scripts and pipes are never asked)",
  },
};

/** Whether to go ahead: true without asking when --yes or when nobody can answer; else the answer (y or yes). */
export async function confirmed(question: string, yes: boolean): Promise<boolean> {
  if (yes || !process.stdin.isTTY) return true;
  const rl = createInterface({ input: process.stdin, output: process.stderr });
  try {
    const answer = await new Promise<string | undefined>((resolve) => {
      rl.on("close", () => resolve(undefined)); // Ctrl-D, Ctrl-C: no
      rl.question(`${question} [y/N] `, resolve);
    });
    return answer !== undefined && /^\s*y(es)?\s*$/i.test(answer);
  } finally {
    rl.close();
  }
}
