// The overview: every topic with its counters and a live sparkline of writes/s and takes/s,
// updated in place each second (rows are kept, so focus and scroll stay where they were).

import { h, setText } from "./dom.ts";
import { bytes, count, rate } from "./format.ts";
import type { Poller, TopicStats } from "./poller.ts";
import { drawSparkline, HISTORY, sparkline } from "./sparkline.ts";

interface Column {
  label: string;
  value: (t: TopicStats) => string;
  title?: string;
}

const COLUMNS: Column[] = [
  { label: "Depth", value: (t) => count(t.depth), title: "messages queued, ready to take" },
  { label: "Bytes", value: (t) => bytes(t.bytes), title: "what the topic holds: payloads plus 96 bytes a message, 500 more for a leased or nacked one" },
  { label: "In flight", value: (t) => count(t.inflight), title: "leased, not yet acked" },
  { label: "Delayed", value: (t) => count(t.delayed), title: "nacked with a delay, not yet back" },
  { label: "Subs", value: (t) => count(t.subscribers), title: "live subscribers" },
  { label: "Consumers", value: (t) => count(t.consumers), title: "consumers waiting for a message" },
  { label: "Drops", value: (t) => count(t.dropped + t.expired), title: "dropped or expired unconsumed" },
  { label: "Dead", value: (t) => count(t.deadLettered), title: "moved to the dead-letter topic" },
];

interface Row {
  tr: HTMLTableRowElement;
  cells: HTMLElement[];
  rates: HTMLElement;
  spark: SVGSVGElement;
}

export function showOverview(main: HTMLElement, poller: Poller): () => void {
  const rows = new Map<string, Row>();
  const tbody = h("tbody");
  const summary = h("p", { class: "muted", "aria-live": "polite" }, "Loading…");
  const empty = h(
    "p",
    { class: "empty", hidden: true },
    "No topics yet. A topic is created when something is written to it: ",
    h("code", null, `curl -d hello ${location.origin}${location.pathname}jobs`),
    ", or open one below.",
  );
  const name = h("input", {
    id: "open-topic",
    name: "topic",
    required: true,
    pattern: "[A-Za-z0-9._:\\-]{1,128}",
    placeholder: "jobs",
    autocapitalize: "none",
    spellcheck: false,
  });
  const open = h(
    "form",
    {
      class: "inline",
      onsubmit: (e: Event) => {
        e.preventDefault();
        location.hash = `#/topic/${encodeURIComponent(name.value.trim())}`;
      },
    },
    h("label", { for: "open-topic" }, "Open a topic"),
    name,
    h("button", { type: "submit" }, "Open"),
  );
  const table = h(
    "table",
    { class: "topics" },
    h("caption", { class: "sr-only" }, "Topics, their counters and their rates (writes and takes a second over the last three minutes)"),
    h(
      "thead",
      null,
      h(
        "tr",
        null,
        h("th", { scope: "col" }, "Topic"),
        COLUMNS.map((c) => h("th", { scope: "col", class: "num", title: c.title }, c.label)),
        h(
          "th",
          { scope: "col", class: "rate" },
          h("span", { class: "legend writes" }, "writes"),
          " / ",
          h("span", { class: "legend takes" }, "takes"),
          " a second",
        ),
      ),
    ),
    tbody,
  );
  main.replaceChildren(h("div", { class: "heading" }, h("h1", { tabindex: -1 }, "Topics"), summary), empty, h("div", { class: "table-wrap" }, table), open);

  const addRow = (t: TopicStats): Row => {
    const cells = COLUMNS.map((c) => h("td", { class: "num", "data-label": c.label }));
    const rates = h("span", { class: "rates" });
    const spark = sparkline();
    const tr = h(
      "tr",
      { "data-topic": t.name },
      h("th", { scope: "row" }, h("a", { href: `#/topic/${encodeURIComponent(t.name)}` }, t.name)),
      cells,
      h("td", { class: "rate", "data-label": "Rate" }, h("div", { class: "rate-cell" }, spark, rates)),
    );
    return { tr, cells, rates, spark };
  };

  const unsubscribe = poller.subscribe((result) => {
    if (!("snapshot" in result)) return; // the banner says why; the last numbers stay
    const topics = result.snapshot.topics;
    const seen = new Set<string>();
    let previous: HTMLTableRowElement | null = null;
    for (const t of topics) {
      seen.add(t.name);
      let row = rows.get(t.name);
      if (!row) rows.set(t.name, (row = addRow(t)));
      // Keep the server's order (by name) with the fewest moves.
      const wanted: ChildNode | null = previous ? previous.nextSibling : tbody.firstChild;
      if (wanted !== row.tr) tbody.insertBefore(row.tr, wanted);
      previous = row.tr;
      for (const [i, c] of COLUMNS.entries()) setText(row.cells[i]!, c.value(t));
      const series = poller.history.get(t.name);
      const writes = series?.writes ?? [];
      const takes = series?.takes ?? [];
      const w = writes.at(-1) ?? 0;
      const k = takes.at(-1) ?? 0;
      setText(row.rates, `${rate(w)} / ${rate(k)}`);
      drawSparkline(row.spark, writes, takes);
      row.spark.setAttribute(
        "aria-label",
        `${rate(w)} writes and ${rate(k)} takes a second now; peak ${rate(Math.max(0, ...writes, ...takes))} over ${HISTORY / 60} minutes`,
      );
    }
    for (const [name, row] of rows) {
      if (seen.has(name)) continue;
      row.tr.remove();
      rows.delete(name);
    }
    empty.hidden = topics.length > 0;
    table.hidden = topics.length === 0;
    setText(summary, `${topics.length} topic${topics.length === 1 ? "" : "s"}, ${count(topics.reduce((n, t) => n + t.depth, 0))} messages queued`);
  });
  return unsubscribe;
}
