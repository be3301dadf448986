// The evaluation's parts worked by hand: the constant-exposure benchmark, the block-bootstrap
// interval on series whose answer is known, wins counted on return (not Sharpe), the fee share and
// the verdict line.
import { describe, expect, it } from "vitest";
import { buyAndHold } from "../src/backtest/baselines.js";
import { blockBootstrapMean, constantExposure, countWins, edgeOf, feeSharePct, quantile, returnsOf, seededRandom, verdict } from "../src/backtest/evaluation.js";
import { computeMetrics } from "../src/backtest/metrics.js";
import type { Candle } from "../src/domain/types.js";

const H2 = 7_200_000;
const c = (i: number, open: number, close: number): Candle => ({ time: i * H2, open, high: Math.max(open, close), low: Math.min(open, close), close, volume: 1 });

describe("buy-and-hold at a constant exposure, worked by hand", () => {
  const candles = [c(0, 100, 110), c(1, 110, 121), c(2, 121, 99)];
  const costs = { feeRate: 0.001, slippageBps: 0, candleMs: H2 };

  it("buys the fraction at the first open, then holds that fraction of equity at every close", () => {
    const run = constantExposure(candles, 10_000, costs, 0.25);
    // qty = 2,500 / (100 x 1.001) = 24.975025; fee 2.4975025; first close: 7,500 + 24.975025 x 110.
    const e1 = 7_500 + (2_500 / 100.1) * 110;
    expect(run.equity[0]).toBe(10_000);
    expect(run.equity[1]).toBeCloseTo(e1, 9); // 10,247.25275
    // Rebalanced to 25% at 110, so 121 adds a quarter of +10%: x 1.025.
    expect(run.equity[2]).toBeCloseTo(e1 * 1.025, 9); // 10,503.43407
    // And 99 takes a quarter of -18.18%: x (1 - 0.25 x 22/121).
    expect(run.equity[3]).toBeCloseTo(e1 * 1.025 * (1 - 0.25 * (22 / 121)), 9); // 10,026.0053
    expect(run.fees).toBeCloseTo((2_500 / 100.1) * 100 * 0.001, 12); // 2.4975025
    expect(run.times).toEqual([0, H2, 2 * H2, 3 * H2]);
  });

  it("differs from buy-and-hold bought once, whose exposure drifts with the price", () => {
    const once = buyAndHold(candles, 10_000, costs, 0.25);
    const kept = constantExposure(candles, 10_000, costs, 0.25);
    // Bought once: 24.975025 held throughout, 7,500 + 24.975025 x 99 = 9,972.527 at the end.
    expect(once.equity[3]).toBeCloseTo(7_500 + (2_500 / 100.1) * 99, 6);
    expect(kept.equity[3]! - once.equity[3]!).toBeCloseTo(53.478, 2);
    // A market that rises tenfold: the bought-once 10% grows to half the account, the rebalanced one stays at 10%.
    const rise = Array.from({ length: 10 }, (_, i) => c(i, 100 * 1.2915 ** i, 100 * 1.2915 ** (i + 1)));
    const driftEnd = buyAndHold(rise, 100, { ...costs, feeRate: 0 }, 0.1).equity.at(-1)!;
    const keptEnd = constantExposure(rise, 100, { ...costs, feeRate: 0 }, 0.1).equity.at(-1)!;
    expect(driftEnd).toBeCloseTo(90 + 10 * 1.2915 ** 10, 6); // about 218: +118%
    expect(keptEnd).toBeCloseTo(100 * 1.02915 ** 10, 6); // about 133: +33%
  });

  it("refuses a fraction outside 0..1", () => {
    expect(() => constantExposure(candles, 10_000, costs, 1.2)).toThrow(/between 0 and 1/);
    expect(() => constantExposure([], 10_000, costs, 0.5)).toThrow(/no candles/);
  });
});

