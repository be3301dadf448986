// Walk-forward: the same strategy over consecutive periods (e.g. each year), one fresh account per
// period, on one symbol or on several (each symbol on its own account), judged against
// buy-and-hold at the same exposure on return, with intervals; then a pooled summary.
import type { Candle } from "../domain/types.js";
import { runBacktest, type BacktestOptions, type BacktestReport, type SymbolSeries } from "./engine.js";
import { blockBootstrapMean, countWins, verdict, type BootstrapOptions, type Edge, type Stratum } from "./evaluation.js";
import { periodsPerYear, type Metrics } from "./metrics.js";

/** The offline engine's rules were chosen on BTC/USDT before this moment; later periods are held out. */
export const HELD_OUT_FROM = Date.UTC(2022, 0, 1);
export const TUNED_ON = "BTC/USDT";

export interface Period {
  label: string;
  from: number;
  /** Inclusive. */
  to: number;
}

export interface WalkForwardRow {
  symbol: string;
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
  edge: { afterFees: Edge; beforeFees: Edge };
  feeSharePct: number | null;
  /** The offline engine on the symbol and years its rules were picked on (not an out-of-sample figure). */
  training: boolean;
  decidedBy: string;
}

export type BaselineName = "exposureMatched" | "buyAndHold" | "smaCrossover";
export const BASELINES: { key: BaselineName; label: string }[] = [
  { key: "exposureMatched", label: "buy-and-hold at the strategy's exposure (rebalanced)" },
  { key: "buyAndHold", label: "buy-and-hold (100%)" },
  { key: "smaCrossover", label: "SMA 20/50 crossover" },
];

/** Several periods judged together: won on return, the mean edge a year with its interval, fees. */
export interface Pooled {
  periods: number;
  symbols: string[];
  /** Periods whose return (after every cost) beat the exposure-matched benchmark's. */
  wonOnReturn: number;
  wonBeforeFees: number;
  /** Mean per-candle return difference times candles a year, points a year, with its interval. */
  edgePerYear: { afterFees: EdgeInterval; beforeFees: EdgeInterval };
  /** All the fees over all the profit before them, percent; null when nothing was made before fees. */
  feeSharePct: number | null;
  averageExposurePct: number;
  /** Context beside the headline: the other baselines and measures, counted per period. */
  beside: Record<BaselineName, { returnWins: number; sharpeWins: number; lowerDrawdown: number }>;
}

export interface EdgeInterval {
  meanPct: number;
  lowPct: number;
  highPct: number;
  level: number;
}

export interface SymbolWalk {
  symbol: string;
  rows: WalkForwardRow[];
  summary: Pooled;
}

