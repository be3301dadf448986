// The risk additions and the books: historical VaR, the cool-down, trailing stops, limits broken by
// the market, reconciliation, and fills that grow. Pure functions by hand; the store and the
// exits against a real Redis and the paper exchange.
import type { Redis } from "ioredis";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { BacktestMarket } from "../src/backtest/market.js";
import type { Candle, Decision, Order, Portfolio, Position } from "../src/domain/types.js";
import { PaperExchange } from "../src/exchange/paper.js";
import { enforceExits } from "../src/orders/exits.js";
import { reconcile } from "../src/portfolio/reconcile.js";
import { PortfolioStore } from "../src/portfolio/store.js";
import { exposureBySymbol, totalUnrealizedPnl } from "../src/portfolio/valuation.js";
import { checkRisk, marketBreaches, trailStop } from "../src/risk/rules.js";
import { historicalVar, portfolioVar, returnSeries } from "../src/risk/var.js";
import { testConfig } from "./support/app.js";
import { testRedis } from "./support/redis.js";

const limits = { ...testConfig().risk, maxPositionPct: 50, maxExposurePct: 100 };
const buy = (sizePct: number): Decision => ({ symbol: "BTC/USDT", action: "buy", sizePct, confidence: 0.8, reasons: ["test"] });
const flat: Portfolio = { cash: 10_000, positions: [], prices: {}, dayStartEquity: 10_000 };
const series = (rs: number[], start = 0) => ({ times: rs.map((_, i) => start + i), returns: rs });

describe("historical VaR", () => {
  it("reads the 5th-percentile loss off the scenarios", () => {
    // 20 scenarios: ceil(0.05 * 20) = 1st worst
    const pnl = [-7, -3, ...Array.from({ length: 18 }, (_, i) => i)];
    expect(historicalVar(pnl)).toBe(7);
    // 40 scenarios: the 2nd worst
    expect(historicalVar([-9, -4, ...Array.from({ length: 38 }, () => 1)])).toBe(4);
    expect(historicalVar([1, 2, 3])).toBe(0);
    expect(returnSeries([{ time: 1, open: 1, high: 1, low: 1, close: 100, volume: 0 }, { time: 2, open: 1, high: 1, low: 1, close: 90, volume: 0 }]).returns[0]).toBeCloseTo(-0.1, 12);
  });

  it("replays shared history for several positions, so offsetting moves offset", () => {
    const up = Array.from({ length: 40 }, (_, i) => (i % 2 ? 0.02 : -0.02));
    const down = up.map((r) => -r);
    expect(portfolioVar({ A: 1000 }, { A: series(up) })).toBeCloseTo(20, 9);
    // perfectly opposite: every shared scenario nets to zero
    expect(portfolioVar({ A: 1000, B: 1000 }, { A: series(up), B: series(down) })).toBeCloseTo(0, 9);
    // no shared times: the sum of each one's VaR, which can only overstate
    expect(portfolioVar({ A: 1000, B: 1000 }, { A: series(up), B: series(down, 1000) })).toBeCloseTo(40, 9);
  });

  it("resizes a buy so the VaR of all positions stays under the cap", () => {
    const drops = { "BTC/USDT": series(Array.from({ length: 100 }, (_, i) => (i < 10 ? -0.05 : 0.01))) };
    // 5% loss in the worst scenarios: a 2% of equity cap allows 40% of equity
    const v = checkRisk(buy(50), flat, { ...limits, maxVar95Pct: 2 }, 100, { returns: drops });
    expect(v.outcome).toBe("resized");
    expect(v.rules).toContain("max-var");
    expect(v.qty * 100).toBeCloseTo(4000, 0);
    expect(v.message).toMatch(/VaR of all positions may not exceed 2% of equity \(max-var rule\)/);
    expect(checkRisk(buy(50), flat, { ...limits, maxVar95Pct: 10 }, 100, { returns: drops }).outcome).toBe("approved");
  });
});

