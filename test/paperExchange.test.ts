import type { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { PaperExchange } from "../src/exchange/paper.js";
import { PortfolioStore } from "../src/portfolio/store.js";
import { checkRisk, checkStops } from "../src/risk/rules.js";
import type { Portfolio, RiskLimits } from "../src/domain/types.js";
import { testRedis } from "./support/redis.js";

let redis: Redis;
beforeAll(async () => {
  redis = await testRedis();
});
afterAll(async () => {
  await redis.quit();
});

const exchange = (prefix: string, startingCash = 1000) =>
  new PaperExchange({ redis, prices: async () => 100, feeRate: 0.001, slippageBps: 10, startingCash, prefix, clock: () => 1 });

describe("paper exchange", () => {
  it("fills a market buy at the price plus slippage, and takes the fee in the quote currency", async () => {
    const ex = exchange("px1:");
    const order = await ex.placeOrder({ clientOrderId: "a", symbol: "BTC/USDT", side: "buy", qty: 2 });
    expect(order).toMatchObject({ status: "filled", filledQty: 2, side: "buy" });
    expect(order.avgPrice).toBeCloseTo(100.1, 10);
    expect(order.fee).toBeCloseTo(2 * 100.1 * 0.001, 10);
    const b = await ex.balances();
    expect(b.BTC).toBe(2);
    expect(b.USDT).toBeCloseTo(1000 - 200.2 - 0.2002, 9);
  });

  it("places one order for one client order id, even with ten calls at once", async () => {
    const ex = exchange("px2:");
    const orders = await Promise.all(Array.from({ length: 10 }, () => ex.placeOrder({ clientOrderId: "same", symbol: "BTC/USDT", side: "buy", qty: 1 })));
    expect(new Set(orders.map((o) => o.id)).size).toBe(1);
    expect(await ex.trades(100)).toHaveLength(1);
    expect((await ex.balances()).BTC).toBe(1);
  });

  it("never spends cash it does not have, with twenty orders at once", async () => {
    const ex = exchange("px3:");
    const orders = await Promise.all(
      Array.from({ length: 20 }, (_, i) => ex.placeOrder({ clientOrderId: `c${i}`, symbol: "BTC/USDT", side: "buy", qty: 1 })),
    );
    const filled = orders.filter((o) => o.status === "filled");
    expect(filled).toHaveLength(9); // 9 x 100.2 fits in 1000; a 10th would not
    expect(orders.filter((o) => o.status === "rejected")[0]!.reason).toMatch(/insufficient USDT balance/);
    expect((await ex.balances()).USDT).toBeGreaterThanOrEqual(0);
  });

  it("rejects a sell of more than is held, with the reason, and changes nothing", async () => {
    const ex = exchange("px4:");
    const before = await ex.balances();
    const order = await ex.placeOrder({ clientOrderId: "s", symbol: "ETH/USDT", side: "sell", qty: 1 });
    expect(order).toMatchObject({ status: "rejected", filledQty: 0 });
    expect(order.reason).toMatch(/insufficient ETH balance/);
    expect(await ex.balances()).toEqual(before);
  });
});

describe("portfolio store", () => {
  it("applies a fill once per order id and realizes P&L on the sell", async () => {
    const store = new PortfolioStore(redis, "pf1:");
    const buy = { id: "o1", clientOrderId: "c1", symbol: "BTC/USDT", side: "buy" as const, qty: 2, filledQty: 2, avgPrice: 100, fee: 0.2, status: "filled" as const, time: 5 };
    await store.applyFill(buy, { stopLoss: 97, takeProfit: 106 });
    expect((await store.applyFill(buy, { stopLoss: 97, takeProfit: 106 })).applied).toBe(false);
    expect(await store.positions()).toEqual([{ symbol: "BTC/USDT", side: "long", qty: 2, entryPrice: 100, stopLoss: 97, takeProfit: 106, openedAt: 5 }]);
    const sell = { ...buy, id: "o2", side: "sell" as const, avgPrice: 110, fee: 0.22 };
    expect((await store.applyFill(sell)).realizedPnl).toBeCloseTo(2 * 10 - 0.22, 10);
    expect(await store.positions()).toEqual([]);
    expect(await store.realizedPnl()).toBeCloseTo(19.78, 10);
  });

  it("refuses to open a position without a stop loss and take profit", async () => {
    const store = new PortfolioStore(redis, "pf2:");
    const buy = { id: "o1", clientOrderId: "c1", symbol: "BTC/USDT", side: "buy" as const, qty: 1, filledQty: 1, avgPrice: 100, fee: 0, status: "filled" as const, time: 5 };
    await expect(store.applyFill(buy)).rejects.toThrow(/needs a stop loss and take profit/);
    expect(await store.positions()).toEqual([]);
  });
});

const limits: RiskLimits = {
  maxPositionPct: 10, maxExposurePct: 50, maxLeverage: 1, maxOpenPositions: 3, dailyLossLimitPct: 5,
  defaultStopLossPct: 3, maxStopLossPct: 10, defaultTakeProfitPct: 6, minOrderNotional: 10,
};
const flat: Portfolio = { cash: 10_000, positions: [], prices: {}, dayStartEquity: 10_000 };
const decision = (action: "buy" | "sell" | "close" | "hold", sizePct: number) => ({ symbol: "BTC/USDT", action, sizePct, confidence: 0.7, reasons: ["r"] });

describe("risk rules", () => {
  it("approves a buy inside every limit, with exits from the defaults", () => {
    const v = checkRisk(decision("buy", 5), flat, limits, 100);
    expect(v).toMatchObject({ outcome: "approved", side: "buy", rules: [] });
    expect(v.qty).toBeCloseTo(5, 10);
    expect(v.stopLoss).toBeCloseTo(97, 10);
    expect(v.takeProfit).toBeCloseTo(106, 10);
  });

  it("counts a held position against the position limit", () => {
    const held: Portfolio = { ...flat, cash: 9_200, positions: [{ symbol: "BTC/USDT", side: "long", qty: 8, entryPrice: 100, stopLoss: 97, takeProfit: 106, openedAt: 0 }], prices: { "BTC/USDT": 100 } };
    const v = checkRisk(decision("buy", 10), held, limits, 100);
    expect(v.outcome).toBe("resized");
    expect(v.rules).toEqual(["max-position"]);
    expect(v.qty * 100).toBeCloseTo(200, 6); // 10% of 10,000 less the 800 already held
  });

  it("lets a losing day still sell and close", () => {
    const losing: Portfolio = { cash: 9_000, positions: [{ symbol: "BTC/USDT", side: "long", qty: 1, entryPrice: 100, stopLoss: 97, takeProfit: 106, openedAt: 0 }], prices: { "BTC/USDT": 50 }, dayStartEquity: 10_000 };
    expect(checkRisk(decision("buy", 5), losing, limits, 50).rules).toEqual(["daily-loss"]);
    expect(checkRisk(decision("close", 0), losing, limits, 50)).toMatchObject({ outcome: "approved", side: "sell", qty: 1 });
  });

  it("holds without an order", () => {
    expect(checkRisk(decision("hold", 0), flat, limits, 100)).toMatchObject({ outcome: "no-trade", qty: 0 });
  });
});

describe("stops", () => {
  const position = { symbol: "BTC/USDT", side: "long" as const, qty: 1, entryPrice: 100, stopLoss: 97, takeProfit: 106, openedAt: 0 };
  it("exits at the level when touched, at the open when gapped through", () => {
    expect(checkStops(position, { open: 99, high: 100, low: 96 })).toEqual({ hit: "stop-loss", price: 97 });
    expect(checkStops(position, { open: 95, high: 96, low: 94 })).toEqual({ hit: "stop-loss", price: 95 });
    expect(checkStops(position, { open: 101, high: 107, low: 100 })).toEqual({ hit: "take-profit", price: 106 });
    expect(checkStops(position, { open: 110, high: 111, low: 109 })).toEqual({ hit: "take-profit", price: 110 });
    expect(checkStops(position, { open: 100, high: 105, low: 98 })).toBeUndefined();
  });
  it("assumes the stop came first when one candle touches both", () => {
    expect(checkStops(position, { open: 100, high: 107, low: 96 })).toEqual({ hit: "stop-loss", price: 97 });
  });
});
