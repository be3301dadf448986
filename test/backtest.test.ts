// The backtest: metrics and baselines checked by hand on small cases, the engine on the real BTC
// candles (the offline engine called directly against the same engine through
// @daydreamsai/core, the AI bill and its cap), a full-history run, record and replay, the
// cool-down as live sees it, a portfolio of several symbols, walk-forward, and the command line.
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { Redis } from "ioredis";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { buyAndHold, combineRuns, smaCrossover } from "../src/backtest/baselines.js";
import { constantExposure } from "../src/backtest/evaluation.js";
import { main, parseArgs } from "../src/backtest/cli.js";
import { DECISION_FILL_LAG_MS, plannedDecisions, runBacktest, touchTime, type BacktestOptions } from "../src/backtest/engine.js";
import { computeMetrics, periodsPerYear } from "../src/backtest/metrics.js";
import { offlineDirect, priceOf, recordingModel, replayModel, standInModel, throughAgent, type PricedModel } from "../src/backtest/models.js";
import { walkForward, walkForwardMarkdown, yearlyPeriods } from "../src/backtest/walkForward.js";
import { exportJsonl, fromJsonl, importJsonl, inputHash, MemoryRecordings, recordModelDecision, RedisRecordings, toJsonl } from "../src/models/recordings.js";
import { validateDecision } from "../src/decision/schema.js";
import type { Candle, Decision } from "../src/domain/types.js";
import { decideOffline } from "../src/engine/offlineEngine.js";
import { loadCandles } from "../src/market/candles.js";
import { testConfig } from "./support/app.js";

const SHARED = fileURLToPath(new URL("../../shared/data/ohlcv/", import.meta.url));
const btc = loadCandles(join(SHARED, "BTC_USDT_2h.csv"));
const YEAR = 365 * 86_400_000;
const H2 = 7_200_000;

describe("metrics, worked by hand", () => {
  // Equity 100 -> 110 -> 99 -> 121 over exactly one year, three periods a year.
  // Returns +10%, -10%, +2/9. Mean 2/27. Sample variance (0.7² + 4.7² + 4²) / 27² / 2 = 38.58 / 1458.
  // Sharpe = (2/27) / sqrt(38.58/1458) * sqrt(3) = 0.788723. Downside deviation sqrt(0.01 / 3),
  // Sortino = (2/27) / sqrt(0.01/3) * sqrt(3) = 60/27 = 2.2222. Drawdown 110 -> 99 = 10%.
  const m = computeMetrics({ equity: [100, 110, 99, 121], times: [0, YEAR / 3, (2 * YEAR) / 3, YEAR], periodsPerYear: 3, tradePnls: [5, -3, 0], orders: 6, fees: 1.5, aiSpend: 4 });

  it("returns", () => {
    expect(m.totalReturnPct).toBeCloseTo(21, 9);
    expect(m.annualizedReturnPct).toBeCloseTo(21, 6); // one calendar year
    expect(m.netPnl).toBeCloseTo(21, 9);
    expect(m.netPnlAfterAi).toBeCloseTo(17, 9);
    expect(m.netReturnAfterAiPct).toBeCloseTo(17, 9);
  });

  it("Sharpe, Sortino and drawdown", () => {
    expect(m.sharpe).toBeCloseTo(0.788723, 5);
    expect(m.sortino).toBeCloseTo(60 / 27, 4);
    expect(m.maxDrawdownPct).toBeCloseTo(10, 9);
  });

  it("win rate counts only winning round trips", () => {
    expect(m.trades).toBe(3);
    expect(m.winRatePct).toBeCloseTo(33.33, 2);
    expect(m.orders).toBe(6);
    expect(m.fees).toBe(1.5);
    expect(m.aiSpend).toBe(4);
  });

  it("annualizes over calendar time: half a year doubling is 300% a year", () => {
    const half = computeMetrics({ equity: [100, 200], times: [0, YEAR / 2], periodsPerYear: 2, tradePnls: [], orders: 0, fees: 0, aiSpend: 0 });
    expect(half.annualizedReturnPct).toBeCloseTo(300, 6);
    expect(periodsPerYear("2h")).toBe(4380);
    expect(periodsPerYear("1d")).toBe(365);
  });
});

describe("net of AI spend, worked by hand", () => {
  // Before AI: 100 -> 110 -> 99. AI bill 1 per period, taken out when it is spent: 100 -> 109 -> 97.
  const gross = computeMetrics({ equity: [100, 110, 99], times: [0, YEAR / 2, YEAR], periodsPerYear: 2, tradePnls: [], orders: 0, fees: 0, aiSpend: 2 });
  const net = computeMetrics({ equity: [100, 109, 97], times: [0, YEAR / 2, YEAR], periodsPerYear: 2, tradePnls: [], orders: 0, fees: 0, aiSpend: 2, aiIncluded: true });

  it("return, annualized return and drawdown count the bill", () => {
    expect(gross.totalReturnPct).toBeCloseTo(-1, 9);
    expect(net.totalReturnPct).toBeCloseTo(-3, 9);
    expect(net.annualizedReturnPct).toBeCloseTo(-3, 9); // exactly one year
    expect(gross.maxDrawdownPct).toBeCloseTo(10, 9); // 110 -> 99
    expect(net.maxDrawdownPct).toBeCloseTo((12 / 109) * 100, 5); // 109 -> 97 = 11.009%
  });

  it("Sharpe and Sortino of the net curve: returns +9% and -11/109", () => {
    const r = [0.09, 97 / 109 - 1];
    const mean = (r[0]! + r[1]!) / 2;
    const sd = Math.sqrt(((r[0]! - mean) ** 2 + (r[1]! - mean) ** 2) / 1);
    expect(net.sharpe).toBeCloseTo((mean / sd) * Math.sqrt(2), 6);
    expect(net.sortino).toBeCloseTo((mean / Math.sqrt(r[1]! ** 2 / 2)) * Math.sqrt(2), 6);
    expect(net.sharpe).toBeLessThan(gross.sharpe);
  });

  it("the P&L before and after the bill are both kept, and agree", () => {
    expect(net.netPnl).toBeCloseTo(-1, 9);
    expect(net.netPnlAfterAi).toBeCloseTo(-3, 9);
    expect(gross.netPnlAfterAi).toBeCloseTo(net.netPnlAfterAi, 9);
  });
});