describe("the cool-down after a losing trade", () => {
  it("refuses a buy inside it and allows one after it", () => {
    const l = { ...limits, cooldownAfterLossMinutes: 120 };
    const inside = checkRisk(buy(5), flat, l, 100, { now: 60 * 60_000, lastLossAt: 0 });
    expect(inside.outcome).toBe("refused");
    expect(inside.rules).toEqual(["cooldown"]);
    expect(inside.message).toMatch(/closed at a loss 60 min ago; no new buy in it for 120 min after a loss \(cooldown rule, 60 min left\)/);
    expect(checkRisk(buy(5), flat, l, 100, { now: 120 * 60_000, lastLossAt: 0 }).outcome).toBe("approved");
    expect(checkRisk(buy(5), flat, { ...l, cooldownAfterLossMinutes: 0 }, 100, { now: 1, lastLossAt: 0 }).outcome).toBe("approved");
  });
});

describe("trailing stops and limits broken by the market", () => {
  const position: Position = { symbol: "BTC/USDT", side: "long", qty: 1, entryPrice: 100, stopLoss: 95, takeProfit: 200, openedAt: 0, trailingStopPct: 5, highWater: 100 };

  it("follows the high and never moves down", () => {
    expect(trailStop(position, { high: 110 })).toEqual({ stopLoss: 104.5, highWater: 110 });
    expect(trailStop({ ...position, stopLoss: 104.5, highWater: 110 }, { high: 105 })).toBeUndefined();
    expect(trailStop({ ...position, trailingStopPct: undefined }, { high: 150 })).toBeUndefined();
  });

  it("names the daily loss and the exposure grown past its cap", () => {
    const p: Portfolio = { cash: 1000, positions: [{ ...position, qty: 100 }], prices: { "BTC/USDT": 90 }, dayStartEquity: 11_000 };
    const rules = marketBreaches(p, { ...limits, maxExposurePct: 50, dailyLossLimitPct: 5 }).map((b) => b.rule);
    expect(rules).toEqual(["daily-loss", "max-exposure"]);
    expect(exposureBySymbol(p)).toEqual({ "BTC/USDT": 9000 });
    expect(totalUnrealizedPnl(p)).toBe(-1000);
  });
});

describe("reconciliation", () => {
  const base = { openOrders: [] as Order[], ownOrderIds: new Set<string>(), symbols: ["BTC/USDT", "ETH/USDT"], prices: { "BTC/USDT": 50_000, "ETH/USDT": 3000 }, dustNotional: 10 };
  const pos = (symbol: string, qty: number): Position => ({ symbol, side: "long", qty, entryPrice: 1, stopLoss: 0, takeProfit: 2, openedAt: 0 });

  it("finds nothing when the books and the exchange agree (fees and dust tolerated)", () => {
    expect(reconcile({ ...base, positions: [pos("BTC/USDT", 0.1)], holdings: { BTC: 0.0999, USDT: 5, ETH: 0.001 } })).toEqual([]);
  });

  it("names a missing position, a different size, an untracked holding and a foreign order", () => {
    const foreign: Order = { id: "77", clientOrderId: "web_1", symbol: "ETH/USDT", side: "sell", qty: 2, filledQty: 0, avgPrice: 0, fee: 0, status: "open", time: 0 };
    const drifts = reconcile({ ...base, positions: [pos("BTC/USDT", 0.1), pos("ETH/USDT", 1)], holdings: { BTC: 0, ETH: 2 }, openOrders: [foreign] });
    expect(drifts.map((d) => [d.symbol, d.kind])).toEqual([["BTC/USDT", "missing"], ["ETH/USDT", "size"], ["ETH/USDT", "unknown-order"]]);
    const untracked = reconcile({ ...base, positions: [], holdings: { BTC: 0.5 } });
    expect(untracked[0]!.kind).toBe("untracked");
    expect(untracked[0]!.message).toMatch(/not managed \(no stop loss\)/);
    expect(reconcile({ ...base, positions: [], holdings: {}, openOrders: [foreign], ownOrderIds: new Set(["web_1"]) })).toEqual([]);
  });
});

