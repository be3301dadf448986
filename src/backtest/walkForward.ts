// Walk-forward: the same strategy over consecutive periods (e.g. each year), one fresh account per
// period, and a count of the periods in which it beats each baseline net of every cost.
import type { Candle } from "../domain/types.js";
import { runBacktest, type BacktestOptions, type BacktestReport } from "./engine.js";
import type { Metrics } from "./metrics.js";

export interface Period {
  label: string;
  from: number;
  /** Inclusive. */
  to: number;
}

export interface WalkForwardRow {
  period: string;
  from: string;
  to: string;
  candles: number;
  exposurePct: number;
  strategy: Metrics;
  strategyGross: Metrics;
  buyAndHold: Metrics;
  exposureMatched: Metrics;
  smaCrossover: Metrics;
  decidedBy: string;
}

export type BaselineName = "exposureMatched" | "buyAndHold" | "smaCrossover";
export const BASELINES: { key: BaselineName; label: string }[] = [
  { key: "exposureMatched", label: "buy-and-hold at the strategy's exposure" },
  { key: "buyAndHold", label: "buy-and-hold (100%)" },
  { key: "smaCrossover", label: "SMA 20/50 crossover" },
];

export interface WalkForwardResult {
  rows: WalkForwardRow[];
  /** Per baseline: periods where the strategy (net of every cost) did better on each measure. */
  summary: Record<BaselineName, { periods: number; returnWins: number; sharpeWins: number; lowerDrawdown: number }>;
  wallTimeMs: number;
}

/** Each calendar year (UTC) the candles cover inside [from, to]; a part year is labelled with its dates. */
export function yearlyPeriods(candles: Candle[], from = -Infinity, to = Infinity): Period[] {
  if (candles.length === 0) return [];
  const lo = Math.max(from, candles[0]!.time);
  const hi = Math.min(to, candles[candles.length - 1]!.time);
  const out: Period[] = [];
  for (let y = new Date(lo).getUTCFullYear(); y <= new Date(hi).getUTCFullYear(); y++) {
    const start = Math.max(lo, Date.UTC(y, 0, 1));
    const end = Math.min(hi, Date.UTC(y + 1, 0, 1) - 1);
    if (end < start) continue;
    const whole = start === Date.UTC(y, 0, 1) && end === Date.UTC(y + 1, 0, 1) - 1;
    const day = (t: number) => new Date(t).toISOString().slice(5, 10);
    out.push({ label: whole ? String(y) : `${y} (${day(start)} to ${day(end)})`, from: start, to: end });
  }
  return out;
}

function rowOf(p: Period, r: BacktestReport): WalkForwardRow {
  return {
    period: p.label,
    from: r.from,
    to: r.to,
    candles: r.candles,
    exposurePct: r.averageExposurePct,
    strategy: r.strategy,
    strategyGross: r.strategyGross,
    buyAndHold: r.buyAndHold,
    exposureMatched: r.exposureMatched,
    smaCrossover: r.smaCrossover,
    decidedBy: r.decidedBy.summary,
  };
}

export function summarize(rows: WalkForwardRow[]): WalkForwardResult["summary"] {
  const out = {} as WalkForwardResult["summary"];
  for (const { key } of BASELINES) {
    out[key] = {
      periods: rows.length,
      returnWins: rows.filter((r) => r.strategy.totalReturnPct > r[key].totalReturnPct).length,
      sharpeWins: rows.filter((r) => r.strategy.sharpe > r[key].sharpe).length,
      lowerDrawdown: rows.filter((r) => r.strategy.maxDrawdownPct < r[key].maxDrawdownPct).length,
    };
  }
  return out;
}

/** Runs every period on a fresh account (the Redis keys are cleared between periods). */
export async function walkForward(base: Omit<BacktestOptions, "from" | "to">, periods: Period[], onRow?: (row: WalkForwardRow) => void): Promise<WalkForwardResult> {
  if (periods.length === 0) throw new Error("walk-forward: no periods in the candles' range");
  const started = performance.now();
  const rows: WalkForwardRow[] = [];
  for (const p of periods) {
    await base.redis.flushdb();
    const { report } = await runBacktest({ ...base, from: p.from, to: p.to });
    const row = rowOf(p, report);
    rows.push(row);
    onRow?.(row);
  }
  return { rows, summary: summarize(rows), wallTimeMs: Math.round(performance.now() - started) };
}

const pct = (x: number) => `${x >= 0 ? "+" : ""}${x.toFixed(1)}%`;
const fix = (x: number) => x.toFixed(2);

/** The table and its summary in Markdown, as docs/evaluation.md shows them. */
export function walkForwardMarkdown(result: WalkForwardResult): string {
  const head =
    "| period | strategy return | Sharpe | max DD | exposure | B&H@exposure return | Sharpe | max DD | B&H return | Sharpe | max DD | SMA return | Sharpe | fees | AI spend |\n" +
    "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|";
  const lines = result.rows.map((r) =>
    `| ${r.period} | ${pct(r.strategy.totalReturnPct)} | ${fix(r.strategy.sharpe)} | ${r.strategy.maxDrawdownPct.toFixed(1)}% | ${r.exposurePct.toFixed(1)}% | ` +
    `${pct(r.exposureMatched.totalReturnPct)} | ${fix(r.exposureMatched.sharpe)} | ${r.exposureMatched.maxDrawdownPct.toFixed(1)}% | ` +
    `${pct(r.buyAndHold.totalReturnPct)} | ${fix(r.buyAndHold.sharpe)} | ${r.buyAndHold.maxDrawdownPct.toFixed(1)}% | ` +
    `${pct(r.smaCrossover.totalReturnPct)} | ${fix(r.smaCrossover.sharpe)} | ${fix(r.strategy.fees)} | ${r.strategy.aiSpend.toFixed(2)} |`,
  );
  const sum = BASELINES.map(({ key, label }) => {
    const s = result.summary[key];
    return `- against ${label}: better return in ${s.returnWins} of ${s.periods}, better Sharpe in ${s.sharpeWins} of ${s.periods}, lower drawdown in ${s.lowerDrawdown} of ${s.periods}`;
  });
  return [head, ...lines, "", "Strategy figures are net of fees, slippage and AI spend.", ...sum].join("\n");
}
