// Filled and not booked: never. The whole agent trading live through ccxt against the Binance
// stand-in, which fails the way an exchange behind a CDN does: the order is placed (and fills),
// then the answer is an HTML 500 page, and the lookups fail before they work. The order stays
// pending and is looked up (with backoff, across a restart) until it is found, then booked once
// with its stop; the reconciliation stays quiet meanwhile and books what it can prove is ours; and
// no chat reply carries the exchange's raw answer. Throwaway keys, test-only.
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { Redis } from "ioredis";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { runPositionMonitor } from "../jobs/positionMonitor.js";
import { runReconciliation } from "../jobs/reconcile.js";
import { decisionToAgentReply } from "../src/agent/scriptedModel.js";
import { redactSecrets, type Config } from "../src/config/config.js";
import { createLog } from "../src/log.js";
import { loadCandles } from "../src/market/candles.js";
import { BinanceStandIn, candlesEndingNow } from "./support/exchangeStandIn.js";
import { scriptedModels, startTestApp, testConfig, waitFor, type TestApp } from "./support/app.js";

const KEY = "fault-test-key-eeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeee";
const SECRET = "fault-test-secret-ffffffffffffffffffffffffffffffffffffffffffffffffff";
const btc = loadCandles(join(fileURLToPath(new URL("../data/ohlcv/", import.meta.url)), "BTC_USDT_2h.csv"));
// Scheduled decisions (started with the jobs) hold: only the test's own commands trade.
const hold = () => decisionToAgentReply({ symbol: "BTC/USDT", action: "hold", sizePct: 0, confidence: 0.5, reasons: ["flat"] });

let standIn: BinanceStandIn;
const apps: TestApp[] = [];
let logLines: string[];
/** The app's clock: real time (the stand-in's candles end now) plus what a test moves it on by. */
const clock = { offset: 0, now: () => Date.now() + clock.offset };

beforeEach(async () => {
  standIn = await BinanceStandIn.start({
    apiKey: KEY,
    secret: SECRET,
    symbols: [{ id: "BTCUSDT", base: "BTC", quote: "USDT", candles: candlesEndingNow(btc, 300) }],
    balances: { USDT: 10_000 },
  });
  logLines = [];
  clock.offset = 0;
});
afterEach(async () => {
  while (apps.length) await apps.pop()!.app.stop();
  await standIn.stop();
});

async function liveApp(url?: string, reply: () => string = hold): Promise<TestApp> {
  const config = testConfig((c: Config) => {
    c.market.symbols = ["BTC/USDT"];
    c.market.source = "live";
    c.market.stream = "poll";
    c.exchange.mode = "live";
    c.exchange.apiKey = KEY;
    c.exchange.secret = SECRET;
    c.exchange.sandbox = true;
    c.exchange.apiUrl = standIn.url;
    c.logLevel = "info";
  });
  const log = createLog("info", (s) => redactSecrets(s, config), (l) => logLines.push(l), { pretty: false });
  const t = await startTestApp(config, { models: scriptedModels(reply, 0), clock: clock.now, log, ...(url ? { url } : {}) });
  apps.push(t);
  return t;
}

const orderLookups = () => standIn.requests.filter((r) => r.method === "GET" && r.path === "/api/v3/order").length;
const reconciliationAlerts = (t: TestApp) => t.notices.notices.filter((n) => n.event?.type === "reconciliation");
/** What an exchange's raw error page would leave in a message. */
const RAW = /<|DOCTYPE|CloudFront|cloudfront|Request ID|could not be satisfied|signature=|timestamp=/;

