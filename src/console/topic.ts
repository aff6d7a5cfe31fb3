// One topic: its counters, a live tail (SSE with ?json envelopes: pause, replay from an id), and
// the actions of the HTTP API: publish text or a file, peek, take one, purge, delete.

import { ApiError, request, streamUrl, topicPath } from "./api.ts";
import { byId, h, setText } from "./dom.ts";
import { bytes, count } from "./format.ts";
import { type Envelope, renderMessage } from "./message.ts";
import type { Poller } from "./poller.ts";

const TOPIC_NAME = /^[A-Za-z0-9._:-]{1,128}$/;
/** Messages the tail keeps on screen, and those it holds while paused. */
const TAIL_SHOWN = 200;
const PAUSED_HELD = 1000;
const PEEK_COUNT = 20;

/** Asks with the page's <dialog>; resolves true when the person chose the dangerous button. */
function confirmAction(title: string, text: string, ok: string): Promise<boolean> {
  const dialog = byId<HTMLDialogElement>("confirm-dialog");
  setText(byId("confirm-title"), title);
  setText(byId("confirm-text"), text);
  setText(byId("confirm-ok"), ok);
  dialog.returnValue = "cancel";
  return new Promise((resolve) => {
    dialog.addEventListener("close", () => resolve(dialog.returnValue === "ok"), { once: true });
    dialog.showModal();
  });
}

