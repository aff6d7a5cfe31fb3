// One message as the console shows it: text as text, JSON pretty-printed, anything else (not UTF-8)
// as a hex preview with a download button. Envelopes come from ?json (GET, SSE, peek).

import { h } from "./dom.ts";
import { bytes, time } from "./format.ts";

export interface Envelope {
  id: number;
  topic: string;
  created: number;
  deliveries: number;
  payload: string;
  encoding?: "base64";
  origin?: { topic: string; id: number; deliveries: number };
}

const HEX_PREVIEW = 256;

function decodeBase64(text: string): Uint8Array {
  const raw = atob(text);
  const out = new Uint8Array(raw.length);
  for (let i = 0; i < raw.length; i++) out[i] = raw.charCodeAt(i);
  return out;
}

/** `hexdump -C` style lines for the first bytes. */
export function hexPreview(data: Uint8Array): string {
  const lines: string[] = [];
  const shown = data.subarray(0, HEX_PREVIEW);
  for (let offset = 0; offset < shown.length; offset += 16) {
    const row = shown.subarray(offset, offset + 16);
    const hex = [...row].map((b) => b.toString(16).padStart(2, "0")).join(" ");
    const ascii = [...row].map((b) => (b >= 0x20 && b < 0x7f ? String.fromCharCode(b) : ".")).join("");
    lines.push(`${offset.toString(16).padStart(8, "0")}  ${hex.padEnd(47)}  ${ascii}`);
  }
  if (data.length > HEX_PREVIEW) lines.push(`… ${data.length - HEX_PREVIEW} more bytes`);
  return lines.join("\n");
}

/** Pretty JSON when the text is a JSON object or array, else undefined. */
function prettyJson(text: string): string | undefined {
  const start = text.trimStart()[0];
  if (start !== "{" && start !== "[") return undefined;
  try {
    return JSON.stringify(JSON.parse(text), null, 2);
  } catch {
    return undefined;
  }
}

function download(data: Uint8Array, name: string): void {
  const url = URL.createObjectURL(new Blob([data as BlobPart], { type: "application/octet-stream" }));
  const link = h("a", { href: url, download: name });
  document.body.appendChild(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10000);
}

export function renderMessage(m: Envelope): HTMLElement {
  const binary = m.encoding === "base64";
  const data = binary ? decodeBase64(m.payload) : undefined;
  const size = data ? data.length : new TextEncoder().encode(m.payload).length;
  const pretty = binary ? undefined : prettyJson(m.payload);
  const kind = binary ? "binary" : pretty !== undefined ? "json" : "text";
  const meta = [
    h("span", { class: "id" }, `#${m.id}`),
    h("time", { datetime: new Date(m.created).toISOString() }, time(m.created)),
    h("span", null, bytes(size)),
    h("span", { class: `kind ${kind}` }, kind),
    m.deliveries > 1 ? h("span", null, `delivered ${m.deliveries}×`) : null,
    m.origin ? h("span", null, `from ${m.origin.topic} #${m.origin.id}`) : null,
  ];
  const body = data
    ? [
        h("pre", { class: "payload hex" }, hexPreview(data)),
        h("button", { type: "button", class: "small", onclick: () => download(data, `${m.topic}-${m.id}.bin`) }, `Download ${bytes(size)}`),
      ]
    : h("pre", { class: `payload ${kind}` }, pretty ?? (m.payload === "" ? "(empty)" : m.payload));
  return h("article", { class: "message", "data-id": String(m.id) }, h("div", { class: "meta" }, meta), body);
}
