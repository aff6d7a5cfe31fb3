// From a client command's settings to a connected client: flags > MSGBUS_* > BHOST/BPORT >
// defaults, --cacert/--insecure read here, and what the client was told (for handlers and limits).

import { SETTINGS, clientUrl, isSetIn, resolveConfig, type Config, type Flags } from "../config.ts";
import { connect, type Client, type TlsOptions } from "../client/client.ts";
import { usage } from "./_exit.ts";

/** The client's connection, and what it was told (for messages and for handlers' environment). */
export interface Connected {
  client: Client;
  url: string;
  token: string | undefined;
  /** Only when set for the client too (MSGBUS_MAX_MESSAGE_SIZE, BMAXMESSAGESIZE): larger payloads are refused before sending. */
  maxMessageSize: number | undefined;
  /** Only when set (--max-deliveries, MSGBUS_MAX_DELIVERIES): otherwise the server's default applies. */
  maxDeliveries: number | undefined;
}

/** Resolves the client settings (flags > MSGBUS_* > BHOST/BPORT > defaults) and connects. */
export async function connectFromArgs(args: Flags): Promise<Connected> {
  const config = resolveConfig(args);
  const url = clientUrl(config);
  const client = await connect(url, { token: config.token, tls: await tlsFrom(config) });
  return {
    client,
    url,
    token: config.token,
    maxMessageSize: isExplicit(args, "maxMessageSize") ? config.maxMessageSize : undefined,
    maxDeliveries: isExplicit(args, "maxDeliveries") ? config.maxDeliveries : undefined,
  };
}

/** What a handler learns about the connection: MSGBUS_URL, and MSGBUS_TOKEN when one is used. */
export function handlerEnvironment(connected: Connected): Record<string, string> {
  return { MSGBUS_URL: connected.url, ...(connected.token ? { MSGBUS_TOKEN: connected.token } : {}) };
}

/** --cacert (read here, so a missing file is a usage error) and --insecure. */
async function tlsFrom(config: Config): Promise<TlsOptions | undefined> {
  if (config.cacert === undefined && !config.insecure) return undefined;
  let ca: string | undefined;
  if (config.cacert !== undefined) {
    // node:fs loads only here: a command without --cacert starts without it (docs/BENCHMARKS.md).
    const { readFileSync } = await import("node:fs");
    try {
      ca = readFileSync(config.cacert, "utf8");
    } catch (error) {
      throw usage(`--cacert: cannot read ${config.cacert}: ${(error as Error).message}`);
    }
    if (!ca.includes("-----BEGIN CERTIFICATE-----")) throw usage(`--cacert: ${config.cacert} holds no PEM certificate ("-----BEGIN CERTIFICATE-----")`);
  }
  return { ...(ca !== undefined ? { ca } : {}), ...(config.insecure ? { rejectUnauthorized: false } : {}) };
}

/** Whether a setting was given by its flag or a variable, rather than left to its default. */
function isExplicit(args: Flags, key: keyof Config): boolean {
  const setting = SETTINGS.find((s) => s.key === key)!;
  const flag = args[setting.flag];
  if (flag !== undefined && flag !== "") return true;
  return isSetIn(setting);
}
