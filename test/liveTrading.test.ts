// The whole agent with TRADING_MODE=live and MARKET_DATA=live, its ccxt clients talking over
// loopback to the Binance stand-in: decisions through the real pipeline, orders, the position
// monitor and reconciliation. Throwaway keys, test-only.
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { runDecisionJob } from "../jobs/decisionJob.js";
import { runPendingOrders } from "../jobs/pendingOrders.js";
import { runPositionMonitor } from "../jobs/positionMonitor.js";
import { loadCandles } from "../src/market/candles.js";
import { BinanceStandIn, candlesEndingNow } from "./support/exchangeStandIn.js";
import { buyReply, scriptedModels, startTestApp, testConfig, type TestApp } from "./support/app.js";

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

async function liveApp(reply = () => buyReply(5)): Promise<TestApp> {
  const config = testConfig((c) => {
    c.market.symbols = ["BTC/USDT"];
    c.market.source = "live";
    c.market.stream = "poll";
    c.exchange.mode = "live";
    c.exchange.apiKey = KEY;
    c.exchange.secret = SECRET;
    c.exchange.sandbox = true;
    c.exchange.apiUrl = standIn.url;
  });
  // The real clock: the stand-in's candles end now, and Binance checks request timestamps.
  t = await startTestApp(config, { models: scriptedModels(reply, 0), clock: Date.now });
  return t;
}

