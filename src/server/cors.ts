// CORS of one HTTP server (--allow-origin): the headers every reply carries, the preflight answer,
// and whether a browser page may open a WebSocket. startHttp makes one per server; nothing global.

const EXPOSED =
  "Msgbus-Id, Msgbus-Topic, Msgbus-Created, Msgbus-Deliveries, Msgbus-Origin-Topic, Msgbus-Origin-Id, Msgbus-Origin-Deliveries, Msgbus-Lease-Expires";

export interface Cors {
  /** On every response: which pages on other origins may read replies and our headers ({} for "none"). */
  readonly headers: Readonly<Record<string, string>>;
  /** On an OPTIONS answer, beside Allow: the preflight grant ({} for "none"). */
  readonly preflight: Readonly<Record<string, string>>;
  /**
   * Whether a page from `origin` may open a WebSocket (browsers do not apply CORS to them, so the
   * server checks). No Origin header: not a browser, always allowed.
   */
  allowsWebSocket(origin: string | null): boolean;
}

/** `allowOrigin`: "*" (any page), one origin ("https://app.example"), or "none" (same-origin pages only). */
export function corsFor(allowOrigin: string): Cors {
  const headers: Record<string, string> =
    allowOrigin === "none"
      ? {}
      : {
          "access-control-allow-origin": allowOrigin,
          "access-control-expose-headers": EXPOSED,
          ...(allowOrigin !== "*" ? { vary: "Origin" } : {}),
        };
  const preflight: Record<string, string> =
    allowOrigin === "none"
      ? {}
      : {
          ...headers,
          "access-control-allow-methods": "GET, POST, PUT, DELETE, OPTIONS",
          "access-control-allow-headers": "Authorization, Content-Type, Accept, Last-Event-ID",
          "access-control-max-age": "86400",
        };
  return {
    headers,
    preflight,
    allowsWebSocket: (origin) => origin === null || allowOrigin === "*" || (allowOrigin !== "none" && origin === allowOrigin),
  };
}
