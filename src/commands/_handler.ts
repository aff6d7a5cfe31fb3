// The command `on` and `sub` run per message (`-- command…`): reading it from the arguments,
// checking it can run, and running it in its own process group with the message on stdin.

import type { ArgsDef } from "citty";
import { setLongTimeout } from "../long-timeout.ts";
import type { ReceivedMessage } from "../client/client.ts";
import { usage } from "./_exit.ts";

/** The command after `--` (`msgbus on jobs -- ./handle.sh arg`), or undefined. */
export function commandAfterDashes(rawArgs: string[]): string[] | undefined {
  const at = rawArgs.indexOf("--");
  if (at < 0) return undefined;
  const command = rawArgs.slice(at + 1);
  if (command.length === 0) throw usage("nothing after --: give the command to run per message");
  return command;
}

/**
 * prologic's `msgbus sub <topic> <command> [args…]`: a positional after the topic starts the
 * command, and everything from it on is the command's (its own flags included), as if `--` came
 * before it. Flags before it are ours; `argsDef` says which of them take a value.
 */
export function dashesBeforeCommand(rawArgs: string[], argsDef: ArgsDef): string[] {
  const takesValue = new Set<string>();
  for (const [name, def] of Object.entries(argsDef)) {
    if (def.type !== "string") continue;
    const alias = (def as { alias?: string | string[] }).alias;
    for (const n of [name, ...(Array.isArray(alias) ? alias : alias ? [alias] : [])]) takesValue.add(n.length === 1 ? `-${n}` : `--${n}`);
  }
  let positionals = 0;
  for (let i = 0; i < rawArgs.length; i++) {
    const arg = rawArgs[i]!;
    if (arg === "--") return rawArgs;
    if (arg.startsWith("-") && arg !== "-") {
      if (!arg.includes("=") && takesValue.has(arg)) i++;
      continue;
    }
    if (++positionals === 2) return [...rawArgs.slice(0, i), "--", ...rawArgs.slice(i)];
  }
  return rawArgs;
}

/** Fails early, before connecting, when the handler cannot be run at all. */
export function checkRunnable(command: string[]): void {
  const program = command[0]!;
  if (Bun.which(program) === null) throw usage(`cannot run "${program}": not found or not executable`);
}

export interface HandlerOptions {
  /** Kill the handler (SIGTERM, then SIGKILL after a grace period) when it runs longer. */
  timeoutMs?: number;
  /** Extra environment (the message's variables come on top). */
  env?: Record<string, string>;
}

export interface HandlerRun {
  /** Exit code; 128 + signal number when a signal ended it; -1 when it could not start. */
  readonly exited: Promise<{ code: number; timedOut: boolean; error?: string }>;
  /** Signals the handler's whole process group. */
  kill(signal: NodeJS.Signals): void;
}

const POSIX = process.platform !== "win32";
const KILL_GRACE_MS = 5000;

/**
 * Runs `command` for one message: payload on stdin, MSGBUS_ID / MSGBUS_TOPIC / MSGBUS_DELIVERY /
 * MSGBUS_CREATED in the environment, stdout and stderr inherited. It runs in a process group of its
 * own so that a terminal's Ctrl-C reaches msgbus only (which lets running handlers finish) and so
 * that a timeout kills everything the handler started.
 */
export function runHandler(command: string[], m: ReceivedMessage, options: HandlerOptions = {}): HandlerRun {
  const env: Record<string, string | undefined> = {
    ...process.env,
    ...options.env,
    MSGBUS_ID: String(m.id),
    MSGBUS_TOPIC: m.topic,
    MSGBUS_DELIVERY: String(m.deliveries),
    MSGBUS_CREATED: String(m.created),
  };
  if (m.origin) {
    env.MSGBUS_ORIGIN_TOPIC = m.origin.topic;
    env.MSGBUS_ORIGIN_ID = String(m.origin.id);
    env.MSGBUS_ORIGIN_DELIVERIES = String(m.origin.deliveries);
  }
  let proc: ReturnType<typeof Bun.spawn>;
  try {
    proc = Bun.spawn(command, { stdin: m.payload, stdout: "inherit", stderr: "inherit", env, detached: POSIX });
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    return { exited: Promise.resolve({ code: -1, timedOut: false, error: `cannot run "${command[0]}": ${reason}` }), kill() {} };
  }
  const kill = (signal: NodeJS.Signals) => {
    try {
      if (POSIX) process.kill(-proc.pid, signal);
      else proc.kill(signal);
    } catch {
      // Already gone.
    }
  };
  let timedOut = false;
  let graceTimer: ReturnType<typeof setTimeout> | undefined;
  // A long --timeout (25d) would overflow setTimeout and fire at once: setLongTimeout re-arms.
  const timer =
    options.timeoutMs !== undefined
      ? setLongTimeout(() => {
          timedOut = true;
          kill("SIGTERM");
          graceTimer = setTimeout(() => kill("SIGKILL"), Math.min(KILL_GRACE_MS, Math.max(100, options.timeoutMs!)));
        }, options.timeoutMs)
      : undefined;
  const exited = proc.exited.then((code) => {
    timer?.clear();
    clearTimeout(graceTimer);
    // What the handler left running in its group goes with it.
    if (POSIX && timedOut) kill("SIGKILL");
    return { code, timedOut };
  });
  return { exited, kill };
}
