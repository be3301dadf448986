// Fills, fees and exits as Binance really reports them: ccxt's own binance client over loopback to
// the Binance stand-in (test/support/exchangeStandIn.ts), with fees paid in BNB and trades listed
// a little after the order's status. The books are the real PortfolioStore on Redis. Throwaway
// keys, test-only.
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import type { Redis } from "ioredis";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import type { RiskLimits } from "../src/domain/types.js";
import { createCcxtExchange, createLiveCcxtExchange } from "../src/exchange/ccxtClient.js";
import { CcxtLiveExchange } from "../src/exchange/ccxtExchange.js";
import { loadCandles } from "../src/market/candles.js";
import { CcxtMarketData } from "../src/market/ccxtMarket.js";
import { enforceExits, type ExitEvent } from "../src/orders/exits.js";
import { PortfolioStore } from "../src/portfolio/store.js";
import { BinanceStandIn, candlesEndingNow } from "./support/exchangeStandIn.js";
import { testRedis } from "./support/redis.js";

const KEY = "fills-test-key-cccccccccccccccccccccccccccccccccccccccccccccccccccc";
const SECRET = "fills-test-secret-dddddddddddddddddddddddddddddddddddddddddddddddddd";
const data = join(fileURLToPath(new URL("../data/ohlcv/", import.meta.url)));
const btc = loadCandles(join(data, "BTC_USDT_2h.csv"));
// No BNB history in data/: BNB moves as ETH did, scaled to about 600 USDT.
const eth = loadCandles(join(data, "ETH_USDT_2h.csv"));
const bnbScale = 600 / eth.at(-1)!.close;
const bnb = eth.map((c) => ({ ...c, open: c.open * bnbScale, high: c.high * bnbScale, low: c.low * bnbScale, close: c.close * bnbScale }));
const limits: RiskLimits = { maxPositionPct: 10, maxExposurePct: 50, maxLeverage: 1, maxOpenPositions: 3, dailyLossLimitPct: 5, defaultStopLossPct: 3, maxStopLossPct: 10, defaultTakeProfitPct: 6, minOrderNotional: 5 };

let standIn: BinanceStandIn;
let redis: Redis;
let live: CcxtLiveExchange;
let store: PortfolioStore;
let market: CcxtMarketData;
let logs: string[];

beforeAll(async () => {
  redis = await testRedis();
});
afterAll(async () => {
  await redis.quit();
});

beforeEach(async () => {
  await redis.flushdb();
  standIn = await BinanceStandIn.start({
    apiKey: KEY,
    secret: SECRET,
    symbols: [
      { id: "BTCUSDT", base: "BTC", quote: "USDT", candles: candlesEndingNow(btc, 300) },
      { id: "BNBUSDT", base: "BNB", quote: "USDT", candles: candlesEndingNow(bnb, 300), stepSize: "0.00100000", minQty: "0.00100000" },
    ],
    balances: { USDT: 10_000, BNB: 0.5 },
  });
  logs = [];
  live = new CcxtLiveExchange({
    exchange: createLiveCcxtExchange({ id: "binance", apiKey: KEY, secret: SECRET, sandbox: true, apiUrl: standIn.url }),
    redis,
    symbols: ["BTC/USDT"],
    sandbox: true,
    log: (m) => logs.push(m),
    tradesWait: { tries: 1, everyMs: 20 },
  });
  store = new PortfolioStore(redis);
  market = new CcxtMarketData({ exchange: createCcxtExchange({ id: "binance", sandbox: true, apiUrl: standIn.url }), symbols: ["BTC/USDT"], timeframe: "2h" });
});
afterEach(async () => {
  await standIn.stop();
});