describe("baselines, worked by hand", () => {
  const c = (i: number, open: number, close: number): Candle => ({ time: i * H2, open, high: Math.max(open, close), low: Math.min(open, close), close, volume: 1 });
  const candles = [c(0, 100, 110), c(1, 110, 120), c(2, 120, 90), c(3, 92, 93)];
  const costs = { feeRate: 0.001, slippageBps: 0, candleMs: H2 };

  it("buy and hold buys everything at the first open, fee included", () => {
    const run = buyAndHold(candles.slice(0, 3), 10_000, costs);
    // qty = 10,000 / (100 * 1.001) = 99.9001; marked at 110, 120, 90
    expect(run.equity).toHaveLength(4);
    expect(run.equity[0]).toBe(10_000);
    expect(run.equity[1]).toBeCloseTo(10_989.011, 3);
    expect(run.equity[3]).toBeCloseTo(8_991.009, 3);
    expect(run.fees).toBeCloseTo(9.99001, 5);
  });

  it("the SMA crossover trades at the open after the cross, both ways", () => {
    // SMA(1) over SMA(2): history closes 100, 95 -> below. After c0's close 110: 110 > 102.5, so buy
    // at c1's open 110: qty 90.81827. After c2's close 90: 90 < 105, so sell at c3's open 92.
    const history = [c(-2, 100, 100), c(-1, 100, 95)];
    const run = smaCrossover(history, candles, 10_000, costs, 1, 2);
    expect(run.equity[1]).toBe(10_000);
    expect(run.equity[2]).toBeCloseTo(10_898.193, 3);
    expect(run.equity[3]).toBeCloseTo(8_173.645, 3);
    expect(run.equity[4]).toBeCloseTo(8_346.926, 3);
    expect(run.orders).toBe(2);
    expect(run.tradePnls).toHaveLength(1);
    expect(run.tradePnls[0]).toBeCloseTo(-1_653.074, 3);
    expect(run.fees).toBeCloseTo(9.99001 + 8.35528, 4);
  });

  it("buy and hold at the strategy's exposure invests only that share, the rest stays cash", () => {
    // 25% of 10,000: qty = 2,500 / (100 * 1.001) = 24.975025; marked at 110, 120, 90 beside 7,500 cash.
    const run = buyAndHold(candles.slice(0, 3), 10_000, costs, 0.25);
    expect(run.equity[0]).toBe(10_000);
    expect(run.equity[1]).toBeCloseTo(7_500 + 24.975025 * 110, 4); // 10,247.253
    expect(run.equity[3]).toBeCloseTo(7_500 + 24.975025 * 90, 4); // 9,747.752
    expect(run.fees).toBeCloseTo(2.4975025, 6);
    expect(() => buyAndHold(candles, 10_000, costs, 1.5)).toThrow(/between 0 and 1/);
  });

  it("combines runs of several symbols on one clock, carrying a run's last mark over its holes", () => {
    const a = { name: "a", times: [0, 10, 20], equity: [50, 60, 70], tradePnls: [], orders: 1, fees: 1 };
    const b = { name: "b", times: [0, 20], equity: [50, 40], tradePnls: [], orders: 1, fees: 2 };
    const both = combineRuns([a, b], [0, 10, 20]);
    expect(both.equity).toEqual([100, 110, 110]);
    expect(both.fees).toBe(3);
  });
});

describe("when an exit happens inside its candle", () => {
  // Up candle 100 -> low 90 -> high 110 -> close 105: a path of 10 + 20 + 5 = 35.
  const up = { time: 0, open: 100, high: 110, low: 90, close: 105 };
  it("is read off the path the candle most likely took", () => {
    expect(touchTime(up, 95, H2)).toBe(Math.floor((5 / 35) * H2)); // a stop at 95, 17 min in
    expect(touchTime(up, 108, H2)).toBe(Math.floor((28 / 35) * H2)); // a target at 108, 96 min in
    // Down candle 100 -> high 104 -> low 96 -> close 97 (4 + 8 + 1 = 13): the stop at 99 comes after the high.
    expect(touchTime({ time: 0, open: 100, high: 104, low: 96, close: 97 }, 99, H2)).toBe(Math.floor((9 / 13) * H2));
    expect(touchTime(up, 100, H2)).toBe(0); // at the open
  });
});