describe("an order the exchange placed and answered with an HTML 500", () => {
  it("stays pending, is looked up with backoff and across a restart, and is booked once with its stop; the reconciliation stays quiet", async () => {
    const first = await liveApp();
    standIn.html500AfterNextOrder = true;
    standIn.lookupFailure = "html500";
    standIn.failLookups = 2;

    const reply = await first.run("/trade buy BTC 50");
    // The user hears that it is not known yet and being checked: never "failed", never the page.
    expect(reply.error).toBeFalsy();
    expect(reply.text).toMatch(/^Order BUY [\d.]+ BTC sent to Binance \(sandbox\), but the exchange did not confirm it: the exchange is not available \(HTTP 500 Internal Server Error\)\./);
    expect(reply.text).toMatch(/Its outcome is not known yet: it is being looked up by its client order id, and you will be told what happened/);
    expect(reply.text).not.toMatch(/failed/i);
    expect(reply.text).not.toMatch(RAW);
    // It did fill on the exchange; the books do not have it yet; the journal does.
    expect(standIn.orders).toHaveLength(1);
    expect(standIn.orders[0]!.status).toBe("FILLED");
    expect(await first.app.services.portfolio.positions()).toEqual([]);
    const [pending] = await first.app.services.pending.all();
    expect(pending).toMatchObject({ symbol: "BTC/USDT", side: "buy", state: "unknown", lookups: 1, origin: "/trade buy BTC 50 by tester-admin" });
    expect(pending!.exits!.stopLoss).toBeLessThan(standIn.price("BTCUSDT"));
    expect(orderLookups()).toBe(1); // the adapter's own lookup right after the 500: it failed
    // The log has the whole story (the page included), with the keys redacted.
    expect(logLines.join("\n")).toContain("Generated by cloudfront");
    expect(logLines.join("\n")).not.toContain(SECRET);

    // The exchange holds BTC the books do not: explained by the order being looked up, no alert.
    const report = await runReconciliation(first.app);
    expect(report.drifts).toEqual([]);
    expect(report.explained).toEqual([{ symbol: "BTC/USDT", why: "an order is being looked up (its outcome is not known yet)" }]);
    expect(reconciliationAlerts(first)).toEqual([]);

    // Before its backoff the monitor does not ask; after it, it asks (and the lookup fails again).
    await runPositionMonitor(first.app);
    expect(orderLookups()).toBe(1);
    clock.offset += 5_000;
    await runPositionMonitor(first.app);
    expect(orderLookups()).toBe(2);
    expect(await first.app.services.portfolio.positions()).toEqual([]);
    expect((await first.app.services.pending.all())[0]).toMatchObject({ lookups: 2, reason: expect.stringMatching(/HTTP 500/) });
    // A second order on the symbol waits for the first one's outcome.
    const second = await first.run("/trade buy BTC 20");
    expect(second.text).toMatch(/an earlier buy order for BTC\/USDT \(\/trade buy BTC 50 by tester-admin\) was sent but its outcome is not known yet/);
    expect(standIn.posts()).toHaveLength(1);
    await runReconciliation(first.app);
    expect(reconciliationAlerts(first)).toEqual([]);

    // A restart in the middle: a new app on the same Redis resumes the lookups at once, and this one works.
    await first.app.stop();
    apps.splice(apps.indexOf(first), 1);
    const again = await liveApp(first.url);
    await again.app.startJobs();
    const found = await waitFor("the order found and told", async () => again.notices.notices.find((n) => n.event?.type === "order-resolved"));
    expect(orderLookups()).toBe(3);
    const order = standIn.orders[0]!;
    const avg = order.quoteQty / order.executedQty;
    expect(found.kind).toBe("trade");
    expect(found.text).toMatch(/^Order found: the BUY order for BTC\/USDT \(\/trade buy BTC 50 by tester-admin\), whose outcome was not known, FILLED; it is booked now\./);
    expect(found.text).toMatch(/\nBUY 0\.000\d+ BTC @ [\d,.]+ = 4\d\.\d\d USDT, fee [\d.]+ \(filled\)\nStop loss [\d,.]+ · take profit [\d,.]+$/);
    const [position] = await again.app.services.portfolio.positions();
    expect(position!.qty).toBeCloseTo(standIn.balance("BTC"), 12);
    expect(position!.qty).toBeCloseTo(order.executedQty * 0.999, 12);
    expect(position!.entryPrice).toBeCloseTo(avg, 6);
    expect(position!.stopLoss).toBeCloseTo(pending!.exits!.stopLoss, 6);
    expect(position!.takeProfit).toBeCloseTo(pending!.exits!.takeProfit, 6);
    expect(await again.app.services.pending.all()).toEqual([]);

    // Booked once: more monitor runs and reconciliations change nothing and alert nothing.
    clock.offset += 60_000;
    await runPositionMonitor(again.app);
    await runReconciliation(again.app);
    expect((await again.app.services.portfolio.positions())[0]!.qty).toBe(position!.qty);
    expect(again.notices.notices.filter((n) => n.event?.type === "order-resolved")).toHaveLength(1);
    expect(reconciliationAlerts(again)).toEqual([]);
    expect(standIn.posts()).toHaveLength(1);

    // What it bought is sold in full: nothing is left on the exchange without a stop.
    const sold = await again.run("/trade sell BTC all");
    expect(sold.text).toMatch(/Manual SELL/);
    expect(standIn.balance("BTC")).toBeLessThan(0.00001);
    expect(await again.app.services.portfolio.positions()).toEqual([]);
  });

  it("an order that never reached the exchange is proven absent: the journal closes and the user is told nothing was bought", async () => {
    const t = await liveApp();
    standIn.dropNextOrderRequest = true;
    const reply = await t.run("/trade buy BTC 50");
    expect(reply.text).toMatch(/did not confirm it: the connection to the exchange failed\.[\s\S]*not known yet/);
    expect(standIn.orders).toHaveLength(0);
    // Not listed: looked up again later, and only long enough after the send is that proof.
    clock.offset += 5_000;
    await runPositionMonitor(t.app);
    expect(await t.app.services.pending.all()).toHaveLength(1);
    clock.offset += 120_000;
    await runPositionMonitor(t.app);
    expect(await t.app.services.pending.all()).toEqual([]);
    const told = t.notices.notices.find((n) => n.event?.type === "order-resolved")!;
    expect(told.text).toMatch(/^Order not placed: the BUY order for BTC\/USDT \(\/trade buy BTC 50 by tester-admin\), whose outcome was not known, is not on the exchange \(asked \d times\): nothing was bought\.$/);
    expect(await t.app.services.portfolio.positions()).toEqual([]);
    // The symbol is free again.
    expect((await t.run("/trade buy BTC 50")).text).toMatch(/^Manual BUY/);
    expect(standIn.orders).toHaveLength(1);
  });

  it("asks the team, once, to look at the exchange when an order stays unknown after many lookups", async () => {
    const t = await liveApp();
    standIn.html500AfterNextOrder = true;
    standIn.lookupFailure = "html500";
    standIn.failLookups = 100;
    await t.run("/trade buy BTC 50");
    const overdue = () => t.notices.notices.filter((n) => n.event?.type === "order-overdue");
    // 5, 10, 20, 40, 80, 160 s of backoff: the 7th lookup is about 5 minutes after the send.
    for (let run = 0; run < 8; run++) {
      clock.offset += 11 * 60_000;
      await runPositionMonitor(t.app);
    }
    expect(orderLookups()).toBe(9);
    expect(overdue()).toHaveLength(1);
    expect(overdue()[0]!.kind).toBe("alert");
    expect(overdue()[0]!.text).toMatch(/^The BUY order for BTC\/USDT \(\/trade buy BTC 50 by tester-admin\), sent at \d\d:\d\d:\d\d UTC, is still not known after 7 lookups \(Binance \(sandbox\): looking up an order failed: the exchange is not available \(HTTP 500 Internal Server Error\)\)\. It is still looked up; check it on the exchange\./);
    expect(await t.app.services.portfolio.positions()).toEqual([]);
    expect(standIn.posts()).toHaveLength(1);
    // When the exchange answers again, it is found and booked like any other.
    standIn.failLookups = 0;
    clock.offset += 11 * 60_000;
    await runPositionMonitor(t.app);
    expect((await t.app.services.portfolio.positions())[0]!.qty).toBeCloseTo(standIn.balance("BTC"), 12);
  });

  it("a scheduled decision whose order is pending says so, and its record is brought up to date when the order is found", async () => {
    const buy = () => decisionToAgentReply({ symbol: "BTC/USDT", action: "buy", sizePct: 5, confidence: 0.8, reasons: ["scripted buy"] });
    const t = await liveApp(undefined, buy);
    standIn.html500AfterNextOrder = true;
    standIn.failLookups = 1;
    const record = await t.app.decide({ decisionId: "sched:BTC/USDT:77", symbol: "BTC/USDT", trigger: "schedule" });
    expect(record.outcome).toBe("pending");
    expect(record.pendingOrder).toMatchObject({ side: "buy", reason: "the exchange is not available (HTTP 500 Internal Server Error)" });
    // Run again under the same id (a retried job): nothing is sent again.
    await t.app.decide({ decisionId: "sched:BTC/USDT:77", symbol: "BTC/USDT", trigger: "schedule" });
    expect(standIn.posts()).toHaveLength(1);
    clock.offset += 5_000;
    await runPositionMonitor(t.app);
    const updated = await t.app.services.ledger.get("sched:BTC/USDT:77");
    expect(updated).toMatchObject({ outcome: "order", order: { side: "buy", status: "filled" } });
    expect(updated!.pendingOrder).toBeUndefined();
    expect((await t.app.services.portfolio.positions())[0]!.qty).toBeCloseTo(standIn.balance("BTC"), 12);
  });
});

