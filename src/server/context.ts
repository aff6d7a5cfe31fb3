// What every transport is given: the bus, the configuration, auth and shared counters.

import type { Engine } from "../core/engine.ts";
import type { Config } from "../config.ts";
import type { Auth } from "./auth.ts";
import type { ReadClock } from "./read-clock.ts";

export type Transport = "tcp" | "http" | "sse" | "ws";

/** Counters the transports keep for /_/metrics and /_/topics beside the bus's own. */
export class ServerStats {
  readonly connections: Record<Transport, number> = { tcp: 0, http: 0, sse: 0, ws: 0 };
  readonly connectionsTotal: Record<Transport, number> = { tcp: 0, http: 0, sse: 0, ws: 0 };
  slowConsumers = 0;
  protocolErrors = 0;
  readonly started = Date.now();

  get openConnections(): number {
    const c = this.connections;
    return c.tcp + c.http + c.sse + c.ws;
  }

  opened(transport: Transport): void {
    this.connections[transport]++;
    this.connectionsTotal[transport]++;
  }

  closed(transport: Transport): void {
    this.connections[transport]--;
  }
}

export interface ServerContext {
  /** The engine: the in-memory Bus, or the Redis engine (serve --redis). */
  bus: Engine;
  config: Config;
  auth: Auth;
  stats: ServerStats;
  /** The bus's clock: read once per TCP read while its commands run (read-clock.ts). */
  clock: ReadClock;
  /** True once shutdown began: transports refuse new work. */
  stopping: boolean;
}
