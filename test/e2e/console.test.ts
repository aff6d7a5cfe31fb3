// The web console in a real browser (Debian's chromium driven by playwright-core, one browser for
// the file): the overview, the live tail, publish, peek, take, purge, delete, the token prompt, a
// phone's width, the keyboard, a server that goes away and comes back, and --no-console.
// MSGBUS_SCREENSHOTS=1 (`bun run screenshots`) also writes the README's screenshots to docs/.

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { type Browser, type BrowserContext, chromium, type Page } from "playwright-core";
import { cleanupAll, Output, runCli, spawnTracked, startServer, type TestServer } from "../helpers/index.ts";
import { Resp } from "./transports.ts";

// page.evaluate and waitForFunction callbacks run in the browser: the globals they use, for this
// file only (the project's types are Bun's, without the DOM's).
declare const document: any;
declare const window: any;
declare const location: any;
declare function getComputedStyle(element: any): any;

const CHROMIUM = "/usr/bin/chromium";
const hasChromium = existsSync(CHROMIUM);
const hasRedisCli = Bun.which("redis-cli") !== null;
const SCREENSHOTS = process.env.MSGBUS_SCREENSHOTS === "1";
const DOCS = join(import.meta.dir, "..", "..", "docs");
const TOKEN = "s3cret-console";

if (!hasChromium) {
  // CI installs chromium (.ci/run): there a missing browser fails the file instead of skipping it.
  if (process.env.CI) throw new Error(`${CHROMIUM} is missing: .ci/run installs Debian's chromium for the console's browser tests`);
  console.warn(`console.test.ts skipped: ${CHROMIUM} is missing (Debian: apt-get install chromium)`);
}

afterAll(() => cleanupAll());

let topicCount = 0;
const fresh = (name: string) => `${name}-${++topicCount}`;

/** redis-cli when it is installed (CI has it), else the same command over a raw RESP socket. */
async function redis(server: TestServer, args: string[]): Promise<string> {
  if (hasRedisCli) {
    const proc = spawnTracked(["redis-cli", "-p", String(server.port), ...args]);
    const out = new Output(proc.stdout);
    const code = await proc.exited;
    await out.done;
    if (code !== 0) throw new Error(`redis-cli ${args.join(" ")} exited with ${code}`);
    return out.text().trim();
  }
  const resp = await Resp.connect(server.port);
  try {
    return String(await resp.send(args));
  } finally {
    resp.close();
  }
}

async function depthOf(server: TestServer, topic: string, headers: Record<string, string> = {}): Promise<number | undefined> {
  const response = await fetch(`${server.httpUrl}/_/topics/${topic}`, { headers });
  if (response.status === 404) return undefined;
  return ((await response.json()) as { depth: number }).depth;
}

/** Waits until the element `selector` names holds `text` (its whole text, or a part of it). */
async function waitForText(page: Page, selector: string, text: string, timeout = 5000): Promise<void> {
  await page.waitForFunction(([sel, want]) => [...document.querySelectorAll(sel!)].some((el: any) => el.textContent?.includes(want!)), [selector, text], {
    timeout,
  });
}

