// The start-up fast path of `put` and `pub` (docs/BENCHMARKS.md, start-up): the common forms
// `msgbus put <topic> <message…>`, with --url and --token as flags or from the environment, to a
// tcp:// server. It is the same write as _write.ts's (the same TCP client, settings, checks, error
// lines and exit codes) with less loaded: no citty, no node:* module (not node:buffer either), no
// stdin or stdout stream, none of --lines and --reconnect. Anything else returns false and goes
// the full way (src/cli.ts).

import { connectTcp } from "../client/tcp.ts";
import { type Config, SETTINGS, clientUrl, isSetIn, resolveSettings } from "../config.ts";
import { guarded, tooLarge } from "./_exit.ts";

/** The flags this path reads (each once, with a value); any other option goes the full way. */
const FLAGS = new Set(["url", "token"]);
/** The settings a write reads (_connect.ts): where to connect, the token, TLS, the client's limit. */
const CLIENT = new Set<keyof Config>(["url", "host", "port", "token", "cacert", "insecure", "maxMessageSize"]);
const CLIENT_SETTINGS = SETTINGS.filter((s) => CLIENT.has(s.key));

/**
 * Writes the message that `args` (what follows `put` or `pub`) give, when they are one of the
 * forms above; false, having done nothing, when they are not.
 */
export async function fastWrite(args: string[]): Promise<boolean> {
  const parsed = parse(args);
  if (!parsed) return false;
  const { flags, words } = parsed;
  const [topic, ...message] = words;
  // No topic, or no message (stdin is read the full way), is for the full path to handle.
  if (topic === undefined || topic === "" || message.length === 0) return false;
  // The same settings as the full path, checked the same way (a bad variable is the same usage
  // error); anything that is not plain TCP (tls://, http(s)://, ws(s)://, --cacert, --insecure)
  // goes the full way. Only the client's settings are read: a variable of another one set (which
  // the full path would check too) sends the write the full way.
  if (SETTINGS.some((s) => !CLIENT.has(s.key) && isSetIn(s))) return false;
  let url: URL;
  let config: Partial<Config>;
  try {
    config = resolveSettings(CLIENT_SETTINGS, flags);
    url = new URL(clientUrl(config as Config));
  } catch {
    return false; // the full path reports it
  }
  if (url.protocol !== "tcp:" || config.cacert !== undefined || config.insecure) return false;
  const maxMessageSize = isSetIn(SETTINGS.find((s) => s.key === "maxMessageSize")!) ? config.maxMessageSize! : undefined;

  await guarded(async () => {
    const client = await connectTcp(url, config.token ? { token: config.token } : {});
    const payload = new TextEncoder().encode(message.join(" "));
    // The client's own limit applies only when set (_connect.ts: isExplicit); there is no flag for it here.
    if (maxMessageSize !== undefined && payload.length > maxMessageSize) {
      throw tooLarge(`message of ${payload.length} bytes`, { bytes: maxMessageSize, source: "--max-message-size" });
    }
    await client.put(topic, payload);
    await client.close();
  });
  return true;
}

/**
 * Splits the arguments into --url/--token values and words; undefined for anything else (another
 * option, `--`, a flag given twice or without a value, a value that starts with "-").
 */
function parse(args: string[]): { flags: Record<string, string>; words: string[] } | undefined {
  const flags: Record<string, string> = {};
  const words: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    if (!arg.startsWith("-")) {
      words.push(arg);
      continue;
    }
    if (!arg.startsWith("--")) return undefined;
    const equals = arg.indexOf("=");
    const name = arg.slice(2, equals < 0 ? undefined : equals);
    const value = equals < 0 ? args[++i] : arg.slice(equals + 1);
    if (!FLAGS.has(name) || name in flags || value === undefined || value === "" || value.startsWith("-")) return undefined;
    flags[name] = value;
  }
  return { flags, words };
}
