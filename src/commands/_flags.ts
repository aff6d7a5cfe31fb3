// Unknown flags are usage errors: citty parses leniently (node's parseArgs, strict: false), so a
// typo such as `get jobs --wiat 3s` would be ignored and the command would run without it.

import { parseArgs } from "node:util";
import type { ArgsDef, CommandDef } from "citty";
import { BusError } from "../core/errors.ts";

const camel = (name: string) => name.replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());
const kebab = (name: string) => name.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);

/**
 * Throws a usage error (exit 2) naming the first flag `rawArgs` gives that `args` does not declare.
 * Everything after `--` belongs to the command that `on`/`sub` run, and is not looked at.
 */
export function rejectUnknownFlags(command: string, args: ArgsDef, rawArgs: string[]): void {
  const options: Record<string, { type: "string" | "boolean"; short?: string }> = {};
  const booleans = new Set<string>();
  for (const [name, def] of Object.entries(args)) {
    if (def.type === "positional") continue;
    const type = def.type === "boolean" ? "boolean" : "string";
    const alias = (def as { alias?: string | string[] }).alias;
    const aliases = Array.isArray(alias) ? alias : alias ? [alias] : [];
    for (const n of new Set([name, camel(name), kebab(name), ...aliases])) {
      options[n] = n.length === 1 ? { type, short: n } : { type };
      if (type === "boolean") booleans.add(n);
    }
  }
  options.help = { type: "boolean", short: "h" };
  const { tokens } = parseArgs({ args: rawArgs, options, strict: false, allowPositionals: true, tokens: true });
  for (const token of tokens) {
    if (token.kind === "option-terminator") break;
    if (token.kind !== "option") continue;
    const name = token.name;
    if (name in options) {
      // `--token --port 5000` would make "--port" the token: a value given as the next argument
      // may not look like an option (as node's strict parseArgs says); `--token=-x` still works.
      const value = token.value;
      if (options[name]!.type === "string" && !token.inlineValue && value !== undefined && value.length > 1 && value.startsWith("-")) {
        throw new BusError(
          "BAD_REQUEST",
          `option ${token.rawName} needs a value, not ${value} (a value that starts with "-" is written ${token.rawName}=${value})`,
        );
      }
      continue;
    }
    // citty's --no-<flag> turns a boolean off.
    if (name.startsWith("no-") && booleans.has(name.slice(3))) continue;
    const hint = /^-\d/.test(token.rawName)
      ? ` (an argument that starts with "-" goes after --: msgbus ${command} … -- ${token.rawName})`
      : ` (see msgbus ${command} --help)`;
    throw new BusError("BAD_REQUEST", `unknown option ${token.rawName} for ${command}${hint}`);
  }
}

/** The command, checking its flags before it runs (`normalize` first rewrites what the command rewrites). */
export function withStrictFlags<T extends ArgsDef>(command: CommandDef<T>, normalize?: (rawArgs: string[]) => string[]): CommandDef<T> {
  const setup = command.setup;
  return {
    ...command,
    setup: async (context) => {
      const name = typeof command.meta === "object" && command.meta && "name" in command.meta ? String(command.meta.name) : "this command";
      rejectUnknownFlags(name, (command.args ?? {}) as ArgsDef, normalize ? normalize(context.rawArgs) : context.rawArgs);
      await setup?.(context);
    },
  };
}