describe("the books in Redis", () => {
  let redis: Redis;
  beforeAll(async () => {
    redis = await testRedis();
  });
  afterAll(async () => {
    await redis.quit();
  });
  beforeEach(async () => {
    await redis.flushdb();
  });

  it("books a growing partial fill once per growth", async () => {
    const store = new PortfolioStore(redis);
    const order: Order = { id: "o1", clientOrderId: "d1", symbol: "BTC/USDT", side: "buy", qty: 1, filledQty: 0.25, avgPrice: 100, fee: 0.025, status: "partial", time: 1 };
    const exits = { exits: { stopLoss: 90, takeProfit: 120 } };
    expect((await store.applyFill(order, exits)).applied).toBe(true);
    expect((await store.applyFill(order, exits)).applied).toBe(false);
    // 0.75 more filled at 104: the average of the whole order is (25 + 78) / 1 = 103
    await store.applyFill({ ...order, filledQty: 1, avgPrice: 103, fee: 0.1, status: "filled" }, exits);
    const [p] = await store.positions();
    expect(p!.qty).toBeCloseTo(1, 12);
    expect(p!.entryPrice).toBeCloseTo(103, 9);
    // A sell in two fills realizes each growth at its own price; the round trip is one closed trade
    const sell: Order = { id: "o2", clientOrderId: "d2", symbol: "BTC/USDT", side: "sell", qty: 1, filledQty: 0.5, avgPrice: 110, fee: 0, status: "partial", time: 2 };
    expect((await store.applyFill(sell)).realizedPnl).toBeCloseTo(3.5, 9);
    const last = await store.applyFill({ ...sell, filledQty: 1, avgPrice: 100, status: "filled" }, { closing: true });
    expect(last.realizedPnl).toBeCloseTo(0.5 * (90 - 103), 9);
    expect(last.closed!.pnl).toBeCloseTo(3.5 - 6.5, 9);
    expect(await store.positions()).toEqual([]);
    expect((await store.lastLosses())["BTC/USDT"]).toBe(2);
  });

  it("the position monitor trails the stop, then exits at it, on the paper exchange", async () => {
    const c = (i: number, open: number, high: number, low: number, close: number): Candle => ({ time: i * 7_200_000, open, high, low, close, volume: 1 });
    const market = new BacktestMarket("BTC/USDT", [c(0, 100, 100, 100, 100), c(1, 100, 120, 99, 118), c(2, 118, 119, 110, 112)], "test");
    const exchange = new PaperExchange({ redis, prices: (s) => market.lastPrice(s), feeRate: 0, slippageBps: 0, startingCash: 1000 });
    const portfolio = new PortfolioStore(redis);
    const svc = { market, exchange, portfolio, limits: { ...limits, trailingStopPct: 5 }, quote: "USDT", clock: () => 0 };
    const bought = await exchange.placeOrder({ clientOrderId: "b", symbol: "BTC/USDT", side: "buy", qty: 1 });
    await portfolio.applyFill(bought, { exits: { stopLoss: 95, takeProfit: 200, trailingStopPct: 5 } });
    market.index = 1;
    const first = await enforceExits(svc, { onExitPrice: (s, p) => market.fillAt.set(s, p) });
    expect(first).toEqual([{ kind: "trail", symbol: "BTC/USDT", from: 95, to: 114 }]);
    market.index = 2;
    const second = await enforceExits(svc, { onExitPrice: (s, p) => market.fillAt.set(s, p) });
    expect(second[0]).toMatchObject({ kind: "exit", hit: "stop-loss", level: 114, fill: 114, gapped: false });
    expect(await portfolio.realizedPnl()).toBeCloseTo(14, 9);
  });
});