export interface WalkForwardResult {
  model: string;
  /** Every row, symbol by symbol. */
  rows: WalkForwardRow[];
  bySymbol: SymbolWalk[];
  pooled: Pooled;
  /** The same, without the training periods (present when some rows are training). */
  heldOut?: Pooled;
  verdict: string;
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

/** A row's per-candle return differences and their times, kept in memory for pooling (not written out). */
interface RowSeries {
  row: WalkForwardRow;
  year: number;
  times: number[];
  afterFees: number[];
  beforeFees: number[];
}

function rowOf(symbol: string, p: Period, r: BacktestReport, model: string): WalkForwardRow {
  return {
    symbol,
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
    edge: r.edge,
    feeSharePct: r.feeSharePct,
    training: model === "offline-engine" && symbol === TUNED_ON && p.from < HELD_OUT_FROM,
    decidedBy: r.decidedBy.summary,
  };
}

/**
 * The per-candle differences of several rows, for one interval: rows of the same calendar year
 * are laid on one timeline (a candle's stratum point sums every symbol observed then), so a
 * resampled block moves all symbols together and their co-movement widens the interval as it
 * should; different years are resampled apart.
 */
function strata(series: RowSeries[], pick: "afterFees" | "beforeFees"): Stratum[] {
  const byYear = new Map<number, Map<number, { sum: number; count: number }>>();
  for (const s of series) {
    const points = byYear.get(s.year) ?? new Map<number, { sum: number; count: number }>();
    byYear.set(s.year, points);
    s[pick].forEach((d, i) => {
      const t = s.times[i]!;
      const p = points.get(t) ?? { sum: 0, count: 0 };
      p.sum += d;
      p.count += 1;
      points.set(t, p);
    });
  }
  return [...byYear.keys()].sort((a, b) => a - b).map((y) => {
    const points = [...byYear.get(y)!.entries()].sort((a, b) => a[0] - b[0]);
    return { sums: points.map(([, p]) => p.sum), counts: points.map(([, p]) => p.count) };
  });
}

export function pool(series: RowSeries[], ppy: number, bootstrap: BootstrapOptions = {}): Pooled {
  const rows = series.map((s) => s.row);
  const interval = (pick: "afterFees" | "beforeFees"): EdgeInterval => {
    const ci = blockBootstrapMean(strata(series, pick), bootstrap);
    const y = (x: number) => Number((x * ppy * 100).toFixed(6));
    return { meanPct: y(ci.mean), lowPct: y(ci.low), highPct: y(ci.high), level: ci.level };
  };
  const fees = rows.reduce((a, r) => a + r.strategyGross.fees, 0);
  const gross = rows.reduce((a, r) => a + r.strategyGross.netPnl + r.strategyGross.fees, 0);
  const beside = {} as Pooled["beside"];
  for (const { key } of BASELINES) {
    beside[key] = {
      returnWins: rows.filter((r) => r.strategy.totalReturnPct > r[key].totalReturnPct).length,
      sharpeWins: rows.filter((r) => r.strategy.sharpe > r[key].sharpe).length,
      lowerDrawdown: rows.filter((r) => r.strategy.maxDrawdownPct < r[key].maxDrawdownPct).length,
    };
  }
  return {
    periods: rows.length,
    symbols: [...new Set(rows.map((r) => r.symbol))],
    wonOnReturn: countWins(rows.map((r) => ({ edge: r.edge.afterFees }))),
    wonBeforeFees: countWins(rows.map((r) => ({ edge: r.edge.beforeFees }))),
    edgePerYear: { afterFees: interval("afterFees"), beforeFees: interval("beforeFees") },
    feeSharePct: gross > 0 ? Number(((fees / gross) * 100).toFixed(6)) : null,
    averageExposurePct: rows.length ? Number((rows.reduce((a, r) => a + r.exposurePct, 0) / rows.length).toFixed(4)) : 0,
    beside,
  };
}

export interface WalkOptions {
  /** The periods of one symbol's candles (default: each calendar year they cover). */
  periods?: (candles: Candle[]) => Period[];
  onRow?: (row: WalkForwardRow) => void;
}

/**
 * Runs every period of every symbol on a fresh account (the Redis keys are cleared between
 * runs). `base.series` (or `base.symbol` + `base.candles`) names the symbols: each is walked on its own.
 */
export async function walkForward(base: Omit<BacktestOptions, "from" | "to">, periods?: Period[] | WalkOptions, onRow?: (row: WalkForwardRow) => void): Promise<WalkForwardResult> {
  const o: WalkOptions = Array.isArray(periods) ? { periods: () => periods, ...(onRow ? { onRow } : {}) } : { ...(periods ?? {}), ...(onRow ? { onRow } : {}) };
  const symbols: SymbolSeries[] = base.series?.length ? base.series : base.symbol && base.candles ? [{ symbol: base.symbol, candles: base.candles }] : [];
  if (symbols.length === 0) throw new Error("walk-forward: no symbol to walk (give symbol and candles, or series)");
  const started = performance.now();
  const ppy = periodsPerYear(base.timeframe);
  const all: RowSeries[] = [];
  const bySymbol: SymbolWalk[] = [];
  for (const s of symbols) {
    const ps = o.periods ? o.periods(s.candles) : yearlyPeriods(s.candles);
    if (ps.length === 0) throw new Error(`walk-forward: no periods in the range of ${s.symbol}'s candles`);
    const mine: RowSeries[] = [];
    for (const p of ps) {
      await base.redis.flushdb();
      const { series: _ignored, ...single } = base;
      const { report, differences } = await runBacktest({ ...single, symbol: s.symbol, candles: s.candles, from: p.from, to: p.to });
      const row = rowOf(s.symbol, p, report, base.model.id);
      mine.push({ row, year: new Date(p.from).getUTCFullYear(), times: differences.times, afterFees: differences.afterFees, beforeFees: differences.beforeFees });
      o.onRow?.(row);
    }
    all.push(...mine);
    bySymbol.push({ symbol: s.symbol, rows: mine.map((m) => m.row), summary: pool(mine, ppy, base.bootstrap) });
  }
  const pooled = pool(all, ppy, base.bootstrap);
  const held = all.filter((s) => !s.row.training);
  const heldOut = held.length < all.length && held.length > 0 ? pool(held, ppy, base.bootstrap) : undefined;
  const judged = heldOut ?? pooled;
  const e = judged.edgePerYear.afterFees;
  const where = `over ${judged.periods} ${heldOut ? "held-out " : ""}period(s) of ${judged.symbols.join(", ")}`;
  return {
    model: base.model.id,
    rows: all.map((s) => s.row),
    bySymbol,
    pooled,
    ...(heldOut ? { heldOut } : {}),
    verdict: verdict(base.model.id, { perYearPct: e.meanPct, lowPct: e.lowPct, highPct: e.highPct, level: e.level }, where),
    wallTimeMs: Math.round(performance.now() - started),
  };
}

const pct = (x: number) => `${x >= 0 ? "+" : ""}${x.toFixed(1)}%`;
const pts = (x: number) => `${x >= 0 ? "+" : ""}${x.toFixed(1)}`;
const ci = (e: { lowPct: number; highPct: number }) => `${pts(e.lowPct)} to ${pts(e.highPct)}`;
const share = (x: number | null) => (x === null ? "no profit" : `${x.toFixed(0)}%`);

/** One symbol's table, as docs/evaluation.md shows it. */
export function symbolTable(rows: WalkForwardRow[]): string {
  const head =
    "| period | return | B&H@exposure (rebalanced) | won | edge, points/yr (95% CI) | before fees: won | edge (95% CI) | Sharpe vs B&H@exp | max DD vs B&H@exp | exposure | fees | fee share | AI spend |\n" +
    "|---|---:|---:|:-:|---:|:-:|---:|---:|---:|---:|---:|---:|---:|";
  const lines = rows.map((r) => {
    const a = r.edge.afterFees;
    const b = r.edge.beforeFees;
    const label = r.training ? `${r.period}, train` : r.period;
    return (
      `| ${label} | ${pct(r.strategy.totalReturnPct)} | ${pct(r.exposureMatched.totalReturnPct)} | ${a.won ? "yes" : "no"} | ${pts(a.perYearPct)} (${ci(a)}) | ` +
      `${b.won ? "yes" : "no"} | ${pts(b.perYearPct)} (${ci(b)}) | ${r.strategy.sharpe.toFixed(2)} vs ${r.exposureMatched.sharpe.toFixed(2)} | ` +
      `${r.strategy.maxDrawdownPct.toFixed(1)}% vs ${r.exposureMatched.maxDrawdownPct.toFixed(1)}% | ${r.exposurePct.toFixed(1)}% | ${r.strategy.fees.toFixed(2)} | ${share(r.feeSharePct)} | ${r.strategy.aiSpend.toFixed(2)} |`
    );
  });
  return [head, ...lines].join("\n");
}

/** The pooled summary in words: periods won on return, the mean edge a year with its interval, before and after fees. */
export function pooledLines(p: Pooled, title: string): string[] {
  const a = p.edgePerYear.afterFees;
  const b = p.edgePerYear.beforeFees;
  return [
    `**${title}** (${p.periods} period(s) of ${p.symbols.join(", ")}):`,
    `- won on return against buy-and-hold at the same exposure: **${p.wonOnReturn} of ${p.periods}** after every cost, ${p.wonBeforeFees} of ${p.periods} before fees`,
    `- mean edge: **${pts(a.meanPct)} points a year** (${Math.round(a.level * 100)}% interval ${ci(a)}) after every cost; ${pts(b.meanPct)} (${ci(b)}) before fees`,
    `- fees: ${p.feeSharePct === null ? "no profit before fees to compare them with" : `${p.feeSharePct.toFixed(0)}% of the profit before fees`}; average exposure ${p.averageExposurePct.toFixed(1)}%`,
    `- beside it: Sharpe above B&H@exposure in ${p.beside.exposureMatched.sharpeWins} of ${p.periods} (a less volatile loser wins on Sharpe, so it is not the headline); lower drawdown in ${p.beside.exposureMatched.lowerDrawdown}; return above B&H 100% in ${p.beside.buyAndHold.returnWins}, above SMA 20/50 in ${p.beside.smaCrossover.returnWins}`,
  ];
}

/** Every table and the pooled summary in Markdown, as docs/evaluation.md shows them, ending with the verdict. */
export function walkForwardMarkdown(result: WalkForwardResult): string {
  const out: string[] = [];
  for (const s of result.bySymbol) {
    out.push(`### ${s.symbol}`, "", symbolTable(s.rows), "", ...pooledLines(s.summary, `${s.symbol}, all periods`), "");
  }
  if (result.bySymbol.length > 1) out.push("### Pooled", "", ...pooledLines(result.pooled, "All symbols, all periods"), "");
  if (result.heldOut) out.push(...pooledLines(result.heldOut, "Held-out periods only (never used to choose the rules)"), "");
  out.push(
    "Returns are net of fees, slippage and AI spend; B&H@exposure holds the strategy's average exposure at every close (rebalanced, free), the rest in cash. " +
      "Edge: mean per-candle return difference times candles a year, with a block-bootstrap 95% interval (seeded, so it reproduces). " +
      "Before fees: the strategy's trading fees and AI spend added back, the benchmark's entry fee left out. Fee share: fees over the profit before them.",
    "",
    result.verdict,
  );
  return out.join("\n");
}
