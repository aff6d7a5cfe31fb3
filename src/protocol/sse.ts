// Server-Sent Events framing as pure functions: events out (for the server) and a parser in
// (for the HTTP client), following the WHATWG "event stream" rules.

import { isUtf8 } from "node:buffer";
import { encodeEnvelope, type EnvelopeSource } from "./envelope.ts";

export interface SseEvent {
  /** The `event:` field; "message" when absent. */
  type: string;
  data: string;
  /** The last `id:` seen on the stream so far (it carries over to later events, as in browsers). */
  id: string;
}

/** Event type of a message whose payload is not SSE-safe text: its data is the payload in base64. */
export const BASE64_EVENT = "base64";

const decoder = new TextDecoder();

/** One event. `data` may hold newlines: each line becomes a `data:` line, as the format requires. */
export function encodeEvent(event: { data: string; id?: string | number; event?: string; retry?: number }): string {
  let out = "";
  if (event.id !== undefined) out += `id: ${event.id}\n`;
  if (event.event !== undefined && event.event !== "message") out += `event: ${event.event}\n`;
  if (event.retry !== undefined) out += `retry: ${event.retry}\n`;
  const data = event.data;
  if (data.indexOf("\n") < 0 && data.indexOf("\r") < 0) return `${out}data: ${data}\n\n`;
  for (const line of data.split(/\r\n|\r|\n/)) out += `data: ${line}\n`;
  return out + "\n";
}

/** A comment line: keeps the connection alive, ignored by every reader. */
export function encodeComment(text = ""): string {
  return `: ${text.replace(/[\r\n]+/g, " ")}\n\n`;
}

/**
 * A message as an event, `id:` = message id. Text mode: the payload itself when it is UTF-8
 * without a CR (a reader cannot tell CR from LF), else an `event: base64` event. JSON mode: the
 * message envelope, exact for every payload.
 */
export function encodeMessageEvent(message: EnvelopeSource, json: boolean): string {
  if (json) return `id: ${message.id}\ndata: ${encodeEnvelope(message)}\n\n`;
  const payload = message.payload;
  if (payload.indexOf(13) < 0 && isUtf8(payload)) return encodeEvent({ id: message.id, data: decoder.decode(payload) });
  const base64 = Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength).toString("base64");
  return `id: ${message.id}\nevent: ${BASE64_EVENT}\ndata: ${base64}\n\n`;
}

/** Parses an event stream fed in chunks of any size; returns the events each chunk completed. */
export class SseParser {
  private readonly text = new TextDecoder("utf-8");
  private buffer = "";
  private started = false;
  /** A chunk ended in CR: an LF opening the next one belongs to the same line end. */
  private afterCR = false;
  private data: string[] = [];
  private type = "";
  lastEventId = "";
  /** The last `retry:` the server sent: how long a reader should wait before reconnecting (ms). */
  reconnectMs: number | undefined;

  feed(chunk: Uint8Array | string): SseEvent[] {
    let text = typeof chunk === "string" ? chunk : this.text.decode(chunk, { stream: true });
    if (!this.started && text.length > 0) {
      this.started = true;
      if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
    }
    if (text.length === 0) return [];
    if (this.afterCR && text.charCodeAt(0) === 10) text = text.slice(1);
    this.afterCR = false;
    this.buffer += text;
    const events: SseEvent[] = [];
    let start = 0;
    for (let i = 0; i < this.buffer.length; i++) {
      const c = this.buffer.charCodeAt(i);
      if (c !== 10 && c !== 13) continue;
      this.line(this.buffer.slice(start, i), events);
      if (c === 13) {
        if (i + 1 === this.buffer.length) this.afterCR = true;
        else if (this.buffer.charCodeAt(i + 1) === 10) i++;
      }
      start = i + 1;
    }
    this.buffer = this.buffer.slice(start);
    return events;
  }

  private line(line: string, events: SseEvent[]): void {
    if (line === "") {
      this.dispatch(events);
      return;
    }
    if (line.charCodeAt(0) === 58) return; // ":" comment
    const colon = line.indexOf(":");
    const name = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? "" : line.slice(colon + 1);
    if (value.charCodeAt(0) === 32) value = value.slice(1);
    switch (name) {
      case "data":
        this.data.push(value);
        break;
      case "event":
        this.type = value;
        break;
      case "id":
        if (!value.includes("\0")) this.lastEventId = value;
        break;
      case "retry":
        if (/^\d+$/.test(value)) this.reconnectMs = Number(value);
        break;
    }
  }

  private dispatch(events: SseEvent[]): void {
    if (this.data.length === 0) {
      this.type = "";
      return;
    }
    events.push({ type: this.type || "message", data: this.data.join("\n"), id: this.lastEventId });
    this.data = [];
    this.type = "";
  }
}
