// Token auth shared by every transport: one token (full rights) when --token is set, none otherwise.

import { timingSafeEqual } from "node:crypto";

export type Right = "read" | "write";

export class Auth {
  private readonly token: Uint8Array | undefined;

  constructor(token: string | undefined) {
    this.token = token ? new TextEncoder().encode(token) : undefined;
  }

  /** Whether clients must present a token at all. */
  get required(): boolean {
    return this.token !== undefined;
  }

  /** Whether `presented` is a valid token (always true when no token is configured). */
  check(presented: string | Uint8Array | undefined | null): boolean {
    if (!this.token) return true;
    if (presented === undefined || presented === null) return false;
    const bytes = typeof presented === "string" ? new TextEncoder().encode(presented) : presented;
    return bytes.length === this.token.length && timingSafeEqual(bytes, this.token);
  }

  /** Whether an authenticated client may do `right` on `topic` (one token: every right). */
  allows(_authenticated: boolean, _right: Right, _topic: string): boolean {
    return !this.required || _authenticated;
  }
}