const exitServices = () => ({ market, exchange: live, portfolio: store, limits, quote: "USDT", clock: Date.now });
const exits = (price: number) => ({ stopLoss: price * 0.97, takeProfit: price * 1.1 });
/** What the stand-in charged for an order, in USDT: its BNB commission at the BNB price it charged at. */
const bnbFeeInUsdt = (orderIndex: number) => standIn.orders[orderIndex]!.fills.reduce((a, f) => a + (f.commissionAsset === "BNB" ? f.commission : 0), 0) * standIn.price("BNBUSDT");

describe("fees paid in a third asset", () => {
  it("converts a BNB fee into USDT, counts it, and the P&L is reduced by it", async () => {
    standIn.feeIn = "BNB";
    const entry = standIn.price("BTCUSDT");
    const buy = await live.placeOrder({ clientOrderId: "bnb-buy", symbol: "BTC/USDT", side: "buy", qty: 0.01 });
    expect(standIn.orders[0]!.fills[0]!.commissionAsset).toBe("BNB");
    // BNB paid the fee: the whole 0.01 BTC arrived, and the fee is the BNB's worth in USDT (25% off 0.1%)
    expect(buy.filledQty).toBeCloseTo(0.01, 12);
    expect(standIn.balance("BTC")).toBeCloseTo(0.01, 12);
    expect(buy.fee).toBeGreaterThan(0);
    expect(buy.fee).toBeCloseTo(bnbFeeInUsdt(0), 10);
    expect(buy.fee).toBeCloseTo(0.01 * entry * 0.00075, 6);
    // Looked up later (no fills in Binance's order reply, the trades carry them): the same fee.
    expect((await live.findOrder("bnb-buy"))!.fee).toBeCloseTo(buy.fee, 10);

    const opened = await store.applyFill(buy, exits(entry));
    expect(opened.realizedPnl).toBeCloseTo(-buy.fee, 10);

    standIn.setPrice("BTCUSDT", entry * 1.02);
    const sell = await live.placeOrder({ clientOrderId: "bnb-sell", symbol: "BTC/USDT", side: "sell", qty: 0.01 });
    expect(sell.fee).toBeCloseTo(bnbFeeInUsdt(1), 10);
    expect(sell.fee).toBeGreaterThan(0);
    const { closed } = await store.applyFill(sell, { closing: true });
    const gross = 0.01 * (sell.avgPrice - buy.avgPrice);
    expect(gross).toBeGreaterThan(0);
    // The round trip's P&L is the gross less both BNB fees, not the gross.
    expect(closed!.pnl).toBeCloseTo(gross - bnbFeeInUsdt(0) - bnbFeeInUsdt(1), 8);
    expect(await store.realizedPnl()).toBeCloseTo(gross - buy.fee - sell.fee, 8);
    expect(await store.realizedPnl()).toBeLessThan(gross - 0.01 * entry * 0.001);
  });
});