describe.skipIf(!hasChromium)("web console", () => {
  let browser: Browser;
  let server: TestServer;
  let desktop: BrowserContext;

  beforeAll(async () => {
    [browser, server] = await Promise.all([
      // launch() gives every run a fresh, throwaway profile (its own --user-data-dir).
      chromium.launch({
        executablePath: CHROMIUM,
        headless: true,
        args: [
          "--no-sandbox",
          "--disable-gpu",
          "--disable-quic",
          "--no-first-run",
          "--disable-background-networking",
          "--disable-component-update",
          "--disable-sync",
        ],
      }),
      startServer(),
    ]);
    desktop = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  });
  afterAll(async () => {
    await browser?.close();
  });

  async function open(hash = "#/", context = desktop, target = server): Promise<Page> {
    const page = await context.newPage();
    const errors: string[] = [];
    page.on("pageerror", (error) => errors.push(error.message));
    page.on("console", (message) => {
      if (message.type() === "error" && !/Failed to load resource|ERR_CONNECTION_REFUSED|EventSource/.test(message.text())) errors.push(message.text());
    });
    (page as Page & { errors: string[] }).errors = errors;
    await page.goto(`${target.httpUrl}/${hash}`);
    return page;
  }

  /** Opens a topic and waits until its tail is subscribed. */
  async function openTopic(topic: string, context = desktop, target = server): Promise<Page> {
    const page = await open(`#/topic/${topic}`, context, target);
    await page.waitForSelector('.status[data-state="live"]', { timeout: 5000 });
    return page;
  }

  function noErrors(page: Page): void {
    expect((page as Page & { errors: string[] }).errors).toEqual([]);
  }

  test("GET / gives browsers the console (one page, a strict CSP), JSON clients the topic list", async () => {
    const html = await fetch(`${server.httpUrl}/`, { headers: { accept: "text/html,application/xhtml+xml,*/*;q=0.8" } });
    expect(html.status).toBe(200);
    expect(html.headers.get("content-type")).toBe("text/html; charset=utf-8");
    expect(html.headers.get("content-security-policy")).toContain("default-src 'none'");
    const body = await html.text();
    expect(body).toContain("<title>msgbus</title>");
    expect(body).not.toMatch(/<script[^>]+src=|<link[^>]+href=/); // nothing from elsewhere: works offline
    expect(body.length).toBeLessThan(60_000);
    const list = await fetch(`${server.httpUrl}/`, { headers: { accept: "application/json" } });
    expect(list.headers.get("content-type")).toContain("application/json");
  });

  test("the overview lists topics created over TCP, with their counters, and follows them live", async () => {
    const orders = fresh("orders");
    const sensors = fresh("sensors");
    await redis(server, ["RPUSH", orders, "a", "b", "c"]);
    await redis(server, ["PUBLISH", sensors, '{"t":21.5}']);
    const page = await open();
    await waitForText(page, `tr[data-topic="${orders}"] td[data-label="Depth"]`, "3");
    await waitForText(page, `tr[data-topic="${sensors}"] td[data-label="Depth"]`, "1");
    expect(await page.textContent("#server")).toMatch(/up\s*\d+s.*memory.*\/ 256 MiB.*connections/s);
    // Without a reload: a take over TCP shows in the next poll.
    await redis(server, ["LPOP", orders]);
    await waitForText(page, `tr[data-topic="${orders}"] td[data-label="Depth"]`, "2");
    await page.click(`tr[data-topic="${orders}"] a`);
    await page.waitForSelector(`h1:text-is("${orders}")`);
    noErrors(page);
    await page.close();
  });

  test("a message published with redis-cli appears in the tail within a second; binary as hex with a download", async () => {
    const topic = fresh("live");
    const page = await openTopic(topic);
    await redis(server, ["PUBLISH", topic, '{"hello":"tail","n":[1,2]}']);
    await waitForText(page, ".tail-list .payload.json", '"hello": "tail"', 1000);
    const resp = await Resp.connect(server.port);
    await resp.putAll(topic, [new Uint8Array([0, 1, 2, 0xff, 0x41])]);
    resp.close();
    await waitForText(page, ".tail-list .payload.hex", "00 01 02 ff 41", 1000);
    const [download] = await Promise.all([page.waitForEvent("download"), page.click(".tail-list button:text('Download')")]);
    expect([...new Uint8Array(await Bun.file((await download.path())!).arrayBuffer())]).toEqual([0, 1, 2, 0xff, 0x41]);
    noErrors(page);
    await page.close();
  });

  test("pause holds what arrives and resume shows it; replay from an id shows the queued messages after it", async () => {
    const topic = fresh("replay");
    const page = await openTopic(topic);
    await page.click("button:text('Pause')");
    await redis(server, ["RPUSH", topic, "one", "two", "three"]);
    await waitForText(page, ".tail .status", "paused: 3 new");
    expect(await page.locator(".tail-list .message").count()).toBe(0);
    await page.click("button:text('Resume')");
    await waitForText(page, ".tail-list", "three");
    expect(await page.locator(".tail-list .message .id").allTextContents()).toEqual(["#3", "#2", "#1"]);
    await page.fill("#since", "1");
    await page.click("button:text-is('Replay')");
    await page.waitForFunction(() => document.querySelectorAll(".tail-list .message").length === 2);
    expect(await page.locator(".tail-list .message .id").allTextContents()).toEqual(["#3", "#2"]);
    noErrors(page);
    await page.close();
  });

  test("a message sent from the page (text, then a file) is taken by msgbus get", async () => {
    const topic = fresh("from-page");
    const page = await openTopic(topic);
    await page.fill("#publish-text", "sent from the browser");
    await page.click("button:text('Publish')");
    await waitForText(page, ".publish output", "Published #1");
    const env = { MSGBUS_URL: server.url };
    const text = await runCli(["get", topic], { env });
    expect(text.code).toBe(0);
    expect(text.stdoutText).toBe("sent from the browser");

    const bytes = new Uint8Array([0x89, 0x50, 0x4e, 0x47, 0, 255, 10, 13]);
    await page.setInputFiles("#publish-file", { name: "image.png", mimeType: "image/png", buffer: Buffer.from(bytes) });
    await page.click("button:text('Publish')");
    await waitForText(page, ".publish output", "Published #2 (image.png, 8 B)");
    const file = await runCli(["get", topic], { env });
    expect([...file.stdout]).toEqual([...bytes]);
    noErrors(page);
    await page.close();
  });

  test("peek shows queued messages and leaves them queued; take one takes the oldest", async () => {
    const topic = fresh("peek");
    await redis(server, ["RPUSH", topic, "first", "second"]);
    const page = await openTopic(topic);
    await page.click("button:text('Peek')");
    await waitForText(page, ".results", "The oldest 2 queued messages, left in the queue");
    expect(await page.locator(".results .payload").allTextContents()).toEqual(["first", "second"]);
    expect(await depthOf(server, topic)).toBe(2);
    await page.click("button:text('Take one')");
    await waitForText(page, ".results", "Taken");
    expect(await page.locator(".results .payload").allTextContents()).toEqual(["first"]);
    expect(await depthOf(server, topic)).toBe(1);
    noErrors(page);
    await page.close();
  });

  test("purge empties the topic after a confirmation; delete removes it after one, and cancel keeps it", async () => {
    const topic = fresh("tidy");
    await redis(server, ["RPUSH", topic, "a", "b", "c"]);
    const page = await openTopic(topic);
    await page.click("button:text('Purge…')");
    await page.click("#confirm-ok");
    await waitForText(page, ".results", "Purged 3 messages.");
    expect(await depthOf(server, topic)).toBe(0);

    await redis(server, ["RPUSH", topic, "d"]);
    await page.click("button:text('Delete topic…')");
    await page.click("#confirm-dialog button[value=cancel]");
    expect(await depthOf(server, topic)).toBe(1);
    await page.click("button:text('Delete topic…')");
    await waitForText(page, "#confirm-text", "every message it holds");
    await page.keyboard.press("Tab"); // from Cancel (focused first) to the dangerous button
    await page.keyboard.press("Enter");
    await page.waitForFunction(() => location.hash === "#/");
    expect(await depthOf(server, topic)).toBeUndefined();
    await page.waitForSelector(`tr[data-topic="${topic}"]`, { state: "detached" });
    noErrors(page);
    await page.close();
  });

  test("with --token it asks for the token once, says when it is wrong, and keeps it for the tab", async () => {
    const secured = await startServer({ args: ["--token", TOKEN] });
    const topic = fresh("secret");
    const resp = await Resp.connect(secured.port);
    await resp.send(["AUTH", TOKEN]);
    await resp.putAll(topic, [new TextEncoder().encode("queued")]);
    const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
    const page = await open("#/", context, secured);
    await page.waitForSelector("#token-dialog[open]");
    await page.fill("#token-input", "wrong");
    await page.keyboard.press("Enter");
    await waitForText(page, "#token-why", "refused");
    await page.waitForSelector("#token-dialog[open]");
    await page.fill("#token-input", TOKEN);
    await page.click("#token-dialog button[type=submit]");
    await waitForText(page, `tr[data-topic="${topic}"] td[data-label="Depth"]`, "1");

    // The tail's EventSource carries ?token=, publishing the Bearer header.
    await page.click(`tr[data-topic="${topic}"] a`);
    await page.waitForSelector('.status[data-state="live"]');
    await resp.putAll(topic, [new TextEncoder().encode("live with a token")]);
    await waitForText(page, ".tail-list", "live with a token");
    await page.fill("#publish-text", "from the page");
    await page.click("button:text('Publish')");
    await waitForText(page, ".publish output", "Published #3");

    await page.reload();
    await page.waitForSelector('.status[data-state="live"]');
    expect(await page.isVisible("#token-dialog")).toBe(false);
    resp.close();
    await context.close();
    await secured.stop();
  });

  test("at a phone's width (390×844) nothing scrolls sideways and every control is reachable, by touch and by keyboard", async () => {
    const topic = fresh("phone");
    await redis(server, ["RPUSH", topic, '{"reading":1}']);
    const phone = await browser.newContext({ viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true });
    const page = await open("#/", phone);
    await page.waitForSelector(`tr[data-topic="${topic}"]`);
    const fits = () => page.evaluate(() => document.documentElement.scrollWidth <= window.innerWidth);
    expect(await fits()).toBe(true);
    await page.tap(`tr[data-topic="${topic}"] a`);
    await page.waitForSelector('.status[data-state="live"]');
    expect(await fits()).toBe(true);
    for (const control of await page.locator("main button, main input, main textarea, main a").all()) {
      const box = (await control.boundingBox())!;
      expect(box.x).toBeGreaterThanOrEqual(0);
      expect(box.x + box.width).toBeLessThanOrEqual(390);
      expect(box.height).toBeGreaterThanOrEqual(24); // big enough to hit with a finger
    }
    // The keyboard reaches every control in reading order, with a visible focus ring.
    const reached: string[] = [];
    for (let i = 0; i < 30; i++) {
      await page.keyboard.press("Tab");
      const focused = await page.evaluate(() => {
        const el = document.activeElement;
        return el === document.body ? undefined : { label: el.textContent?.trim() || el.id, outline: getComputedStyle(el).outlineStyle };
      });
      if (!focused) break; // past the last control
      expect(focused.outline).not.toBe("none");
      reached.push(focused.label);
    }
    for (const control of ["publish-text", "publish-file", "Publish", "Peek", "Take one", "Purge…", "Delete topic…", "Pause", "Replay"]) {
      expect(reached).toContain(control);
    }
    expect(reached.indexOf("Publish")).toBeLessThan(reached.indexOf("Peek"));
    noErrors(page);
    await phone.close();
  });

  test("when the server goes away the page says so, and it reconnects by itself when it is back", async () => {
    const target = await startServer();
    const topic = fresh("restart");
    await redis(target, ["RPUSH", topic, "x"]);
    const page = await open("#/", desktop, target);
    await page.waitForSelector(`tr[data-topic="${topic}"]`);
    await target.stop();
    await page.waitForSelector("#offline:not([hidden])", { timeout: 5000 });
    expect(await page.textContent("#offline")).toContain("Cannot reach the msgbus server");
    const back = await startServer({ port: target.port, httpPort: target.httpPort });
    await redis(back, ["RPUSH", topic, "y"]);
    await page.waitForSelector("#offline", { state: "hidden", timeout: 6000 });
    await waitForText(page, `tr[data-topic="${topic}"] td[data-label="Depth"]`, "1");
    await page.close();
    await back.stop();
  });

  test("--no-console turns it off: GET / with Accept: text/html is a 404", async () => {
    const plain = await startServer({ args: ["--no-console"] });
    const response = await fetch(`${plain.httpUrl}/`, { headers: { accept: "text/html" } });
    expect(response.status).toBe(404);
    expect(response.headers.get("content-type")).toContain("application/json");
    const env = await startServer({ env: { MSGBUS_CONSOLE: "false" } });
    expect((await fetch(`${env.httpUrl}/`, { headers: { accept: "text/html" } })).status).toBe(404);
    await Promise.all([plain.stop(), env.stop()]);
  });

  test.skipIf(!SCREENSHOTS)(
    "screenshots for the README (MSGBUS_SCREENSHOTS=1)",
    async () => {
      const shots = await startServer();
      const resp = await Resp.connect(shots.port);
      const encode = (s: string) => new TextEncoder().encode(s);
      await resp.putAll(
        "orders",
        [1, 2, 3, 4, 5, 6, 7].map((n) => encode(JSON.stringify({ order: 1000 + n, item: "coffee", qty: n }))),
      );
      await resp.putAll("photos", [new Uint8Array([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0, 0, 0, 13, 0x49, 0x48, 0x44, 0x52, 0, 0, 1, 0])]);
      await resp.putAll("logs", [encode("GET /index.html 200 3ms"), encode("GET /api/items 200 12ms")]);
      await resp.send(["GET", "orders", "LEASE", "60"]);
      // A few seconds of traffic so the sparklines have something to draw.
      const phone = await browser.newContext({ viewport: { width: 390, height: 844 }, deviceScaleFactor: 2, isMobile: true, hasTouch: true });
      const overview = await open("#/", desktop, shots);
      const phoneOverview = await open("#/", phone, shots);
      const started = Date.now();
      for (let second = 0; Date.now() - started < 20000; second++) {
        const burst = 3 + Math.round(6 * Math.abs(Math.sin(second / 3)));
        await resp.putAll(
          "sensors",
          Array.from({ length: burst }, (_, i) => encode(JSON.stringify({ room: "kitchen", t: 21 + ((second + i) % 5) / 10 }))),
        );
        await resp.putAll(
          "jobs",
          Array.from({ length: 2 + (second % 4) }, (_, i) => encode(`resize photo ${second * 10 + i}`)),
        );
        for (let i = 0; i < 2 + (second % 3); i++) await resp.send(["GET", "jobs"]);
        await Bun.sleep(1000);
      }
      await overview.screenshot({ path: join(DOCS, "console-overview-desktop.png") });
      await phoneOverview.screenshot({ path: join(DOCS, "console-overview-phone.png") });
      const topicPage = await openTopic("orders", desktop, shots);
      await topicPage.fill("#since", "0");
      await topicPage.click("button:text-is('Replay')");
      await resp.putAll("orders", [encode('{"order":1008,"item":"tea","qty":2}')]);
      await topicPage.click("button:text('Peek')");
      await waitForText(topicPage, ".tail-list", "1008");
      await topicPage.screenshot({ path: join(DOCS, "console-topic-desktop.png") });
      const phoneTopic = await openTopic("photos", phone, shots);
      await phoneTopic.fill("#since", "0");
      await phoneTopic.click("button:text-is('Replay')");
      await waitForText(phoneTopic, ".tail-list", "00 00 00 0d");
      await phoneTopic.evaluate(() => document.querySelector(".tail")!.scrollIntoView());
      await phoneTopic.screenshot({ path: join(DOCS, "console-topic-phone.png") });
      resp.close();
      await phone.close();
      await shots.stop();
    },
    90000,
  );
});