function errorText(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

export function showTopic(main: HTMLElement, poller: Poller, name: string): () => void {
  if (!TOPIC_NAME.test(name) || name.startsWith("_") || name === "." || name === "..") {
    main.replaceChildren(
      h("nav", { class: "crumbs" }, h("a", { href: "#/" }, "← Topics")),
      h("h1", { tabindex: -1 }, "Not a topic name"),
      h("p", null, `"${name}": a topic is 1–128 characters from A-Z a-z 0-9 . _ - : and does not start with _.`),
    );
    return () => {};
  }
  const path = topicPath(name);
  const cleanups: (() => void)[] = [];

  // ---- counters ----
  const stat = (label: string) => {
    const dd = h("dd", null, "–");
    return { dd, el: h("div", null, h("dt", null, label), dd) };
  };
  const stats = {
    depth: stat("Depth"),
    bytes: stat("Bytes"),
    inflight: stat("In flight"),
    delayed: stat("Delayed"),
    subscribers: stat("Subscribers"),
    consumers: stat("Consumers"),
    lastId: stat("Last id"),
  };
  const absent = h("p", { class: "muted", hidden: true }, "This topic holds nothing yet: it is created by the first message written to it.");
  cleanups.push(
    poller.subscribe((result) => {
      if (!("snapshot" in result)) return;
      const t = result.snapshot.topics.find((x) => x.name === name);
      absent.hidden = t !== undefined;
      setText(stats.depth.dd, t ? count(t.depth) : "0");
      setText(stats.bytes.dd, t ? bytes(t.bytes) : "0 B");
      setText(stats.inflight.dd, t ? count(t.inflight) : "0");
      setText(stats.delayed.dd, t ? count(t.delayed) : "0");
      setText(stats.subscribers.dd, t ? count(t.subscribers) : "0");
      setText(stats.consumers.dd, t ? count(t.consumers) : "0");
      setText(stats.lastId.dd, t ? String(t.lastId) : "–");
    }),
  );

  // ---- publish ----
  const text = h("textarea", { id: "publish-text", name: "message", rows: 3, placeholder: '{"hello":"world"}', spellcheck: false });
  const file = h("input", { id: "publish-file", name: "file", type: "file" });
  const published = h("output", { class: "result", for: "publish-text" });
  const publish = h(
    "form",
    {
      class: "publish",
      onsubmit: async (e: Event) => {
        e.preventDefault();
        const chosen = file.files?.[0];
        try {
          const answer = (await (await request(path, { method: "POST", body: chosen ?? text.value })).json()) as { id: number };
          setText(published, `Published #${answer.id}${chosen ? ` (${chosen.name}, ${bytes(chosen.size)})` : ""}.`);
          text.value = "";
          file.value = "";
          poller.poll();
        } catch (error) {
          setText(published, `Not published: ${errorText(error)}`);
        }
      },
    },
    h("label", { for: "publish-text" }, "Message"),
    text,
    h("label", { for: "publish-file" }, "or a file"),
    file,
    h("div", { class: "actions" }, h("button", { type: "submit", class: "primary" }, "Publish"), published),
  );

  // ---- queue: peek, take, purge, delete ----
  const results = h("div", { class: "results", "aria-live": "polite" });
  const show = (heading: string, messages: Envelope[] = []) => {
    results.replaceChildren(h("p", { class: "result" }, heading), ...messages.map(renderMessage));
  };
  const failed = (what: string) => (error: unknown) => show(`${what} failed: ${errorText(error)}`);

  const peek = async () => {
    const messages = (await (await request(`${path}?peek&n=${PEEK_COUNT}`)).json()) as Envelope[];
    show(
      messages.length === 0
        ? "Nothing queued."
        : `The oldest ${messages.length === 1 ? "queued message" : `${messages.length} queued messages`}, left in the queue:`,
      messages,
    );
  };
  const take = async () => {
    const response = await request(`${path}?json`);
    if (response.status === 204) return show("The topic is empty: nothing to take.");
    show("Taken (it has left the queue):", [(await response.json()) as Envelope]);
    poller.poll();
  };
  const purge = async () => {
    const depth = poller.latest?.topics.find((t) => t.name === name)?.depth ?? 0;
    if (
      !(await confirmAction(
        `Purge ${name}?`,
        `Its ${count(depth)} queued message${depth === 1 ? "" : "s"} (and delayed ones) are dropped. The topic stays.`,
        "Purge",
      ))
    )
      return;
    const answer = (await (await request(`${path}?purge`, { method: "DELETE" })).json()) as { purged: number };
    show(`Purged ${count(answer.purged)} message${answer.purged === 1 ? "" : "s"}.`);
    poller.poll();
  };
  const remove = async () => {
    if (
      !(await confirmAction(
        `Delete ${name}?`,
        "The topic and every message it holds (queued, delayed and leased) are dropped. Its ids continue if it is written again.",
        "Delete topic",
      ))
    )
      return;
    tail.stop(); // our own stream is a subscriber: a topic in use cannot be deleted
    for (let attempt = 0; ; attempt++) {
      try {
        await request(path, { method: "DELETE" });
        break;
      } catch (error) {
        // The server may not have seen our stream go yet; anyone else's use is a real refusal.
        if (error instanceof ApiError && error.status === 400 && /in use/.test(error.message) && attempt < 10) {
          await new Promise((r) => setTimeout(r, 200));
          continue;
        }
        tail.start(tail.lastId);
        throw error;
      }
    }
    await poller.poll();
    location.hash = "#/";
  };
  const button = (label: string, action: () => Promise<void>, what: string, className = "") =>
    h("button", { type: "button", class: className, onclick: () => action().catch(failed(what)) }, label);

  // ---- live tail ----
  const tail = new Tail(path);
  cleanups.push(() => tail.stop());

  main.replaceChildren(
    h("nav", { class: "crumbs" }, h("a", { href: "#/" }, "← Topics")),
    h("div", { class: "heading" }, h("h1", { tabindex: -1 }, name)),
    h(
      "dl",
      { class: "stats" },
      Object.values(stats).map((s) => s.el),
    ),
    absent,
    h(
      "div",
      { class: "columns" },
      h(
        "div",
        null,
        h("section", { "aria-labelledby": "publish-title" }, h("h2", { id: "publish-title" }, "Publish"), publish),
        h(
          "section",
          { "aria-labelledby": "queue-title" },
          h("h2", { id: "queue-title" }, "Queue"),
          h(
            "div",
            { class: "actions" },
            button("Peek", peek, "Peek"),
            button("Take one", take, "Take"),
            button("Purge…", purge, "Purge", "danger"),
            button("Delete topic…", remove, "Delete", "danger"),
          ),
          results,
        ),
      ),
      tail.element,
    ),
  );
  tail.start(undefined);
  return () => {
    for (const cleanup of cleanups) cleanup();
  };
}

/** The live tail: an EventSource with ?json, newest message first; paused, it holds what comes. */
class Tail {
  readonly element: HTMLElement;
  lastId: number | undefined;
  private source: EventSource | undefined;
  private retry: ReturnType<typeof setTimeout> | undefined;
  private paused = false;
  private held: Envelope[] = [];
  private readonly list = h("div", { class: "tail-list" });
  private readonly status = h("span", { class: "status", role: "status" }, "connecting…");
  private readonly pause = h("button", { type: "button", "aria-pressed": "false", onclick: () => this.togglePause() }, "Pause");
  private readonly since = h("input", { id: "since", name: "since", type: "number", min: 0, inputmode: "numeric", placeholder: "0" });

  constructor(private readonly path: string) {
    const replay = h(
      "form",
      {
        class: "inline",
        onsubmit: (e: Event) => {
          e.preventDefault();
          this.list.replaceChildren();
          this.held = [];
          this.start(Number(this.since.value || 0));
        },
      },
      h("label", { for: "since" }, "Replay after id"),
      this.since,
      h("button", { type: "submit" }, "Replay"),
    );
    this.element = h(
      "section",
      { class: "tail", "aria-labelledby": "tail-title" },
      h("div", { class: "tail-head" }, h("h2", { id: "tail-title" }, "Live"), this.status),
      h("div", { class: "actions" }, this.pause, h("button", { type: "button", onclick: () => this.list.replaceChildren() }, "Clear"), replay),
      this.list,
    );
  }

  /** Opens the stream; `since` replays the still-queued messages after that id first. */
  start(since: number | undefined): void {
    this.stop();
    const source = new EventSource(streamUrl(this.path, { json: "", since: since === undefined ? undefined : String(since) }));
    this.source = source;
    source.onopen = () => this.setStatus(this.paused ? "paused" : "live", "live");
    source.onmessage = (e) => {
      const message = JSON.parse(e.data) as Envelope;
      this.lastId = message.id;
      if (this.paused) {
        this.held.push(message);
        if (this.held.length > PAUSED_HELD) this.held.shift();
        this.setStatus(`paused: ${this.held.length} new`, "paused");
      } else this.show([message]);
    };
    source.onerror = () => {
      if (source.readyState === EventSource.CONNECTING) {
        this.setStatus("reconnecting…", "down"); // the browser retries, resuming with Last-Event-ID
        return;
      }
      // Closed for good (a refusal, such as a token that was not there yet): try again ourselves.
      this.setStatus("reconnecting…", "down");
      source.close();
      this.retry = setTimeout(() => this.start(this.lastId ?? since), 2000);
    };
  }

  stop(): void {
    clearTimeout(this.retry);
    this.source?.close();
    this.source = undefined;
  }

  private setStatus(text: string, state: string): void {
    setText(this.status, text);
    this.status.dataset.state = state;
  }

  private togglePause(): void {
    this.paused = !this.paused;
    this.pause.setAttribute("aria-pressed", String(this.paused));
    setText(this.pause, this.paused ? "Resume" : "Pause");
    if (this.paused) {
      this.setStatus("paused", "paused");
      return;
    }
    this.show(this.held);
    this.held = [];
    const open = this.source?.readyState === EventSource.OPEN;
    this.setStatus(open ? "live" : "reconnecting…", open ? "live" : "down");
  }

  private show(messages: Envelope[]): void {
    for (const message of messages) this.list.prepend(renderMessage(message));
    while (this.list.childElementCount > TAIL_SHOWN) this.list.lastElementChild!.remove();
  }
}