describe("a fill whose trades are listed after its status", () => {
  it("is booked at most at what arrived, then corrected to the trades once they are listed", async () => {
    standIn.feeIn = "BNB";
    standIn.tradesListedAfterMs = 60_000;
    standIn.unknownStatusNext = true; // -1007: the order went through, the reply says "status unknown"
    const first = await live.placeOrder({ clientOrderId: "late-trades", symbol: "BTC/USDT", side: "buy", qty: 0.01 });
    expect(first.status).toBe("filled");
    expect(first.feesPending).toBe(true);
    // Not yet known where the fee came from: the books never hold more than reached the account.
    expect(first.filledQty).toBeLessThanOrEqual(standIn.balance("BTC"));
    expect(first.fee).toBeGreaterThan(0);
    const price = first.avgPrice;
    await store.applyFill(first, exits(price));

    // Still not listed: nothing to correct yet.
    expect(await live.settleFills()).toEqual([]);
    standIn.tradesListedAfterMs = 0;
    const events = await enforceExits(exitServices());
    expect(events).toEqual([expect.objectContaining({ kind: "fill-corrected", orderId: first.id, side: "buy" })]);
    const [position] = await store.positions();
    // The trades say BNB paid the fee: all 0.01 BTC arrived, and the fee is the BNB's worth.
    expect(position!.qty).toBeCloseTo(standIn.balance("BTC"), 12);
    expect(await store.realizedPnl()).toBeCloseTo(-bnbFeeInUsdt(0), 10);
    // Corrected once: another run finds nothing more.
    expect((await enforceExits(exitServices())).filter((e) => e.kind === "fill-corrected")).toEqual([]);
    expect((await store.positions())[0]!.qty).toBeCloseTo(standIn.balance("BTC"), 12);
  });

  it("corrects books that hold the gross quantity with no fee down to the net of the trades", async () => {
    standIn.tradesListedAfterMs = 60_000;
    standIn.unknownStatusNext = true;
    const seen = await live.placeOrder({ clientOrderId: "gross-booked", symbol: "BTC/USDT", side: "buy", qty: 0.01 });
    const executed = standIn.orders[0]!.executedQty;
    // The books as they were left by a read that took the order's status for the fill: gross, no fee.
    await store.applyFill({ ...seen, filledQty: executed, fee: 0 }, exits(seen.avgPrice));
    expect((await store.positions())[0]!.qty).toBeCloseTo(0.01, 12);
    expect(standIn.balance("BTC")).toBeCloseTo(0.01 * 0.999, 12);

    standIn.tradesListedAfterMs = 0;
    const truer = await live.findOrder("gross-booked");
    expect(truer!.feesPending).toBeUndefined();
    expect(truer!.filledQty).toBeCloseTo(0.01 * 0.999, 12);
    const applied = await store.applyFill(truer!, { correction: true });
    expect(applied.applied).toBe(true);
    const [position] = await store.positions();
    expect(position!.qty).toBeCloseTo(standIn.balance("BTC"), 12);
    expect(position!.qty).toBeLessThan(executed);
    expect(position!.entryPrice).toBeCloseTo(seen.avgPrice, 6);
    // The same truer fill again changes nothing.
    expect((await store.applyFill(truer!, { correction: true })).applied).toBe(false);
    expect((await store.positions())[0]!.qty).toBeCloseTo(position!.qty, 15);
  });

  it("does not count a trade of another order", async () => {
    await live.placeOrder({ clientOrderId: "other", symbol: "BTC/USDT", side: "buy", qty: 0.02 });
    await live.placeOrder({ clientOrderId: "mine", symbol: "BTC/USDT", side: "buy", qty: 0.01 });
    // The trade list answers with the symbol's trades, the other order's among them.
    standIn.myTradesIgnoreOrderId = true;
    const mine = await live.findOrder("mine");
    const ownFill = standIn.orders[1]!.fills[0]!;
    expect(standIn.requests.filter((r) => r.path === "/api/v3/myTrades").at(-1)!.params.orderId).toBe(String(standIn.orders[1]!.orderId));
    expect(mine!.filledQty).toBeCloseTo(0.01 - ownFill.commission, 12);
    expect(mine!.fee).toBeCloseTo(ownFill.commission * ownFill.price, 8);
    expect(mine!.feesPending).toBeUndefined();
    expect(logs.some((l) => /1 listed trade\(s\) of other orders ignored/.test(l))).toBe(true);
    // Only another order's trades listed (its own not yet): not a fill to book from.
    standIn.tradesListedAfterMs = 60_000;
    await live.placeOrder({ clientOrderId: "third", symbol: "BTC/USDT", side: "buy", qty: 0.01 });
    standIn.tradesListedAfterMs = 0;
    standIn.orders[2]!.fills[0]!.time = Date.now() + 60_000;
    const third = await live.findOrder("third");
    expect(third!.feesPending).toBe(true);
    expect(third!.filledQty).toBeLessThanOrEqual(0.01 * 0.999 + 1e-12);
  });
});