describe("an exit the exchange placed and answered with an HTML 500", () => {
  it("is told once, never sent twice, and closes the position when it is found", async () => {
    const t = await liveApp();
    expect((await t.run("/trade buy BTC 50")).text).toMatch(/^Manual BUY/);
    const [position] = await t.app.services.portfolio.positions();
    const low = position!.stopLoss * 0.999;
    standIn.setCandles("BTCUSDT", [...standIn.candles("BTCUSDT"), { time: Date.now(), open: position!.entryPrice, high: position!.entryPrice, low, close: low, volume: 3 }]);
    standIn.html500AfterNextOrder = true;
    standIn.failLookups = 2;
    expect(await runPositionMonitor(t.app)).toBe(0);
    const sells = () => standIn.posts().filter((p) => p.params.side === "SELL").length;
    expect(sells()).toBe(1);
    expect(standIn.balance("BTC")).toBeLessThan(0.00001);
    const alert = t.notices.notices.find((n) => n.event?.type === "order-pending")!;
    expect(alert.kind).toBe("alert");
    expect(alert.text).toBe(
      "The stop loss of BTC/USDT: the SELL order for BTC/USDT was sent to Binance (sandbox) but not confirmed: the exchange is not available (HTTP 500 Internal Server Error). Its outcome is not known yet: it is being looked up by its client order id, and nothing is sent again for it meanwhile.",
    );
    // The stop is still hit on the next run: the same exit is looked up (it fails again), never sent again.
    expect(await runPositionMonitor(t.app)).toBe(0);
    expect(sells()).toBe(1);
    expect(t.notices.notices.filter((n) => n.event?.type === "order-pending")).toHaveLength(1);
    clock.offset += 5_000;
    await runPositionMonitor(t.app);
    expect(await t.app.services.portfolio.positions()).toEqual([]);
    const found = t.notices.notices.find((n) => n.event?.type === "order-resolved")!;
    expect(found.text).toMatch(/^Order found: the SELL order for BTC\/USDT \(the stop loss of BTC\/USDT\), whose outcome was not known, FILLED; it is booked now\.\nSELL [\d.]+ BTC @ [\d,.]+ = [\d.]+ USDT, fee [\d.]+ \(filled\)\nRealized P&L -[\d.]+ USDT$/);
    expect(sells()).toBe(1);
    expect(reconciliationAlerts(t)).toEqual([]);
  });
});

