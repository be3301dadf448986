// How a strategy is judged without flattering it: against buy-and-hold of the same amount of
// market at every moment (rebalanced to a constant exposure), on return, with a block-bootstrap
// confidence interval on the per-candle return differences. Plain functions, checked by hand in
// test/evaluation.test.ts.
import { MIN_ANNUALIZED_DAYS } from "./metrics.js";
import type { Candle } from "../domain/types.js";
import type { BaselineRun, Costs } from "./baselines.js";

/**
 * Holds `fraction` of equity in the market at every close: bought at the first candle's open (fee
 * and slippage paid, as buy-and-hold pays them), then rebalanced back to `fraction` at each close.
 * The rebalancing is free: a real rebalancer pays a little for it (under 0.2 points a year at 4%
 * exposure on BTC 2h), which is left out so the benchmark is never made easier to beat.
 * Equity: E1 = (1 - f) E0 + qty close1 with qty = f E0 / (open (1 + slip) (1 + fee)); then
 * E(t) = E(t-1) (1 + f (close(t) / close(t-1) - 1)).
 */
export function constantExposure(candles: Candle[], cash: number, costs: Costs, fraction: number): BaselineRun {
  const first = candles[0];
  if (!first) throw new Error("constantExposure: no candles");
  if (!(fraction >= 0 && fraction <= 1)) throw new Error(`constantExposure: fraction ${fraction} is not between 0 and 1`);
  const price = first.open * (1 + costs.slippageBps / 10_000);
  const qty = (cash * fraction) / (price * (1 + costs.feeRate));
  const fee = qty * price * costs.feeRate;
  const equity = [cash];
  let e = cash * (1 - fraction) + qty * first.close;
  equity.push(e);
  for (let i = 1; i < candles.length; i++) {
    e *= 1 + fraction * (candles[i]!.close / candles[i - 1]!.close - 1);
    equity.push(e);
  }
  return {
    name: `buy-and-hold at a constant ${(fraction * 100).toFixed(1)}%`,
    times: [first.time, ...candles.map((c) => c.time + costs.candleMs)],
    equity,
    tradePnls: [],
    orders: qty > 0 ? 1 : 0,
    fees: fee,
  };
}

/** mulberry32: a small, fast, seeded generator of floats in [0, 1), so an interval is reproducible. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * One stretch of observations resampled on its own: at each point, the sum of the values observed
 * there and how many there were (one series: each count is 1; several symbols over the same
 * period: the sum across symbols at each candle, so a block carries all of them together and the
 * interval keeps their co-movement).
 */
export interface Stratum {
  sums: number[];
  counts: number[];
}

export interface BootstrapOptions {
  /** Consecutive points per block; default: the cube root of each stratum's length, rounded. */
  blockLength?: number;
  resamples?: number;
  seed?: number;
  /** Two-sided confidence level, e.g. 0.95. */
  level?: number;
}

export interface Interval {
  /** The mean over every observation (not resampled). */
  mean: number;
  low: number;
  high: number;
  level: number;
  resamples: number;
  seed: number;
  /** The block length used (of the longest stratum, when it was derived). */
  blockLength: number;
  /** Observations in all. */
  n: number;
}

export const BOOTSTRAP_DEFAULTS = { resamples: 2000, seed: 1, level: 0.95 } as const;

/** Type-7 quantile (linear between order statistics) of sorted values. */
export function quantile(sorted: number[], q: number): number {
  if (sorted.length === 0) return NaN;
  const pos = (sorted.length - 1) * q;
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  return sorted[lo]! + (sorted[hi]! - sorted[lo]!) * (pos - lo);
}

const seriesStratum = (xs: number[]): Stratum => ({ sums: xs, counts: xs.map(() => 1) });

/**
 * Circular block bootstrap of a mean: each stratum is rebuilt from blocks of consecutive points
 * starting at random places (wrapping at its end), cut to its own length; the resampled mean is
 * every resampled sum over every resampled count. Blocks keep the serial correlation of returns
 * (a trend lasts more than one candle), which resampling single points would pretend away.
 */
export function blockBootstrapMean(data: number[] | Stratum[], o: BootstrapOptions = {}): Interval {
  const strata = (typeof data[0] === "number" || data.length === 0 ? [seriesStratum(data as number[])] : (data as Stratum[])).filter((s) => s.sums.length > 0);
  const resamples = o.resamples ?? BOOTSTRAP_DEFAULTS.resamples;
  const seed = o.seed ?? BOOTSTRAP_DEFAULTS.seed;
  const level = o.level ?? BOOTSTRAP_DEFAULTS.level;
  if (!(level > 0 && level < 1)) throw new Error(`bootstrap level ${level} must be between 0 and 1`);
  let totalSum = 0;
  let totalCount = 0;
  for (const s of strata) {
    if (s.sums.length !== s.counts.length) throw new Error("bootstrap: sums and counts differ in length");
    for (let i = 0; i < s.sums.length; i++) {
      totalSum += s.sums[i]!;
      totalCount += s.counts[i]!;
    }
  }
  const n = totalCount;
  const mean = n > 0 ? totalSum / n : NaN;
  if (n === 0) return { mean, low: NaN, high: NaN, level, resamples, seed, blockLength: 0, n };
  // Prefix sums over each stratum laid out twice, so a block that wraps is one subtraction.
  const plans = strata.map((s) => {
    const len = s.sums.length;
    const block = Math.max(1, Math.min(len, Math.round(o.blockLength ?? Math.cbrt(len))));
    const ps = new Float64Array(2 * len + 1);
    const pc = new Float64Array(2 * len + 1);
    for (let i = 0; i < 2 * len; i++) {
      ps[i + 1] = ps[i]! + s.sums[i % len]!;
      pc[i + 1] = pc[i]! + s.counts[i % len]!;
    }
    return { len, block, ps, pc };
  });
  const random = seededRandom(seed);
  const means = new Float64Array(resamples);
  for (let r = 0; r < resamples; r++) {
    let sum = 0;
    let count = 0;
    for (const p of plans) {
      for (let filled = 0; filled < p.len; filled += p.block) {
        const take = Math.min(p.block, p.len - filled);
        const start = Math.floor(random() * p.len);
        sum += p.ps[start + take]! - p.ps[start]!;
        count += p.pc[start + take]! - p.pc[start]!;
      }
    }
    means[r] = count > 0 ? sum / count : 0;
  }
  const sorted = Array.from(means).sort((a, b) => a - b);
  const tail = (1 - level) / 2;
  const longest = plans.reduce((a, p) => (p.len > a.len ? p : a), plans[0]!);
  return { mean, low: quantile(sorted, tail), high: quantile(sorted, 1 - tail), level, resamples, seed, blockLength: longest.block, n };
}