describe("the backtest engine on real BTC candles", () => {
  let redis: Redis;
  let db = 0;
  beforeAll(async () => {
    const worker = Number(process.env.VITEST_POOL_ID ?? process.env.VITEST_WORKER_ID ?? 1);
    db = worker % 8;
    redis = new Redis(process.env.TEST_REDIS_URL ?? "redis://127.0.0.1:6379", { db, maxRetriesPerRequest: null });
  });
  afterAll(async () => {
    await redis.quit();
  });
  beforeEach(async () => {
    await redis.flushdb();
  });

  const limits = testConfig().risk;
  const base = (over: Partial<BacktestOptions> = {}): BacktestOptions => ({
    symbol: "BTC/USDT",
    timeframe: "2h",
    candles: btc,
    from: Date.UTC(2022, 5, 1),
    to: Date.UTC(2022, 6, 15) - 1,
    model: offlineDirect(),
    limits,
    feeRate: 0.001,
    slippageBps: 5,
    startingCash: 10_000,
    redis,
    ...over,
  });

  it("keeps its books straight: equity, orders, fees and trades agree with the paper exchange", async () => {
    const { report, curves } = await runBacktest(base());
    expect(report.candles).toBe(44 * 12);
    expect(report.model.decisions).toBe(report.candles);
    expect(curves.strategy).toHaveLength(report.candles + 1);
    expect(curves.strategy[0]!.equity).toBe(10_000);
    const paperOrders = (await redis.lrange("paper:trades", 0, -1)).map((r) => JSON.parse(r) as { fee: number; status: string });
    const filled = paperOrders.filter((o) => o.status === "filled");
    expect(report.strategy.orders).toBe(filled.length);
    expect(report.strategy.orders).toBeGreaterThan(4);
    expect(report.strategy.fees).toBeCloseTo(filled.reduce((a, o) => a + o.fee, 0), 6);
    expect(report.strategy.trades).toBe(await redis.llen("portfolio:closed"));
    // The last mark is cash plus any position at the last close.
    const cash = Number(await redis.hget("paper:balances", "USDT"));
    const held = Number((await redis.hget("paper:balances", "BTC")) ?? 0);
    const lastClose = btc.find((c) => c.time === Date.UTC(2022, 6, 14, 22))!.close;
    expect(report.strategy.endEquity).toBeCloseTo(cash + held * lastClose, 2);
    expect(report.strategy.aiSpend).toBe(0);
    expect(report.risk.stopLosses + report.risk.takeProfits).toBeGreaterThan(0);
    // a real month of 2022: BTC fell; the comparison is reported beside it
    expect(report.buyAndHold.totalReturnPct).toBeLessThan(-10);
  });

  it("makes the same decisions through @daydreamsai/core as called directly, and bills a paid model", async () => {
    const window = { from: Date.UTC(2022, 5, 1), to: Date.UTC(2022, 5, 8) - 1 };
    const direct = await runBacktest(base(window));
    await redis.flushdb();
    const viaCore = await throughAgent({ id: "openai/gpt-4o", pricePerCallUsdc: priceOf("openai/gpt-4o", 0.04), route: "stand-in", path: "test", model: standInModel("openai/gpt-4o") });
    try {
      const paid = await runBacktest(base({ ...window, model: viaCore }));
      expect(paid.curves.strategy).toEqual(direct.curves.strategy);
      expect(paid.report.model.modelCalls).toBe(paid.report.candles);
      expect(paid.report.strategy.aiSpend).toBeCloseTo(0.1 * paid.report.candles, 9);
      expect(paid.report.strategy.netPnlAfterAi).toBeCloseTo(direct.report.strategy.netPnl - 0.1 * paid.report.candles, 6);
      expect(paid.curves.strategyAfterAi.at(-1)!.equity).toBeCloseTo(direct.report.strategy.endEquity - 0.1 * paid.report.candles, 6);
      // The headline figures are net of the bill; the gross ones beside them are the direct run's.
      expect(paid.report.strategyGross).toEqual({ ...direct.report.strategy, aiSpend: paid.report.strategy.aiSpend, netPnlAfterAi: paid.report.strategy.netPnlAfterAi, netReturnAfterAiPct: paid.report.strategy.netReturnAfterAiPct });
      expect(paid.report.strategy.endEquity).toBeCloseTo(direct.report.strategy.endEquity - 0.1 * paid.report.candles, 6);
      expect(paid.report.strategy.totalReturnPct).toBeCloseTo(((direct.report.strategy.endEquity - 0.1 * paid.report.candles) / 10_000 - 1) * 100, 6);
      expect(paid.report.strategy.sharpe).toBeLessThan(direct.report.strategy.sharpe);
      // And the report says the stand-in echoed the offline engine.
      expect(paid.report.decidedBy.counts).toEqual({ "stand-in": paid.report.candles });
      expect(paid.report.decidedBy.summary).toMatch(/say nothing about openai\/gpt-4o/);
      expect(direct.report.decidedBy.counts).toEqual({ "offline engine": direct.report.candles });
    } finally {
      await viaCore.close();
    }
  });

  it("never crosses the AI spending cap", async () => {
    const priced = { ...offlineDirect(), id: "test/paid", pricePerCallUsdc: 0.1, route: "stand-in" as const };
    const calls = { n: 0 };
    const counting = { ...priced, decide: async (i: Parameters<typeof priced.decide>[0]) => (calls.n++, { ...(await offlineDirect().decide(i)), modelCalls: 1 }) };
    const { report } = await runBacktest(base({ model: counting, maxAiSpendUsdc: 1.05, to: Date.UTC(2022, 5, 3) - 1 }));
    expect(calls.n).toBe(10);
    expect(report.model.modelCalls).toBe(10);
    expect(report.model.skippedForBudget).toBe(report.candles - 10);
    expect(report.strategy.aiSpend).toBeLessThanOrEqual(1.05);
  });

  it("asks the model every N candles when told to", async () => {
    const { report } = await runBacktest(base({ decideEvery: 6, to: Date.UTC(2022, 5, 5) - 1 }));
    expect(report.model.decisions).toBe(Math.ceil(report.candles / 6));
  });

  it("compares with buy-and-hold at its own average exposure, and charges only the candles it decides", async () => {
    const { report, curves } = await runBacktest(base());
    expect(report.averageExposurePct).toBeGreaterThan(0);
    expect(report.exposureMatched.exposurePct).toBe(report.averageExposurePct);
    const window = btc.filter((c) => c.time >= base().from && c.time <= base().to);
    // The benchmark holds the strategy's average exposure at every close (rebalanced), not bought once.
    const matched = constantExposure(window, 10_000, { feeRate: 0.001, slippageBps: 5, candleMs: H2 }, report.averageExposurePct / 100);
    // The report rounds the exposure to 0.01%: the curves agree to that.
    expect(curves.exposureMatched.at(-1)!.equity).toBeCloseTo(matched.equity.at(-1)!, 0);
    expect(curves.exposureMatched.at(-1)!.equity).not.toBeCloseTo(buyAndHold(window, 10_000, { feeRate: 0.001, slippageBps: 5, candleMs: H2 }, report.averageExposurePct / 100).equity.at(-1)!, 1);
    // The headline: return against it, won or not, with the edge's interval and the verdict.
    const a = report.edge.afterFees;
    expect(a.strategyReturnPct).toBeCloseTo(report.strategy.totalReturnPct, 6);
    expect(a.benchmarkReturnPct).toBeCloseTo(report.exposureMatched.totalReturnPct, 6);
    expect(a.won).toBe(report.strategy.totalReturnPct > report.exposureMatched.totalReturnPct);
    expect(a.lowPct).toBeLessThanOrEqual(a.perYearPct);
    expect(a.highPct).toBeGreaterThanOrEqual(a.perYearPct);
    expect(report.edge.beforeFees.strategyReturnPct).toBeCloseTo(((report.strategy.endEquity + report.strategy.fees) / 10_000 - 1) * 100, 6);
    expect(report.feeSharePct).toBe(report.strategyGross.netPnl + report.strategy.fees > 0 ? Number(((report.strategy.fees / (report.strategyGross.netPnl + report.strategy.fees)) * 100).toFixed(6)) : null);
    expect(report.verdict).toMatch(/^Verdict: offline-engine (loses to|beats|is ahead of) buy-and-hold at the same exposure on BTC\/USDT 2h, 2022-06-01 to 2022-07-14/);
    expect(plannedDecisions(base())).toBe(report.model.decisions);
    // From the first candle: the 60 that warm the indicators up are not decided, nor charged.
    expect(plannedDecisions({ ...base(), from: 0, to: btc[299]!.time })).toBe(240);
    expect(plannedDecisions({ ...base(), decideEvery: 6 })).toBe(Math.ceil(report.candles / 6));
    expect(plannedDecisions({ ...base(), decisionIntervalSeconds: 300 })).toBe(report.candles); // live's 5 min: once per 2h candle
  });

  it("binds the loss cool-down as live does: an exit is stamped inside its candle", async () => {
    // 70 quiet candles, then: a quiet one (buy at the open), one whose low breaks the 1% stop, then quiet ones.
    const t0 = Date.UTC(2024, 0, 1);
    const quiet = (i: number): Candle => ({ time: t0 + i * H2, open: 100, high: 100.4, low: 99.7, close: i % 2 ? 100.2 : 100, volume: 1 });
    const candles = Array.from({ length: 70 }, (_, i) => quiet(i));
    const pattern = ["quiet", "loss", "quiet", "quiet"];
    for (let k = 0; k < 12; k++) {
      const i = 70 + k;
      candles.push(pattern[k % 4] === "loss" ? { time: t0 + i * H2, open: 100, high: 100.2, low: 98, close: 98.5, volume: 1 } : quiet(i));
    }
    // Our own decider: buy 10% with a 1% stop whenever flat (the engine's rules are not under test).
    const buyer: PricedModel = {
      id: "always-buy", pricePerCallUsdc: 0, route: "offline", path: "test",
      async decide(inputs) {
        const held = inputs.portfolio.positions.some((p) => p.symbol === inputs.symbol);
        const d: Decision = { symbol: inputs.symbol, action: held ? "hold" : "buy", sizePct: held ? 0 : 10, confidence: 0.6, reasons: ["test"], stopLossPct: 1, takeProfitPct: 50 };
        return { ok: true, decision: d, modelCalls: 0 };
      },
      async close() {},
    };
    const cooled = { ...limits, cooldownAfterLossMinutes: 120 };
    const { report } = await runBacktest(base({ symbol: "TEST/USDT", candles, from: candles[70]!.time, to: candles.at(-1)!.time, model: buyer, limits: cooled }));
    expect(report.risk.stopLosses).toBe(3);
    // Down candle 100 -> high 100.2 -> low 98 -> close 98.5, a path of 0.2 + 2.2 + 0.5 = 2.9: the stop
    // at 99 was touched 1.4 along it (58 min in). The next decision, 62 min later, is inside the
    // 120-min cool-down; the one after is not. Stamped at the open, as before, it never bound.
    expect(report.risk.refusedByRule.cooldown).toBe(3);
    const loss = Number(await redis.hget("portfolio:last-loss", "TEST/USDT"));
    const lastLossCandle = candles[70 + 9]!.time;
    expect(loss).toBe(lastLossCandle + Math.floor((1.4 / 2.9) * H2));
  });

  it("binds the loss cool-down after a decision sell's losing close, on the next candle exactly its length later", async () => {
    // Opens fall 0.1 a candle, ranges are narrow (no stop or target is touched): every round trip
    // a decision closes is a loss. Our decider flips: buy when flat, close when holding.
    const t0 = Date.UTC(2024, 0, 1);
    const candles = Array.from({ length: 82 }, (_, i): Candle => {
      const open = 100 - 0.1 * Math.max(0, i - 69);
      return { time: t0 + i * H2, open, high: open + 0.05, low: open - 0.12, close: open - 0.1, volume: 1 };
    });
    const flipper: PricedModel = {
      id: "flipper", pricePerCallUsdc: 0, route: "offline", path: "test",
      async decide(inputs) {
        const held = inputs.portfolio.positions.some((p) => p.symbol === inputs.symbol);
        const d: Decision = held
          ? { symbol: inputs.symbol, action: "close", sizePct: 0, confidence: 0.6, reasons: ["flip out"] }
          : { symbol: inputs.symbol, action: "buy", sizePct: 10, confidence: 0.6, reasons: ["flip in"], stopLossPct: 10, takeProfitPct: 50 };
        return { ok: true, decision: d, modelCalls: 0 };
      },
      async close() {},
    };
    const { report } = await runBacktest(base({ symbol: "TEST/USDT", candles, from: candles[70]!.time, to: candles.at(-1)!.time, model: flipper, limits: { ...limits, cooldownAfterLossMinutes: 120 } }));
    // 12 decisions: buy, close at a loss, buy refused (120 min after the close, which filled just
    // after its decision, as live), then again: 4 round trips and 4 refusals. Stamped at the
    // decision's own time instead, the close was exactly 120 min before the next buy, and the
    // strict cool-down let it through: 6 round trips, no refusal.
    expect(report.risk.refusedByRule.cooldown).toBe(4);
    expect(report.strategy.trades).toBe(4);
    expect(report.risk.stopLosses + report.risk.takeProfits).toBe(0);
    const loss = Number(await redis.hget("portfolio:last-loss", "TEST/USDT"));
    expect(loss).toBe(candles[80]!.time + DECISION_FILL_LAG_MS);
    // With a cool-down shorter than a candle, the next candle's buy goes through.
    await redis.flushdb();
    const short = await runBacktest(base({ symbol: "TEST/USDT", candles, from: candles[70]!.time, to: candles.at(-1)!.time, model: flipper, limits: { ...limits, cooldownAfterLossMinutes: 119 } }));
    expect(short.report.risk.refusedByRule.cooldown ?? 0).toBe(0);
    expect(short.report.strategy.trades).toBe(6);
  });

  it("records a run with real calls once, and replays it free to identical trades", async () => {
    // A stand-in for a paid model (our own seam): the offline engine with other rules, billed per call.
    const paid: PricedModel = {
      id: "acme/model-1", pricePerCallUsdc: 0.05, route: "router", path: "test stand-in for real calls",
      async decide(inputs) {
        const position = inputs.portfolio.positions.find((p) => p.symbol === inputs.symbol);
        const r = validateDecision(decideOffline(inputs.snapshot, position, inputs.limits, { stopAtr: 2, targetR: 2, volTarget: 0, maxEntryRsi: 100, slowExit: false }));
        return r.ok ? { ok: true, decision: r.decision, modelCalls: 1 } : { ok: false, error: r.error, modelCalls: 1 };
      },
      async close() {},
    };
    const store = new MemoryRecordings();
    const recording = recordingModel(paid, store, () => 1);
    const window = { from: Date.UTC(2022, 5, 1), to: Date.UTC(2022, 5, 12) - 1 };
    const first = await runBacktest(base({ ...window, model: recording }));
    expect(recording.recorded()).toBe(first.report.candles);
    expect(first.report.strategy.aiSpend).toBeCloseTo(0.05 * first.report.candles, 9);
    const firstTrades = await redis.lrange("portfolio:closed", 0, -1);
    expect(first.report.strategy.orders).toBeGreaterThan(2);

    // Shared as JSONL, imported by someone else, replayed: no calls, nothing spent, the same trades.
    const shared = new MemoryRecordings(fromJsonl(toJsonl(await store.all())));
    await redis.flushdb();
    const again = await runBacktest(base({ ...window, model: replayModel(shared, "acme/model-1", "test") }));
    expect(again.curves.strategy).toEqual(first.curves.strategy);
    expect(await redis.lrange("portfolio:closed", 0, -1)).toEqual(firstTrades);
    expect(again.report.strategy.aiSpend).toBe(0);
    expect(again.report.model.replayed).toBe(again.report.candles);
    expect(again.report.decidedBy.counts).toEqual({ recording: again.report.candles });

    // A longer window than was recorded: the rest is decided by the offline engine, and counted.
    await redis.flushdb();
    const longer = await runBacktest(base({ from: window.from, to: window.to + 24 * H2, model: replayModel(shared, "acme/model-1", "test") }));
    expect(longer.report.model.replayed + longer.report.model.notRecorded).toBe(longer.report.candles);
    expect(longer.report.model.notRecorded).toBeGreaterThan(0);
    expect(longer.report.decidedBy.counts["offline engine (no recording)"]).toBe(longer.report.model.notRecorded);
  });

  it("keeps live recordings in Redis, first answer kept, and moves them as JSONL", async () => {
    const store = new RedisRecordings(redis);
    const answer: Decision = { symbol: "BTC/USDT", action: "buy", sizePct: 5, confidence: 0.7, reasons: ["recorded live"] };
    const hash = inputHash({ symbol: "BTC/USDT", n: 1 });
    await recordModelDecision(store, { inputHash: hash, model: "acme/model-1", answer, priceMicro: 20_000, recordedAt: 5 });
    await recordModelDecision(store, { inputHash: hash, model: "acme/model-1", answer: { ...answer, action: "hold", sizePct: 0 }, priceMicro: 20_000, recordedAt: 6 });
    expect((await store.get(hash, "acme/model-1"))?.answer.action).toBe("buy");
    expect(await store.get(hash, "other/model")).toBeUndefined();
    const copy = new MemoryRecordings();
    expect(await importJsonl(copy, await exportJsonl(store))).toBe(1);
    expect(await copy.all()).toEqual(await store.all());
  });

  it("runs several symbols on one account under the shared limits", async () => {
    const eth = loadCandles(join(SHARED, "ETH_USDT_2h.csv"));
    const doge = loadCandles(join(SHARED, "DOGE_USDT_2h.csv"));
    const tight = { ...limits, maxPositionPct: 30, maxExposurePct: 40 };
    const { report, curves } = await runBacktest(base({ series: [{ symbol: "ETH/USDT", candles: eth }, { symbol: "DOGE/USDT", candles: doge }], from: 0, to: Date.now(), limits: tight }));
    expect(report.symbols).toEqual(["ETH/USDT", "DOGE/USDT"]);
    // The period both cover: DOGE starts later (plus its 60 warm-up candles), ETH ends first.
    expect(report.from).toBe(new Date(doge[60]!.time).toISOString().slice(0, 16).replace("T", " "));
    expect(report.to).toBe(new Date(eth.at(-1)!.time).toISOString().slice(0, 16).replace("T", " "));
    expect(report.model.decisions).toBe(2 * report.candles);
    expect(report.averageExposurePct).toBeLessThanOrEqual(40 + 1);
    expect(curves.buyAndHold[0]!.equity).toBe(10_000);
    expect(curves.buyAndHold).toHaveLength(curves.strategy.length);
  });

  it("walks forward a year at a time and counts the wins against each baseline", async () => {
    const periods = yearlyPeriods(btc, Date.UTC(2021, 11, 20), Date.UTC(2022, 0, 10) - 1);
    expect(periods.map((p) => p.label)).toEqual(["2021 (12-20 to 12-31)", "2022 (01-01 to 01-09)"]);
    const wf = await walkForward({ ...base(), from: undefined, to: undefined } as unknown as BacktestOptions, periods);
    expect(wf.rows).toHaveLength(2);
    const s = wf.pooled;
    expect(s.periods).toBe(2);
    // Won on return against the rebalanced benchmark; Sharpe is counted beside it, not as the headline.
    expect(s.wonOnReturn).toBe(wf.rows.filter((r) => r.strategy.totalReturnPct > r.exposureMatched.totalReturnPct).length);
    expect(s.beside.exposureMatched.sharpeWins).toBe(wf.rows.filter((r) => r.strategy.sharpe > r.exposureMatched.sharpe).length);
    expect(wf.bySymbol.map((b) => b.symbol)).toEqual(["BTC/USDT"]);
    expect(wf.verdict).toMatch(/^Verdict: offline-engine /);
  });

  it("walks several symbols each on its own, one table each, and pools them on return with one interval", async () => {
    const eth = loadCandles(join(SHARED, "ETH_USDT_2h.csv"));
    const doge = loadCandles(join(SHARED, "DOGE_USDT_2h.csv"));
    const wf = await walkForward({ ...base(), symbol: undefined, candles: undefined, series: [{ symbol: "ETH/USDT", candles: eth }, { symbol: "DOGE/USDT", candles: doge }] } as unknown as BacktestOptions);
    expect(wf.bySymbol.map((b) => [b.symbol, b.rows.map((r) => r.period)])).toEqual([
      ["ETH/USDT", ["2025 (04-30 to 07-23)"]],
      ["DOGE/USDT", ["2025 (06-30 to 09-08)"]],
    ]);
    expect(wf.pooled.periods).toBe(2);
    expect(wf.pooled.symbols).toEqual(["ETH/USDT", "DOGE/USDT"]);
    expect(wf.pooled.wonOnReturn).toBe(wf.rows.filter((r) => r.edge.afterFees.won).length);
    const e = wf.pooled.edgePerYear.afterFees;
    expect(e.lowPct).toBeLessThanOrEqual(e.meanPct);
    expect(e.highPct).toBeGreaterThanOrEqual(e.meanPct);
    // The pooled mean weighs every candle alike: between the two symbols' own means.
    const means = wf.bySymbol.map((b) => b.summary.edgePerYear.afterFees.meanPct);
    expect(e.meanPct).toBeGreaterThanOrEqual(Math.min(...means) - 1e-9);
    expect(e.meanPct).toBeLessThanOrEqual(Math.max(...means) + 1e-9);
    expect(wf.heldOut).toBeUndefined(); // nothing here was used to choose the rules
    const md = walkForwardMarkdown(wf);
    expect(md).toMatch(/### ETH\/USDT[\s\S]*### DOGE\/USDT[\s\S]*### Pooled[\s\S]*All symbols, all periods\*\* \(2 period\(s\) of ETH\/USDT, DOGE\/USDT\)/);
    expect(md.trim().split("\n").at(-1)).toBe(wf.verdict);
  });

  it("runs the full 35,000-candle history to the end", async () => {
    const { report, curves } = await runBacktest(base({ from: 0, to: Date.now() }));
    expect(report.candles).toBe(btc.length - 60); // 60 candles warm the indicators up
    expect(curves.strategy).toHaveLength(report.candles + 1);
    expect(report.gaps).toHaveLength(18); // the recorded outages, reported and not filled
    expect(report.strategy.trades).toBeGreaterThan(100);
    expect(Number.isFinite(report.strategy.sharpe)).toBe(true);
    expect(report.buyAndHold.totalReturnPct).toBeGreaterThan(1000);
  }, 240_000);
});

describe("npm run backtest", () => {
  it("parses its options and refuses bad ones with the usage", () => {
    const a = parseArgs(["--symbol", "eth-usdt", "--from", "2022-01-01", "--to", "2022-12-31", "--model", "openai/gpt-4o", "--every", "4"]);
    expect(a.symbol).toBe("ETH/USDT");
    expect(a.from).toBe(Date.UTC(2022, 0, 1));
    expect(a.to).toBe(Date.UTC(2023, 0, 1) - 1);
    expect(a.every).toBe(4);
    expect(() => parseArgs(["--from", "2022-02-30"])).toThrow(/not a date: use YYYY-MM-DD/);
    expect(() => parseArgs(["--from", "2022-13-01"])).toThrow(/not a date/);
    expect(() => parseArgs(["--every", "0"])).toThrow(/--every "0" must be a whole number above 0/);
    expect(() => parseArgs(["--from", "2022-02-01", "--to", "2022-01-01"])).toThrow(/--to is before --from/);
    expect(() => parseArgs(["--frobnicate", "1"])).toThrow(/Unknown option --frobnicate/);
    expect(() => parseArgs(["--model"])).toThrow(/--model needs a value/);
    const p = parseArgs(["--symbols", "eth-usdt,DOGE/USDT", "--interval", "live", "--walk-forward"]);
    expect(p.symbols).toEqual(["ETH/USDT", "DOGE/USDT"]);
    expect(p.interval).toBe("live");
    expect(p.walkForward).toBe(true);
    expect(() => parseArgs(["--symbols", "BTC/USDT,ETH/BTC"])).toThrow(/one quote currency/);
    expect(() => parseArgs(["--replay", "x.jsonl", "--real-calls"])).toThrow(/makes no calls/);
    expect(() => parseArgs(["--record", "x.jsonl"])).toThrow(/--record is for real calls \(--real-calls\) and local models/);
    expect(parseArgs(["--record", "x.jsonl", "--model", "local:llama3.2"]).record).toBe("x.jsonl");
    expect(parseArgs(["--strategy", "strategies/sma-crossover.ts"]).strategy).toBe("strategies/sma-crossover.ts");
    expect(() => parseArgs(["--strategy", "a.ts", "--model", "openai/gpt-4o"])).toThrow(/--strategy and --model both name the decider/);
    expect(parseArgs(["--compare", "offline, sma ,local:llama3.2"]).compare).toEqual(["offline", "sma", "local:llama3.2"]);
    expect(() => parseArgs(["--compare", "offline"])).toThrow(/--compare needs two deciders or more/);
    expect(() => parseArgs(["--compare", "offline,sma", "--model", "x"])).toThrow(/--compare names every decider itself/);
    expect(parseArgs(["--symbols", "all", "--walk-forward"]).allSymbols).toBe(true);
    expect(() => parseArgs(["--local-url", "ollama"])).toThrow(/--local-url "ollama" is not an http\(s\) URL/);
    expect(() => parseArgs(["--every", "2", "--interval", "300"])).toThrow(/--every or --interval/);
  });

  it("replays a shared JSONL file and says so; a bad file is refused with the line at fault", async () => {
    const dir = mkdtempSync(join(tmpdir(), "backtest-replay-"));
    const file = join(dir, "shared.jsonl");
    const answer: Decision = { symbol: "BTC/USDT", action: "hold", sizePct: 0, confidence: 0.5, reasons: ["recorded"] };
    writeFileSync(file, toJsonl([{ inputHash: "a".repeat(64), model: "acme/model-1", answer, priceMicro: 50_000, recordedAt: 1 }]));
    const bad = join(dir, "bad.jsonl");
    writeFileSync(bad, `${readFileSync(file, "utf8")}{"inputHash":"nope"}\n`);
    const out: string[] = [];
    const outWrite = process.stdout.write.bind(process.stdout);
    const errWrite = process.stderr.write.bind(process.stderr);
    process.stdout.write = ((s: string) => (out.push(String(s)), true)) as typeof process.stdout.write;
    process.stderr.write = ((s: string) => (out.push(String(s)), true)) as typeof process.stderr.write;
    try {
      expect(await main(["--from", "2022-06-01", "--to", "2022-06-01", "--replay", file, "--out", dir], {})).toBe(0);
      expect(await main(["--replay", bad, "--model", "acme/model-1"], {})).toBe(2);
    } finally {
      process.stdout.write = outWrite;
      process.stderr.write = errWrite;
    }
    const text = out.join("");
    // The model is read from the file; nothing in it matches these inputs, so the offline engine decided, and the report says it.
    expect(text).toMatch(/Decided by: 12 decisions: offline engine \(no recording\) 12: replayed from recordings of acme\/model-1/);
    expect(text).toMatch(/bad\.jsonl line 2: inputHash must be 64 hex digits/);
    rmSync(dir, { recursive: true, force: true });
  });

  it("walks forward over every symbol of a --data folder and ends with the verdict", async () => {
    const dir = mkdtempSync(join(tmpdir(), "backtest-folder-"));
    for (const f of ["ETH_USDT_2h.csv", "DOGE_USDT_2h.csv"]) writeFileSync(join(dir, f), readFileSync(join(SHARED, f)));
    const out: string[] = [];
    const outWrite = process.stdout.write.bind(process.stdout);
    const errWrite = process.stderr.write.bind(process.stderr);
    process.stdout.write = ((s: string) => (out.push(String(s)), true)) as typeof process.stdout.write;
    process.stderr.write = ((s: string) => (out.push(String(s)), true)) as typeof process.stderr.write;
    try {
      expect(await main(["--walk-forward", "--data", dir, "--out", dir], {})).toBe(0);
    } finally {
      process.stdout.write = outWrite;
      process.stderr.write = errWrite;
    }
    const text = out.join("");
    expect(text).toMatch(/Walk-forward DOGE\/USDT, ETH\/USDT 2h, 2 period\(s\), offline-engine/);
    expect(text).toMatch(/### DOGE\/USDT[\s\S]*### ETH\/USDT[\s\S]*### Pooled/);
    expect(text).toMatch(/Verdict: offline-engine (loses to|beats|is ahead of) buy-and-hold at the same exposure over 2 period\(s\) of DOGE\/USDT, ETH\/USDT/);
    expect(existsSync(join(dir, "walkforward-DOGE_USDT+ETH_USDT-2h-offline-engine.md"))).toBe(true);
    rmSync(dir, { recursive: true, force: true });
  }, 120_000);

  it("hashes what the model was shown, not the job id or the key order", () => {
    const a = { decisionId: "x", symbol: "BTC/USDT", limits: { b: 1, a: 2 } };
    expect(inputHash(a)).toBe(inputHash({ limits: { a: 2, b: 1 }, symbol: "BTC/USDT", decisionId: "y" }));
    expect(inputHash(a)).not.toBe(inputHash({ ...a, symbol: "ETH/USDT" }));
    expect(inputHash(a)).toMatch(/^[0-9a-f]{64}$/);
  });

  it("writes the JSON report and the PNG chart, and shows the estimate for a paid model first", async () => {
    const out = mkdtempSync(join(tmpdir(), "backtest-out-"));
    const stderr: string[] = [];
    const stdout: string[] = [];
    const errWrite = process.stderr.write.bind(process.stderr);
    const outWrite = process.stdout.write.bind(process.stdout);
    process.stderr.write = ((s: string) => (stderr.push(String(s)), true)) as typeof process.stderr.write;
    process.stdout.write = ((s: string) => (stdout.push(String(s)), true)) as typeof process.stdout.write;
    try {
      const code = await main(["--symbol", "BTC/USDT", "--from", "2022-06-01", "--to", "2022-06-03", "--model", "google-vertex/gemini-2.5-flash", "--out", out], {});
      expect(code).toBe(0);
    } finally {
      process.stderr.write = errWrite;
      process.stdout.write = outWrite;
    }
    expect(stderr.join("")).toMatch(/Estimated AI spend: 36 decisions × \$0\.02 \(google-vertex\/gemini-2\.5-flash\) = \$0\.72, charged to the report only/);
    const text = stdout.join("");
    expect(text).toMatch(/AI spend \(USDC\)\s+0\.7200/);
    expect(text).toMatch(/net P&L after AI spend/);
    const json = join(out, "backtest-BTC_USDT-2h-2022-06-01-2022-06-03-google-vertex_gemini-2.5-flash.json");
    const png = json.replace(/\.json$/, ".png");
    expect(existsSync(json) && existsSync(png)).toBe(true);
    const saved = JSON.parse(readFileSync(json, "utf8")) as { report: { strategy: { aiSpend: number }; model: { route: string } } };
    expect(saved.report.strategy.aiSpend).toBeCloseTo(0.72, 9);
    expect(saved.report.model.route).toBe("stand-in");
    expect(readFileSync(png).subarray(0, 8)).toEqual(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]));
    rmSync(out, { recursive: true, force: true });
  }, 120_000);

  it("sends a paid model's calls to a router stand-in on this machine with --router-url", async () => {
    // The smallest OpenAI-style streaming endpoint, as the Dreams Router serves: every call holds.
    const calls: { auth?: string; model?: string }[] = [];
    const hold = `<response><reasoning>stand-in</reasoning><action_call name="RiskManagement">${JSON.stringify({ stance: "hold", confidence: 0.5, reasons: ["router stand-in"] })}</action_call></response>`;
    const server = createServer((req, res) => {
      let body = "";
      req.on("data", (c: Buffer) => (body += c.toString()));
      req.on("end", () => {
        calls.push({ auth: req.headers.authorization, model: (JSON.parse(body) as { model?: string }).model });
        res.writeHead(200, { "content-type": "text/event-stream" });
        const chunk = (delta: object, finish: string | null) => `data: ${JSON.stringify({ id: "c1", object: "chat.completion.chunk", created: 1, model: "openai/gpt-4o", choices: [{ index: 0, delta, finish_reason: finish }] })}\n\n`;
        res.end(chunk({ role: "assistant", content: hold }, null) + chunk({}, "stop") + "data: [DONE]\n\n");
      });
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1`;
    const out = mkdtempSync(join(tmpdir(), "backtest-router-"));
    const stdout: string[] = [];
    const outWrite = process.stdout.write.bind(process.stdout);
    const errWrite = process.stderr.write.bind(process.stderr);
    process.stdout.write = ((s: string) => (stdout.push(String(s)), true)) as typeof process.stdout.write;
    process.stderr.write = ((s: string) => (stdout.push(String(s)), true)) as typeof process.stderr.write;
    try {
      expect(await main(["--from", "2022-06-01", "--to", "2022-06-01", "--model", "openai/gpt-4o", "--router-url", url, "--every", "3", "--out", out], {})).toBe(0);
    } finally {
      process.stdout.write = outWrite;
      process.stderr.write = errWrite;
      server.close();
    }
    expect(calls).toHaveLength(4); // 12 candles, every 3rd
    expect(calls.every((c) => c.model === "openai/gpt-4o" && c.auth?.startsWith("Bearer "))).toBe(true);
    const text = stdout.join("");
    expect(text).toMatch(/router stand-in at http:\/\/127\.0\.0\.1:\d+\/v1 \(no money moves\); \$0\.1 per decision, 4 decisions, 4 model calls/);
    expect(text).toMatch(/AI spend \(USDC\)\s+0\.4000/);
    expect(text).toMatch(/trades \(round trips\)\s+0/); // it only ever held
    rmSync(out, { recursive: true, force: true });
  }, 120_000);

  it("never sends a paid model to a router off this machine without --real-calls", async () => {
    const stderr: string[] = [];
    const errWrite = process.stderr.write.bind(process.stderr);
    process.stderr.write = ((s: string) => (stderr.push(String(s)), true)) as typeof process.stderr.write;
    try {
      // No keys in this environment, whatever the developer's .env holds.
      expect(await main(["--model", "openai/gpt-4o", "--router-url", "https://router.example.com/v1"], {})).toBe(2);
      expect(await main(["--model", "openai/gpt-4o", "--real-calls", "--from", "2022-01-01", "--to", "2022-01-02"], {})).toBe(2);
      expect(await main(["--symbol", "XRP/USDT"], {})).toBe(2);
    } finally {
      process.stderr.write = errWrite;
    }
    const text = stderr.join("");
    expect(text).toMatch(/is not on this machine: a router elsewhere means real calls, which need --real-calls/);
    expect(text).toMatch(/--real-calls needs DREAMS_ROUTER_API_KEY or X402_PRIVATE_KEY/);
    expect(text).toMatch(/No XRP_USDT_2h\.csv in/);
  });
});