describe("the block-bootstrap interval, on series with known answers", () => {
  it("is a point for a constant series, and for one block the length of the series (each resample is a rotation)", () => {
    const flat = blockBootstrapMean([0.002, 0.002, 0.002, 0.002], { resamples: 500 });
    expect(flat.mean).toBeCloseTo(0.002, 12);
    expect(flat.low).toBeCloseTo(0.002, 12);
    expect(flat.high).toBeCloseTo(0.002, 12);
    const xs = [0.03, -0.01, 0.02, -0.04, 0.05, 0.01];
    const whole = blockBootstrapMean(xs, { blockLength: xs.length, resamples: 300, seed: 7 });
    expect(whole.mean).toBeCloseTo(0.01, 12);
    expect(whole.low).toBeCloseTo(0.01, 12);
    expect(whole.high).toBeCloseTo(0.01, 12);
  });

  it("keeps what blocks keep: +1, -1 alternating resampled in blocks of 2 always sums to zero, in blocks of 1 it does not", () => {
    const alternating = Array.from({ length: 40 }, (_, i) => (i % 2 === 0 ? 1 : -1));
    const pairs = blockBootstrapMean(alternating, { blockLength: 2, resamples: 1000 });
    expect(pairs.low).toBe(0);
    expect(pairs.high).toBe(0);
    const singles = blockBootstrapMean(alternating, { blockLength: 1, resamples: 1000 });
    expect(singles.low).toBeLessThan(-0.1);
    expect(singles.high).toBeGreaterThan(0.1);
  });

  it("matches the binomial answer: one 1 among 100 values, points resampled alone, 95% interval 0 to 0.03", () => {
    // A resample's mean is K/100 with K ~ Binomial(100, 0.01): P(K = 0) = 0.366 > 2.5%, and
    // P(K <= 2) = 0.921 < 97.5% < P(K <= 3) = 0.982. So the interval is [0, 3/100].
    const xs = [...Array.from({ length: 99 }, () => 0), 1];
    const ci = blockBootstrapMean(xs, { blockLength: 1, resamples: 10_000, seed: 42 });
    expect(ci.mean).toBeCloseTo(0.01, 12);
    expect(ci.low).toBe(0);
    expect(ci.high).toBeCloseTo(0.03, 12);
    expect(ci).toMatchObject({ level: 0.95, resamples: 10_000, seed: 42, blockLength: 1, n: 100 });
  });

  it("reproduces with its seed, and pools strata by their counts", () => {
    const xs = Array.from({ length: 300 }, (_, i) => Math.sin(i) / 100);
    expect(blockBootstrapMean(xs, { seed: 3 })).toEqual(blockBootstrapMean(xs, { seed: 3 }));
    expect(blockBootstrapMean(xs, { seed: 3 }).low).not.toBe(blockBootstrapMean(xs, { seed: 4 }).low);
    // Two symbols on one candle count twice: (1 + 3 + 5) / 3 observations, not (4/2 + 5) / 2.
    const pooled = blockBootstrapMean([{ sums: [4, 5], counts: [2, 1] }], { blockLength: 2 });
    expect(pooled.mean).toBeCloseTo(3, 12);
    expect(pooled.n).toBe(3);
  });

  it("has a seeded generator of floats in [0, 1) and a type-7 quantile", () => {
    const r = seededRandom(1);
    const draws = Array.from({ length: 20_000 }, () => r());
    expect(Math.min(...draws)).toBeGreaterThanOrEqual(0);
    expect(Math.max(...draws)).toBeLessThan(1);
    expect(draws.reduce((a, b) => a + b, 0) / draws.length).toBeCloseTo(0.5, 1);
    expect(seededRandom(9)()).toBe(seededRandom(9)());
    expect(quantile([1, 2, 3, 4], 0.5)).toBe(2.5);
    expect(quantile([1, 2, 3, 4], 1)).toBe(4);
  });
});

describe("the edge against the benchmark, worked by hand", () => {
  it("is the mean per-candle return difference times candles a year", () => {
    // +1% a candle against +0.5%: 0.5 points a candle, 2 candles a year -> 1 point a year, no spread.
    const e = edgeOf([100, 101, 102.01], [100, 100.5, 101.0025], 2);
    expect(e.differences[0]).toBeCloseTo(0.005, 12);
    expect(e.differences[1]).toBeCloseTo(0.005, 12);
    expect(e.perYearPct).toBeCloseTo(1, 9);
    expect(e.lowPct).toBeCloseTo(1, 9);
    expect(e.highPct).toBeCloseTo(1, 9);
    expect(e.strategyReturnPct).toBeCloseTo(2.01, 9);
    expect(e.benchmarkReturnPct).toBeCloseTo(1.0025, 9);
    expect(e.won).toBe(true);
    expect(() => edgeOf([100, 101], [100, 101, 102], 2)).toThrow(/share their clock/);
  });

  it("counts a period as won on return, never on Sharpe: the steady +4.59% loses to a volatile +4.77%", () => {
    const steady = [100, 101.5, 103.03, 104.59];
    const volatile = [100, 110, 100, 104.77];
    const times = [0, 1, 2, 3];
    const m = (equity: number[]) => computeMetrics({ equity, times, periodsPerYear: 4380, tradePnls: [], orders: 0, fees: 0, aiSpend: 0 });
    expect(m(steady).sharpe).toBeGreaterThan(m(volatile).sharpe); // it "wins" on Sharpe
    const e = edgeOf(steady, volatile, 4380);
    expect(e.won).toBe(false);
    expect(countWins([{ edge: e }, { edge: edgeOf(volatile, steady, 4380) }])).toBe(1);
    expect(returnsOf([100, 110, 99])).toEqual([0.10000000000000009, -0.09999999999999998]);
  });

  it("says the fee share of the profit before fees, and nothing when there was none", () => {
    expect(feeSharePct(20, 30)).toBeCloseTo(40, 9); // 20 of the 50 made before fees
    expect(feeSharePct(42, 58)).toBeCloseTo(42, 9);
    expect(feeSharePct(20, -25)).toBeNull(); // lost 5 before fees
  });

  it("ends a report with one plain line", () => {
    expect(verdict("offline-engine", { perYearPct: -1.6, lowPct: -2.9, highPct: -0.3, level: 0.95 }, "over 22 periods")).toBe(
      "Verdict: offline-engine loses to buy-and-hold at the same exposure over 22 periods: -1.60 points a year after every cost (95% interval -2.90 to -0.30). Holding that much of the market without timing did better.",
    );
    expect(verdict("x", { perYearPct: 2, lowPct: 0.5, highPct: 3.5, level: 0.95 })).toMatch(/^Verdict: x beats buy-and-hold at the same exposure: \+2\.00/);
    expect(verdict("x", { perYearPct: -0.4, lowPct: -1.5, highPct: 0.7, level: 0.95 })).toMatch(/loses to buy-and-hold at the same exposure \(-0\.40 points a year after every cost\), but the 95% interval -1\.50 to \+0\.70 includes zero: no edge that can be told from luck\.$/);
  });
});
