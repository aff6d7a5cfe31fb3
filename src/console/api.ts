// The console's only way to the server: the public HTTP API, with the token (asked for once, kept
// in sessionStorage for this tab) as a Bearer header, or as ?token= where a header cannot go (SSE).
// Knows whether the server is reachable, and says so in the banner.

import { byId } from "./dom.ts";

const TOKEN_KEY = "msgbus-token";

/** A refusal with the server's JSON error (`{"error","code"}`). */
export class ApiError extends Error {
  constructor(
    message: string,
    readonly status: number,
    readonly code: string,
  ) {
    super(message);
  }
}

/** The server did not answer (down, restarting, network gone). */
export class Unreachable extends Error {}

export function token(): string | null {
  return sessionStorage.getItem(TOKEN_KEY);
}

let asking: Promise<void> | undefined;

/** Shows the token prompt (once, however many requests were refused) and keeps the answer. */
export function askToken(why: string): Promise<void> {
  asking ??= new Promise<void>((resolve) => {
    const dialog = byId<HTMLDialogElement>("token-dialog");
    const input = byId<HTMLInputElement>("token-input");
    byId("token-why").textContent = why;
    input.value = "";
    dialog.addEventListener(
      "close",
      () => {
        if (input.value !== "") sessionStorage.setItem(TOKEN_KEY, input.value.trim());
        asking = undefined;
        resolve();
      },
      { once: true },
    );
    dialog.showModal();
    input.focus();
  });
  return asking;
}

type Listener = (reachable: boolean) => void;
const listeners = new Set<Listener>();
let reachable = true;

export function onReachability(listener: Listener): void {
  listeners.add(listener);
}

function setReachable(value: boolean): void {
  if (value === reachable) return;
  reachable = value;
  for (const listener of listeners) listener(value);
}

/** `path` is relative to the page (so a path prefix behind a reverse proxy works). */
export async function request(path: string, init: RequestInit = {}): Promise<Response> {
  for (;;) {
    const headers = new Headers(init.headers);
    const t = token();
    if (t) headers.set("authorization", `Bearer ${t}`);
    let response: Response;
    try {
      response = await fetch(path, { ...init, headers, cache: "no-store" });
    } catch {
      setReachable(false);
      throw new Unreachable("cannot reach the server");
    }
    if (response.status === 503 && path.startsWith("_/")) {
      setReachable(false);
      throw new Unreachable("the server is shutting down");
    }
    setReachable(true);
    if (response.status === 401) {
      await askToken(
        t ? "That token was refused. Enter the server's token:" : "This server needs a token (msgbus serve --token). It is kept for this tab only.",
      );
      continue;
    }
    if (!response.ok) {
      const body = (await response.json().catch(() => ({}))) as { error?: string; code?: string };
      throw new ApiError(body.error ?? `${response.status} ${response.statusText}`, response.status, body.code ?? String(response.status));
    }
    return response;
  }
}

export async function getJson<T>(path: string): Promise<T> {
  return (await request(path)).json() as Promise<T>;
}

/** A URL for EventSource, which cannot send headers: the token goes in the query. */
export function streamUrl(path: string, query: Record<string, string | undefined>): string {
  const params = new URLSearchParams();
  for (const [key, value] of Object.entries(query)) if (value !== undefined) params.set(key, value);
  const t = token();
  if (t) params.set("token", t);
  // `?json` is a flag: "json=" reads as on (only =0 / =false turn a flag off).
  return `${path}?${params.toString()}`;
}

export function topicPath(topic: string): string {
  return encodeURIComponent(topic);
}