describe("the reconciliation", () => {
  it("raises no alert while an order is in flight", async () => {
    const t = await liveApp();
    let release!: () => void;
    standIn.holdNextOrderResponse = new Promise<void>((r) => (release = r));
    const trade = t.run("/trade buy BTC 50");
    // The order is on the exchange (filled) and its answer has not come back.
    await waitFor("the order on the exchange", async () => standIn.orders.length === 1);
    const report = await runReconciliation(t.app);
    expect(report.drifts).toEqual([]);
    expect(report.explained).toEqual([{ symbol: "BTC/USDT", why: "an order is in flight" }]);
    release();
    expect((await trade).text).toMatch(/^Manual BUY/);
    const after = await runReconciliation(t.app);
    expect(after.drifts).toEqual([]);
    expect(after.explained).toBeUndefined();
    expect(reconciliationAlerts(t)).toEqual([]);
  });

  it("books an order of ours that filled and never reached the books, and alerts only on what it cannot explain", async () => {
    const t = await liveApp();
    standIn.html500AfterNextOrder = true;
    standIn.failLookups = 1;
    await t.run("/trade buy BTC 50");
    // The journal entry is lost (a version before the journal, a Redis restored from an old copy).
    const redis = new Redis(t.url);
    await redis.del("orders:pending");
    await redis.quit();
    const report = await runReconciliation(t.app);
    expect(report.drifts).toEqual([]);
    const told = t.notices.notices.find((n) => n.event?.type === "order-resolved")!;
    expect(told.text).toMatch(/^Reconciliation: the BUY order for BTC\/USDT \(client order id manual:[\w-]+\) filled on the exchange and was missing from the books; it is booked now\./);
    expect(told.text).toMatch(/Stop loss [\d,.]+ · take profit [\d,.]+ \(the default levels, from its fill price\)/);
    const [position] = await t.app.services.portfolio.positions();
    expect(position!.qty).toBeCloseTo(standIn.balance("BTC"), 12);
    expect(position!.stopLoss).toBeCloseTo(position!.entryPrice * 0.97, 6);
    expect(reconciliationAlerts(t)).toEqual([]);

    // A fill of someone else's (the web UI) is not ours to book: it is reported.
    standIn.placeForeignOrder("BTCUSDT", "BUY", 0.001, Math.ceil(standIn.price("BTCUSDT") * 1.01));
    const later = await runReconciliation(t.app);
    expect(later.drifts.map((d) => [d.symbol, d.kind])).toEqual([["BTC/USDT", "size"]]);
    expect(reconciliationAlerts(t)).toHaveLength(1);
    expect((await t.app.services.portfolio.positions())[0]!.qty).toBe(position!.qty);
  });
});