/** Per-candle returns of an equity curve (one fewer than its points). */
export function returnsOf(equity: number[]): number[] {
  const out: number[] = [];
  for (let i = 1; i < equity.length; i++) out.push(equity[i - 1]! > 0 ? equity[i]! / equity[i - 1]! - 1 : 0);
  return out;
}

/** Per-candle differences between two curves' returns: what the strategy made over the benchmark, candle by candle. */
export function returnDifferences(strategy: number[], benchmark: number[]): number[] {
  const a = returnsOf(strategy);
  const b = returnsOf(benchmark);
  if (a.length !== b.length) throw new Error(`return series differ in length (${a.length} and ${b.length}): the curves must share their clock`);
  return a.map((x, i) => x - b[i]!);
}

/** The edge of a strategy over its benchmark, in percentage points. */
export interface Edge {
  strategyReturnPct: number;
  benchmarkReturnPct: number;
  /** Strategy minus benchmark total return. */
  returnDifferencePct: number;
  /** Mean per-candle return difference times candles a year, in points a year, with its interval. */
  perYearPct: number;
  lowPct: number;
  highPct: number;
  level: number;
  /** The strategy's total return was above the benchmark's: how a period is counted as won. */
  won: boolean;
}

const total = (equity: number[]) => (equity[0]! > 0 ? (equity[equity.length - 1]! / equity[0]! - 1) * 100 : 0);
const r6 = (x: number) => (Number.isFinite(x) ? Number(x.toFixed(6)) : x);

export function edgeOf(strategy: number[], benchmark: number[], periodsPerYear: number, o: BootstrapOptions = {}): Edge & { differences: number[] } {
  const differences = returnDifferences(strategy, benchmark);
  const ci = blockBootstrapMean(differences, o);
  const s = total(strategy);
  const b = total(benchmark);
  const year = (x: number) => r6(x * periodsPerYear * 100);
  return {
    strategyReturnPct: r6(s),
    benchmarkReturnPct: r6(b),
    returnDifferencePct: r6(s - b),
    perYearPct: year(ci.mean),
    lowPct: year(ci.low),
    highPct: year(ci.high),
    level: ci.level,
    won: s > b,
    differences,
  };
}

/** Trading fees as a share of the profit before them, in percent; null when there was no profit before fees. */
export function feeSharePct(fees: number, pnlAfterFees: number): number | null {
  const gross = pnlAfterFees + fees;
  return gross > 0 ? r6((fees / gross) * 100) : null;
}

/** Periods a strategy won, counted on return (never on Sharpe: a less volatile loser wins on Sharpe). */
export function countWins(rows: { edge: Pick<Edge, "won"> }[]): number {
  return rows.filter((r) => r.edge.won).length;
}

const pts = (x: number) => `${x >= 0 ? "+" : ""}${x.toFixed(2)}`;

/**
 * The one plain line a report ends with. `edge` is after every cost; `who` names the decider.
 * Losing is said plainly, and so is an edge its interval cannot tell from zero.
 */
export function verdict(who: string, edge: Pick<Edge, "perYearPct" | "lowPct" | "highPct" | "level">, where = "", days?: number): string {
  // Under MIN_ANNUALIZED_DAYS a figure "a year" would be a few weeks blown up: the edge is given over the period instead.
  const short = days !== undefined && days < MIN_ANNUALIZED_DAYS;
  const scale = short ? days / 365 : 1;
  const unit = short ? `points over the ${Math.round(days)} days (too short to annualize)` : "points a year";
  const e = { perYearPct: edge.perYearPct * scale, lowPct: edge.lowPct * scale, highPct: edge.highPct * scale };
  const ci = `${Math.round(edge.level * 100)}% interval ${pts(e.lowPct)} to ${pts(e.highPct)}`;
  const at = where ? ` ${where}` : "";
  if (edge.highPct < 0) return `Verdict: ${who} loses to buy-and-hold at the same exposure${at}: ${pts(e.perYearPct)} ${unit} after every cost (${ci}). Holding that much of the market without timing did better.`;
  if (edge.lowPct > 0) return `Verdict: ${who} beats buy-and-hold at the same exposure${at}: ${pts(e.perYearPct)} ${unit} after every cost (${ci}).`;
  const side = edge.perYearPct < 0 ? `loses to buy-and-hold at the same exposure${at} (${pts(e.perYearPct)} ${unit} after every cost)` : `is ahead of buy-and-hold at the same exposure${at} (${pts(e.perYearPct)} ${unit} after every cost)`;
  return `Verdict: ${who} ${side}, but the ${ci} includes zero: no edge that can be told from luck.`;
}
