// The dashboard in a real headless Chromium (Debian's package, driven by playwright-core): opened
// by a link made with /dashboard, charts drawn, and a decision made with /decide BTC appearing
// live without a reload. CI installs chromium (.ci/run); without it this test fails and says so.
import { existsSync, mkdirSync } from "node:fs";
import { chromium, type Browser } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startDashboardFor } from "../src/dashboard/serve.js";
import type { DashboardServer } from "../src/dashboard/server.js";
import { projectPath } from "../src/paths.js";
import { startTestApp, testConfig, type TestApp } from "./support/app.js";
import { dashboardLink } from "./support/dashboard.js";

export const CHROMIUM = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";

/** The page's document, typed as far as the checks run in the browser use it (the tests compile without the DOM's types). */
type Dom = { document: { body: { dataset: Record<string, string | undefined> }; querySelectorAll(s: string): Iterable<{ textContent: string }> } };

let t: TestApp;
let server: DashboardServer;
let browser: Browser | undefined;

beforeAll(async () => {
  if (!existsSync(CHROMIUM)) {
    throw new Error(`No Chromium at ${CHROMIUM}: install Debian's package (apt-get install -y chromium; .ci/run does it) or set CHROMIUM_PATH. This test needs a real browser and does not skip.`);
  }
  t = await startTestApp(testConfig());
  server = await startDashboardFor(t.app, { host: "127.0.0.1", port: 0 });
  // Something in the books: a decision per symbol, and an equity point.
  for (const s of ["BTC", "ETH"]) {
    t.clock.advance(60_000);
    await t.run(`/decide ${s}`, "trader");
  }
  await t.app.services.portfolio.recordEquity(t.clock.now - 120_000, 10_000);
  await t.app.services.portfolio.recordEquity(t.clock.now, 10_050);
  browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"] });
}, 60_000);

afterAll(async () => {
  await browser?.close();
  await server?.stop();
  await t?.app.stop();
});

describe("the dashboard page in Chromium", () => {
  it("opens by a /dashboard link, draws its charts, and shows a new /decide BTC live", async () => {
    const { url } = await dashboardLink(t.app, { id: "u-admin", name: "tester-admin", platform: "console", role: "admin" });
    const page = await browser!.newPage({ viewport: { width: 412, height: 915 }, deviceScaleFactor: 1 });
    const problems: string[] = [];
    page.on("pageerror", (e) => problems.push(`page error: ${e.message}`));
    page.on("console", (m) => {
      if (m.type() === "error") problems.push(`console: ${m.text()}`);
    });
    const res = await page.goto(url);
    expect(res?.status()).toBe(200);
    await page.waitForSelector("body[data-ready='1']", { timeout: 20_000 });
    // Both charts drew into their canvases.
    await page.waitForSelector("#equity-chart[data-drawn='1'] canvas", { timeout: 10_000 });
    await page.waitForSelector("#price-chart[data-drawn='1'] canvas", { timeout: 10_000 });
    await page.waitForFunction(() => (globalThis as unknown as Dom).document.body.dataset.firstChart !== undefined, undefined, { timeout: 10_000 });
    expect(await page.isVisible("#paper")).toBe(true);
    expect(await page.textContent("#paper")).toBe("[PAPER]");
    expect(await page.locator("#diary li[data-id]").count()).toBe(2);
    // Live: the stream is open, and a decision made from the console shows up without a reload.
    await page.waitForSelector("#live.on", { timeout: 10_000 });
    const navigations: string[] = [];
    page.on("framenavigated", (f) => navigations.push(f.url()));
    t.clock.advance(60_000);
    const reply = await t.run("/decide BTC", "trader");
    expect(reply.error).toBeFalsy();
    const newest = (await t.app.services.ledger.recent(1))[0]!;
    expect(newest.symbol).toBe("BTC/USDT");
    await page.waitForSelector(`#diary li[data-id="${newest.id}"]`, { timeout: 15_000 });
    expect(navigations).toEqual([]);
    // The diary filter asks the API again.
    await page.selectOption("#diary-symbol", "ETH/USDT");
    await page.waitForFunction(() => {
      const items = [...(globalThis as unknown as Dom).document.querySelectorAll("#diary li[data-id]")];
      return items.length === 1 && items.every((li) => li.textContent.includes("ETH/USDT"));
    });
    await page.selectOption("#diary-symbol", "");
    await page.waitForSelector(`#diary li[data-id="${newest.id}"]`);
    mkdirSync(projectPath(".data"), { recursive: true });
    await page.screenshot({ path: projectPath(".data", "dashboard.png"), fullPage: true });
    expect(problems).toEqual([]);
    await page.close();
  }, 60_000);

  it("shows the page that says how to get a new link for a dead one", async () => {
    const page = await browser!.newPage();
    const res = await page.goto(`${server.url}/?t=not.valid`);
    expect(res?.status()).toBe(401);
    expect(await page.textContent("h1")).toMatch(/does not open the dashboard/);
    expect(await page.textContent("main")).toMatch(/\/dashboard/);
    await page.close();
  });
});