describe("a chat reply never carries the exchange's raw answer", () => {
  it("reduces an HTML 500 to a short plain message, and logs the whole of it", async () => {
    const t = await liveApp();
    standIn.failAccount = 1;
    const balance = await t.run("/balance");
    expect(balance.error).toBe(true);
    expect(balance.text).toBe("/balance failed: Binance (sandbox): reading the balances failed: the exchange is not available (HTTP 500 Internal Server Error)");

    standIn.klinesFailure = "html500";
    standIn.failKlines = 5;
    const decide = await t.run("/decide BTC");
    expect(decide.text).toBe("/decide failed: Binance: reading the BTC/USDT candles failed: the exchange is not available (HTTP 500 Internal Server Error)");
    standIn.failKlines = 0;

    standIn.html500AfterNextOrder = true;
    standIn.lookupFailure = "html500";
    standIn.failLookups = 1;
    const trade = await t.run("/trade buy BTC 50");
    for (const text of [balance.text, decide.text, trade.text]) {
      expect(text).not.toMatch(RAW);
      expect(text.length).toBeLessThan(500);
    }
    const logged = logLines.join("\n");
    expect(logged).toContain("ERROR: The request could not be satisfied");
    expect(logged).not.toContain(KEY);
    expect(logged).not.toContain(SECRET);
  });
});
