// Limit orders through the whole agent with TRADING_MODE=live: ccxt places them on the Binance
// stand-in (LIMIT with timeInForce, as Binance requires), the position monitor books a fill made
// later by a counterparty, and /cancel_order cancels on the exchange. Throwaway keys, test-only.
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { runPositionMonitor } from "../jobs/positionMonitor.js";
import { runPendingOrders } from "../jobs/pendingOrders.js";
import { runReconciliation } from "../jobs/reconcile.js";
import { loadCandles } from "../src/market/candles.js";
import { BinanceStandIn, candlesEndingNow } from "./support/exchangeStandIn.js";
import { startTestApp, testConfig, type TestApp } from "./support/app.js";

const KEY = "live-test-key-aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
const SECRET = "live-test-secret-bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";
const btc = loadCandles(join(fileURLToPath(new URL("../data/ohlcv/", import.meta.url)), "BTC_USDT_2h.csv"));

let standIn: BinanceStandIn;
let t: TestApp | undefined;

beforeEach(async () => {
  standIn = await BinanceStandIn.start({
    apiKey: KEY,
    secret: SECRET,
    symbols: [{ id: "BTCUSDT", base: "BTC", quote: "USDT", candles: candlesEndingNow(btc, 300) }],
    balances: { USDT: 10_000 },
  });
});
afterEach(async () => {
  await t?.app.stop();
  t = undefined;
  await standIn.stop();
});

async function liveApp(): Promise<TestApp> {
  const config = testConfig((c) => {
    c.market.symbols = ["BTC/USDT"];
    c.market.source = "live";
    c.market.stream = "poll";
    c.exchange.mode = "live";
    c.exchange.apiKey = KEY;
    c.exchange.secret = SECRET;
    c.exchange.sandbox = true;
    c.exchange.apiUrl = standIn.url;
    Object.assign(c.risk, { maxVar95Pct: undefined });
  });
  t = await startTestApp(config, { clock: Date.now });
  return t;
}

describe("limit orders on a live exchange (Binance stand-in)", () => {
  it("rests a LIMIT GTC order, books and announces the fill a counterparty makes later, and is known to the reconciliation", async () => {
    const { app, run } = await liveApp();
    const below = Math.floor(standIn.price("BTCUSDT") * 0.9);
    const placed = await run(`/trade buy BTC 50 @ ${below}`);
    expect(placed.text).toMatch(/^Limit BUY [\d.]+ BTC @ [\d,.]+ placed, order [0-9a-f]{6}\. /);
    const [post] = standIn.posts();
    expect(post!.params).toMatchObject({ type: "LIMIT", side: "BUY", timeInForce: "GTC", price: expect.stringMatching(/^\d+(\.\d+)?$/) });
    expect(Number(post!.params.price)).toBe(below);
    expect(await app.services.portfolio.positions()).toEqual([]);
    // Our own open order is not "an order this agent did not place".
    const report = await runReconciliation(app);
    expect(report.drifts).toEqual([]);

    expect(await runPositionMonitor(app)).toBe(0);
    expect(await app.services.portfolio.positions()).toEqual([]);
    // The price falls to the limit, and a seller meets it on the exchange.
    standIn.setPrice("BTCUSDT", below);
    const resting = standIn.orders.find((o) => o.status === "NEW")!;
    standIn.fillLimit(resting.orderId, resting.origQty);
    await runPositionMonitor(app);
    const [position] = await app.services.portfolio.positions();
    expect(position!.entryPrice).toBeCloseTo(below, 6);
    expect(position!.stopLoss).toBeCloseTo(below * 0.97, 6);
    expect(t!.notices.of("trade").at(-1)!.text).toMatch(/^Limit BUY BTC @ [\d,.]+ \(order [0-9a-f]{6}, \/trade buy BTC 50 @ \d+ by tester-admin\) FILLED\nBUY /);
    expect(await app.services.openOrders.count()).toBe(0);
    expect(standIn.posts()).toHaveLength(1);
  });

  it("cancels on the exchange with /cancel_order, freeing the locked funds", async () => {
    const { run } = await liveApp();
    const below = Math.floor(standIn.price("BTCUSDT") * 0.9);
    const id = /order ([0-9a-f]{6})/.exec((await run(`/trade buy BTC 50 @ ${below}`)).text)![1]!;
    expect(standIn.balance("USDT")).toBeLessThan(10_000);
    const reply = await run(`/cancel_order ${id}`);
    expect(reply.text).toMatch(/^Cancelled the limit BUY/);
    expect(standIn.orders[0]!.status).toBe("CANCELED");
    expect(standIn.balance("USDT")).toBeCloseTo(10_000, 6);
  });

  it("a limit order whose answer was lost is looked up, found resting, and then waits with the open orders; never sent twice", async () => {
    const { app, run } = await liveApp();
    const below = Math.floor(standIn.price("BTCUSDT") * 0.9);
    standIn.dropNextOrderResponse = true;
    standIn.failLookups = 5;
    const sent = await run(`/trade buy BTC 50 @ ${below}`);
    expect(sent.text).toMatch(/sent to Binance \(sandbox\), but the exchange did not confirm it/);
    expect(await app.services.pending.count()).toBe(1);
    standIn.failLookups = 0;
    await runPendingOrders(app, { force: true });
    expect(await app.services.pending.count()).toBe(0);
    const [open] = await app.services.openOrders.all();
    expect(open).toMatchObject({ limitPrice: below, side: "buy", filledQty: 0 });
    expect(t!.notices.of("info").at(-1)!.text).toMatch(new RegExp(`^Order found: the limit BUY [\\d.]+ BTC @ ${below} \\(/trade buy BTC 50 @ ${below} by tester-admin\\), whose outcome was not known, is open on Binance \\(sandbox\\) as order ${open!.id}\\.`));
    expect(standIn.posts()).toHaveLength(1);
    standIn.setPrice("BTCUSDT", below);
    standIn.fillLimit(standIn.orders[0]!.orderId, standIn.orders[0]!.origQty);
    await runPositionMonitor(app);
    expect((await app.services.portfolio.positions())[0]!.entryPrice).toBeCloseTo(below, 6);
    expect(standIn.posts()).toHaveLength(1);
  });

  it("books a partial fill as it grows, once each, and forgets the order when it is filled", async () => {
    const { app, run } = await liveApp();
    const below = Math.floor(standIn.price("BTCUSDT") * 0.9);
    await run(`/trade buy BTC 50 @ ${below}`);
    standIn.setPrice("BTCUSDT", below);
    const order = standIn.orders[0]!;
    standIn.fillLimit(order.orderId, order.origQty / 2);
    await runPositionMonitor(app);
    await runPositionMonitor(app);
    const half = (await app.services.portfolio.positions())[0]!;
    expect(half.qty).toBeGreaterThan(0);
    expect(half.qty).toBeLessThan(order.origQty * 0.6);
    const [open] = await app.services.openOrders.all();
    expect(open!.filledQty).toBeCloseTo(half.qty, 12);
    expect(t!.notices.of("trade").filter((n) => /filled in part/.test(n.text))).toHaveLength(1);
    standIn.fillLimit(order.orderId, order.origQty);
    await runPositionMonitor(app);
    const full = (await app.services.portfolio.positions())[0]!;
    expect(full.qty).toBeGreaterThan(order.origQty * 0.99);
    expect(await app.services.openOrders.count()).toBe(0);
    expect(t!.notices.of("trade").filter((n) => /^Limit BUY .* FILLED/.test(n.text))).toHaveLength(1);
  });
});