describe("exits against what the account holds", () => {
  async function heldPosition(booked: number) {
    const buy = await live.placeOrder({ clientOrderId: "entry", symbol: "BTC/USDT", side: "buy", qty: 0.01 });
    // The books hold more than the account (as after a gross booking, or drift).
    await store.adopt({ symbol: "BTC/USDT", side: "long", qty: booked, entryPrice: buy.avgPrice, stopLoss: buy.avgPrice * 0.97, takeProfit: buy.avgPrice * 1.1, openedAt: Date.now() });
    standIn.setPrice("BTCUSDT", buy.avgPrice * 0.96);
    return buy;
  }

  it("sells what the account holds where the booked quantity is refused, and closes the position", async () => {
    await heldPosition(0.01);
    const held = standIn.balance("BTC");
    expect(held).toBeCloseTo(0.00999, 12);
    // The booked quantity: Binance refuses it.
    const probe = await live.placeOrder({ clientOrderId: "probe", symbol: "BTC/USDT", side: "sell", qty: 0.01 });
    expect(probe.status).toBe("rejected");
    expect(probe.reason).toMatch(/insufficient balance/);

    const events = await enforceExits(exitServices());
    const exit = events.find((e): e is Extract<ExitEvent, { kind: "exit" }> => e.kind === "exit");
    expect(exit).toMatchObject({ hit: "stop-loss", capped: { booked: 0.01, held } });
    expect(exit!.qty).toBeCloseTo(held, 12);
    expect(events.some((e) => e.kind === "exit-refused")).toBe(false);
    const sell = standIn.orders.filter((o) => o.side === "SELL" && o.status === "FILLED");
    expect(sell).toHaveLength(1);
    expect(sell[0]!.executedQty).toBeCloseTo(held, 12);
    expect(await store.positions()).toEqual([]);
    expect(standIn.balance("BTC")).toBeCloseTo(0, 12);
  });

  it("sells only what is free when part of the coins is locked in an open order", async () => {
    const buy = await heldPosition(0.00999);
    // Someone put 0.002 BTC up for sale on the web: those coins are held, but not free to sell.
    standIn.placeForeignOrder("BTCUSDT", "SELL", 0.002, Math.round(buy.avgPrice * 2));
    expect((await live.holdings()).BTC).toBeCloseTo(0.00999, 12);
    const events = await enforceExits(exitServices());
    expect(events.filter((e) => e.kind === "exit-refused")).toEqual([]);
    const exit = events.find((e): e is Extract<ExitEvent, { kind: "exit" }> => e.kind === "exit");
    expect(exit!.qty).toBeCloseTo(0.00799, 12);
    expect(exit!.capped!.held).toBeCloseTo(0.00799, 12);
    expect(standIn.balances.BTC).toMatchObject({ locked: 0.002 });
    expect(standIn.balance("BTC")).toBeCloseTo(0, 12);
  });

  it("reports a refused exit as an exit-refused event, for an alert", async () => {
    await heldPosition(0.00999);
    standIn.rejectNext = { code: -2010, msg: "Account has insufficient balance for requested action." };
    const events = await enforceExits(exitServices());
    expect(events).toContainEqual(expect.objectContaining({ kind: "exit-rejected", symbol: "BTC/USDT", hit: "stop-loss" }));
    const refused = events.find((e): e is Extract<ExitEvent, { kind: "exit-refused" }> => e.kind === "exit-refused");
    expect(refused).toMatchObject({ symbol: "BTC/USDT", hit: "stop-loss", booked: 0.00999, attempt: 0 });
    expect(refused!.reason).toMatch(/^Account has insufficient balance for requested action\./);
    expect((await store.positions())[0]!.qty).toBe(0.00999);

    // Nothing left on the account at all: refused without asking the exchange.
    standIn.setBalance("BTC", 0);
    const posts = standIn.posts().length;
    const again = await enforceExits(exitServices());
    expect(again.find((e) => e.kind === "exit-refused")).toMatchObject({ held: 0, attempt: 1, reason: expect.stringMatching(/holds no BTC/) });
    expect(standIn.posts()).toHaveLength(posts);
  });
});
