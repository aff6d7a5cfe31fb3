// The web console's entry: the server line in the header, the "cannot reach the server" banner,
// and a hash router between the overview (#/) and a topic (#/topic/NAME).

import { onReachability } from "./api.ts";
import { byId, h } from "./dom.ts";
import { bytes, count, duration } from "./format.ts";
import { showOverview } from "./overview.ts";
import { Poller } from "./poller.ts";
import { showTopic } from "./topic.ts";

const poller = new Poller();
const main = byId("main");
const server = byId("server");
const offline = byId("offline");

function item(label: string, value: Node | string, title?: string): HTMLElement {
  return h("div", null, h("dt", null, label), h("dd", { title }, value));
}

let lastSeen = 0;
poller.subscribe((result) => {
  if (!("snapshot" in result)) {
    offline.hidden = false;
    const since = lastSeen ? ` (last answer ${Math.round((Date.now() - lastSeen) / 1000)} s ago)` : "";
    offline.textContent = `Cannot reach the msgbus server at ${location.host}: ${result.error}${since}. Retrying every 2 s…`;
    server.dataset.state = "down";
    return;
  }
  lastSeen = Date.now();
  offline.hidden = true;
  server.dataset.state = "up";
  const s = result.snapshot;
  const used = s.totals.bytes / s.totals.maxMemory;
  const connections = Object.values(s.connections).reduce((a, b) => a + b, 0);
  const meter = h("meter", { min: 0, max: 1, value: used, high: 0.8, "aria-label": "memory used of --max-memory" });
  server.replaceChildren(
    item("up", duration(s.uptime)),
    item(
      "memory",
      h("span", null, meter, ` ${bytes(s.totals.bytes)} / ${bytes(s.totals.maxMemory)}`),
      `messages held ${bytes(s.totals.bytes)} of the --max-memory budget ${bytes(s.totals.maxMemory)}${s.rss ? `; process resident memory ${bytes(s.rss)}` : ""}`,
    ),
    item(
      "connections",
      count(connections),
      Object.entries(s.connections)
        .map(([k, v]) => `${k} ${v}`)
        .join(", "),
    ),
    s.version ? item("version", s.version) : "",
  );
});
onReachability((up) => {
  if (up) offline.hidden = true;
});

let unmount: () => void = () => {};

function route(): void {
  unmount();
  const hash = decodeURIComponent(location.hash.replace(/^#/, ""));
  const topic = /^\/topic\/(.+)$/.exec(hash);
  unmount = topic ? showTopic(main, poller, topic[1]!) : showOverview(main, poller);
  document.title = topic ? `${topic[1]} · msgbus` : "msgbus";
  // A new view: its heading gets the focus, so keyboard and screen-reader users start there.
  if (document.activeElement !== document.body || location.hash) main.querySelector<HTMLElement>("h1")?.focus();
}

window.addEventListener("hashchange", route);
route();
poller.poll();