describe("live trading through ccxt against the Binance stand-in", () => {
  it("is live only because the configuration said so, and never echoes the keys", async () => {
    const { app, run } = await liveApp();
    expect(app.mode.trading).toBe("live");
    expect(app.services.exchange.name).toBe("Binance (sandbox)");
    const status = (await run("/status")).text;
    expect(status).toMatch(/LIVE on Binance \(sandbox\)/);
    expect(status).not.toContain(KEY);
    expect(app.redact(`key ${KEY} secret ${SECRET}`)).toBe("key [redacted] secret [redacted]");
  });

  it("places a filled order for a decision and books the position from the fill", async () => {
    const { app, run } = await liveApp();
    const price = standIn.price("BTCUSDT");
    const reply = await run("/decide BTC");
    expect(reply.text).toMatch(/BTC\/USDT: BUY 5\.0% of equity/);
    expect(reply.text).toMatch(/Order: BUY [\d.]+ BTC @ [\d,.]+, fee [\d.]+ \(filled\)/);
    expect(reply.text).not.toContain("[PAPER]");
    expect(standIn.posts()).toHaveLength(1);
    const [position] = await app.services.portfolio.positions();
    const order = standIn.orders[0]!;
    // 5% of 10,000 at the stand-in's price, truncated to the 0.00001 step; Binance kept 0.1% of the BTC
    expect(order.origQty).toBeCloseTo(Math.floor((500 / price) * 1e5) / 1e5, 10);
    expect(position!.qty).toBeCloseTo(order.executedQty * 0.999, 12);
    expect(position!.qty).toBeCloseTo(standIn.balance("BTC"), 12);
    expect(position!.stopLoss).toBeLessThan(price);
    expect((await run("/positions")).text).toMatch(/BTC\/USDT: 0\.00\d+ @ [\d,.]+[\s\S]*VaR 95%/);
  });

  it("books a partial fill as what was filled", async () => {
    const { app, run } = await liveApp();
    standIn.liquidity.BTCUSDT = 0.001;
    const reply = await run("/decide BTC");
    expect(reply.text).toMatch(/Order: BUY 0\.000999 BTC @ [\d,.]+, fee [\d.]+ \(partial\)/);
    const [position] = await app.services.portfolio.positions();
    expect(position!.qty).toBeCloseTo(0.000999, 12);
  });

  it("reports a rejected order in chat with the exchange's reason", async () => {
    const { app, run } = await liveApp();
    standIn.rejectNext = { code: -2010, msg: "Account has insufficient balance for requested action." };
    const reply = await run("/decide BTC");
    expect(reply.text).toContain("Order REJECTED by the exchange: Account has insufficient balance for requested action.");
    expect(await app.services.portfolio.positions()).toEqual([]);
    const [record] = await app.services.ledger.recent(1);
    expect(record!.outcome).toBe("refused");
  });

  it("a job whose order went out unconfirmed is pending, places no second order when retried, and is booked when found", async () => {
    const { app, notices } = await liveApp();
    // The order reaches the exchange, the reply is lost, and the lookup right after fails too.
    standIn.dropNextOrderResponse = true;
    standIn.failLookups = 1;
    const first = await runDecisionJob(app, "BTC/USDT", "job-42");
    expect(first!.outcome).toBe("pending");
    expect(notices.notices.at(-1)!.text).toMatch(/Scheduled decision[\s\S]*Order: BUY [\d.]+ BTC sent, but the exchange did not confirm it: the connection to the exchange failed\. Its outcome is not known yet/);
    expect(standIn.orders).toHaveLength(1);
    // BullMQ retries the job under the same id: nothing is sent again.
    await runDecisionJob(app, "BTC/USDT", "job-42");
    expect(standIn.posts()).toHaveLength(1);
    // The lookups (at startup, or after their backoff) find it and book it.
    await runPendingOrders(app, { force: true });
    const record = await app.services.ledger.get("sched:BTC/USDT:job-42");
    expect(record!.outcome).toBe("order");
    expect(record!.order!.status).toBe("filled");
    expect(standIn.orders).toHaveLength(1);
    expect((await app.services.portfolio.positions())[0]!.qty).toBeCloseTo(standIn.balance("BTC"), 12);
    expect(notices.notices.at(-1)!.text).toMatch(/^Order found: the BUY order for BTC\/USDT \(the scheduled decision sched:BTC\/USDT:job-42\)/);
  });

  it("closes a position whose stop the market gapped through, alerts, and cools down", async () => {
    const { app, run, notices } = await liveApp();
    await run("/decide BTC");
    const [position] = await app.services.portfolio.positions();
    // A new candle opens 8% below the entry, far under the stop: a gap, not a touch.
    const gapOpen = position!.entryPrice * 0.92;
    const now = Date.now();
    standIn.setCandles("BTCUSDT", [...standIn.candles("BTCUSDT"), { time: now, open: gapOpen, high: gapOpen * 1.001, low: gapOpen * 0.995, close: gapOpen, volume: 3 }]);
    const closed = await runPositionMonitor(app);
    expect(closed).toBe(1);
    expect(await app.services.portfolio.positions()).toEqual([]);
    const sell = standIn.orders.find((o) => o.side === "SELL")!;
    // the whole position, truncated to the exchange's 0.00001 step; the dust left is not a position
    expect(sell.executedQty).toBeCloseTo(Math.floor(position!.qty * 1e5) / 1e5, 10);
    const alert = notices.of("alert").find((n) => n.text.includes("gapped through"));
    expect(alert!.text).toMatch(/Stop loss hit on BTC\/USDT \(the price gapped through the level\)/);
    expect(alert!.text).toMatch(/the market broke through the stop at [\d,.]+; the exit filled \d+\.\d+% beyond it/);
    expect(await app.services.portfolio.realizedPnl()).toBeLessThan(0);
    // The risk action after a loss: no new buy in the symbol during the cool-down.
    const again = await run("/decide BTC");
    expect(again.text).toMatch(/cooldown rule/);
    expect(standIn.posts()).toHaveLength(2);
  });

  it("tries an exit again after the exchange refused it or filled it only in part", async () => {
    const { app, run, notices } = await liveApp();
    await run("/decide BTC");
    const [position] = await app.services.portfolio.positions();
    const now = Date.now();
    const low = position!.stopLoss * 0.999;
    standIn.setCandles("BTCUSDT", [...standIn.candles("BTCUSDT"), { time: now, open: position!.entryPrice, high: position!.entryPrice, low, close: low, volume: 3 }]);
    standIn.rejectNext = { code: -1013, msg: "Filter failure: LOT_SIZE" };
    expect(await runPositionMonitor(app)).toBe(0);
    expect(notices.of("error").at(-1)!.text).toMatch(/Could not close BTC\/USDT at its stop-loss: Filter failure: LOT_SIZE/);
    standIn.liquidity.BTCUSDT = 0.001;
    expect(await runPositionMonitor(app)).toBe(1);
    expect((await app.services.portfolio.positions())[0]!.qty).toBeCloseTo(position!.qty - 0.001, 9);
    standIn.liquidity = {};
    expect(await runPositionMonitor(app)).toBe(1);
    expect(await app.services.portfolio.positions()).toEqual([]);
    const sells = standIn.orders.filter((o) => o.side === "SELL");
    expect(sells.map((o) => o.status)).toEqual(["EXPIRED", "FILLED"]);
    expect(new Set(standIn.posts().map((p) => p.params.newClientOrderId)).size).toBe(standIn.posts().length);
  });

  it("books a fill seen before its trades are listed at no more than arrived, corrects it from the trades, and the stop sells it all", async () => {
    // An account that pays its fees in BNB; the trades show up after the order's status.
    await standIn.stop();
    const eth = loadCandles(join(fileURLToPath(new URL("../data/ohlcv/", import.meta.url)), "ETH_USDT_2h.csv"));
    const scale = 600 / eth.at(-1)!.close;
    standIn = await BinanceStandIn.start({
      apiKey: KEY,
      secret: SECRET,
      symbols: [
        { id: "BTCUSDT", base: "BTC", quote: "USDT", candles: candlesEndingNow(btc, 300) },
        { id: "BNBUSDT", base: "BNB", quote: "USDT", candles: candlesEndingNow(eth.map((c) => ({ ...c, open: c.open * scale, high: c.high * scale, low: c.low * scale, close: c.close * scale })), 300) },
      ],
      balances: { USDT: 10_000, BNB: 0.5 },
      feeIn: "BNB",
    });
    standIn.tradesListedAfterMs = 60_000;
    standIn.unknownStatusNext = true; // -1007: placed, status unknown; the lookup finds it filled
    const { app, run, notices } = await liveApp();
    expect((await run("/decide BTC")).text).toMatch(/Order: BUY/);
    const bought = standIn.orders[0]!;
    const [estimated] = await app.services.portfolio.positions();
    expect(estimated!.qty).toBeLessThan(standIn.balance("BTC"));

    standIn.tradesListedAfterMs = 0;
    const low = estimated!.stopLoss * 0.999;
    standIn.setCandles("BTCUSDT", [...standIn.candles("BTCUSDT"), { time: Date.now(), open: estimated!.entryPrice, high: estimated!.entryPrice, low, close: low, volume: 3 }]);
    expect(await runPositionMonitor(app)).toBe(1);
    const sell = standIn.orders.find((o) => o.side === "SELL")!;
    // BNB paid both fees: everything bought was sold, nothing refused, nothing left.
    expect(sell.status).toBe("FILLED");
    expect(sell.executedQty).toBeCloseTo(bought.executedQty, 12);
    expect(standIn.balance("BTC")).toBeCloseTo(0, 12);
    expect(await app.services.portfolio.positions()).toEqual([]);
    expect(notices.of("error")).toEqual([]);
    const bnbFees = (bought.fills[0]!.commission + sell.fills[0]!.commission) * standIn.price("BNBUSDT");
    const [trade] = await app.services.portfolio.closedTrades(1);
    expect(trade!.pnl).toBeCloseTo(sell.executedQty * (sell.quoteQty / sell.executedQty - bought.quoteQty / bought.executedQty) - bnbFees, 6);
  });

  it("reconciles at startup and reports drift without trading", async () => {
    const { app, run, notices } = await liveApp();
    await run("/pause");
    // The books think 0.2 BTC is held; the exchange holds 0.05, and has an order nobody here placed.
    await app.services.portfolio.adopt({ symbol: "BTC/USDT", side: "long", qty: 0.2, entryPrice: 100_000, stopLoss: 1, takeProfit: 10_000_000, openedAt: Date.now() });
    standIn.setBalance("BTC", 0.05);
    standIn.placeForeignOrder("BTCUSDT", "BUY", 0.01, Math.floor(standIn.price("BTCUSDT") * 0.5));
    const postsBefore = standIn.posts().length;
    await app.startJobs();
    const alert = notices.of("alert").find((n) => n.text.startsWith("Reconciliation at startup"));
    expect(alert!.text).toMatch(/2 difference\(s\)/);
    expect(alert!.text).toMatch(/BTC\/USDT: the books hold 0\.2000 BTC, the exchange 0\.05000/);
    expect(alert!.text).toMatch(/an open buy order for 0\.01000 .* that this agent did not place/);
    expect(standIn.posts().length).toBe(postsBefore);
    expect((await run("/status")).text).toMatch(/Reconciliation: \d+ s ago, 2 difference\(s\): BTC\/USDT, BTC\/USDT/);
  });
});
