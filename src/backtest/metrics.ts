// Performance figures of an equity curve: plain functions, checked by hand in test/backtest.test.ts.

const YEAR_MS = 365 * 86_400_000;

/**
 * Shortest period whose return is annualized. Annualizing raises the growth to the power 365/days:
 * over 23 days a 19% move becomes +1,500% a year, noise rather than a rate. Under a quarter one
 * month's swing still dominates the result, so below 90 days the figure is left out.
 */
export const MIN_ANNUALIZED_DAYS = 90;

export interface Metrics {
  startEquity: number;
  endEquity: number;
  /** End over start, minus one, in percent. */
  totalReturnPct: number;
  /** Compounded over calendar time (crypto trades every day of the year); null for a period under MIN_ANNUALIZED_DAYS. */
  annualizedReturnPct: number | null;
  /** Mean over standard deviation (sample) of per-candle returns, times sqrt(candles per year); no risk-free rate. */
  sharpe: number;
  /** Mean per-candle return over the downside deviation (root mean square of the negative returns, over all candles), annualized the same way. */
  sortino: number;
  /** Deepest fall from a running peak, percent of that peak. */
  maxDrawdownPct: number;
  /** Closed round trips with a positive P&L, percent of closed round trips (0 when none closed). */
  winRatePct: number;
  /** Closed round trips. */
  trades: number;
  /** Orders filled (buys and sells). */
  orders: number;
  /** Trading fees paid, quote currency. */
  fees: number;
  /** What the model calls cost, USDC (1 USDC counted as 1 quote unit). */
  aiSpend: number;
  /** End minus start equity, before the AI spend. */
  netPnl: number;
  /** Net P&L less the AI spend: what the strategy earned once its model bill is paid. */
  netPnlAfterAi: number;
  netReturnAfterAiPct: number;
}

export interface MetricsInput {
  /** Equity at each candle close, oldest first. */
  equity: number[];
  /** Matching times (epoch ms). */
  times: number[];
  /** Candles per year for the timeframe (2h: 4,380). */
  periodsPerYear: number;
  /** P&L of each closed round trip. */
  tradePnls: number[];
  orders: number;
  fees: number;
  aiSpend: number;
  /** The equity curve already has the AI spend taken out (the figures are net of it). */
  aiIncluded?: boolean;
}

const round = (x: number, digits = 6) => (Number.isFinite(x) ? Number(x.toFixed(digits)) : x);

export function periodReturns(equity: number[]): number[] {
  const out: number[] = [];
  for (let i = 1; i < equity.length; i++) out.push(equity[i - 1]! > 0 ? equity[i]! / equity[i - 1]! - 1 : 0);
  return out;
}

export function sharpeRatio(returns: number[], periodsPerYear: number): number {
  if (returns.length < 2) return 0;
  const mean = returns.reduce((a, b) => a + b, 0) / returns.length;
  const variance = returns.reduce((a, r) => a + (r - mean) ** 2, 0) / (returns.length - 1);
  const sd = Math.sqrt(variance);
  return sd > 0 ? (mean / sd) * Math.sqrt(periodsPerYear) : 0;
}

export function sortinoRatio(returns: number[], periodsPerYear: number): number {
  if (returns.length < 2) return 0;
  const mean = returns.reduce((a, b) => a + b, 0) / returns.length;
  const downside = Math.sqrt(returns.reduce((a, r) => a + Math.min(0, r) ** 2, 0) / returns.length);
  return downside > 0 ? (mean / downside) * Math.sqrt(periodsPerYear) : 0;
}

export function maxDrawdownPct(equity: number[]): number {
  let peak = -Infinity;
  let worst = 0;
  for (const e of equity) {
    if (e > peak) peak = e;
    if (peak > 0) worst = Math.max(worst, (peak - e) / peak);
  }
  return worst * 100;
}

/** Drawdown at each point, percent below the running peak (for the chart). */
export function drawdownSeries(equity: number[]): number[] {
  let peak = -Infinity;
  return equity.map((e) => {
    if (e > peak) peak = e;
    return peak > 0 ? -((peak - e) / peak) * 100 : 0;
  });
}

export function computeMetrics(m: MetricsInput): Metrics {
  if (m.equity.length === 0) throw new Error("computeMetrics: an empty equity curve");
  const start = m.equity[0]!;
  const end = m.equity[m.equity.length - 1]!;
  const years = m.times.length > 1 ? (m.times[m.times.length - 1]! - m.times[0]!) / YEAR_MS : 0;
  const growth = start > 0 ? end / start : 0;
  const annualized = years * 365 < MIN_ANNUALIZED_DAYS ? null : growth > 0 ? growth ** (1 / years) - 1 : -1;
  const returns = periodReturns(m.equity);
  const wins = m.tradePnls.filter((p) => p > 0).length;
  const netPnl = end - start + (m.aiIncluded ? m.aiSpend : 0);
  return {
    startEquity: round(start),
    endEquity: round(end),
    totalReturnPct: round((growth - 1) * 100),
    annualizedReturnPct: annualized === null ? null : round(annualized * 100),
    sharpe: round(sharpeRatio(returns, m.periodsPerYear)),
    sortino: round(sortinoRatio(returns, m.periodsPerYear)),
    maxDrawdownPct: round(maxDrawdownPct(m.equity)),
    winRatePct: round(m.tradePnls.length ? (wins / m.tradePnls.length) * 100 : 0),
    trades: m.tradePnls.length,
    orders: m.orders,
    fees: round(m.fees),
    aiSpend: round(m.aiSpend, 6),
    netPnl: round(netPnl),
    netPnlAfterAi: round(netPnl - m.aiSpend),
    netReturnAfterAiPct: round(start > 0 ? ((netPnl - m.aiSpend) / start) * 100 : 0),
  };
}

/** Candles per year for a ccxt timeframe like "2h" or "1d". */
export function periodsPerYear(timeframe: string): number {
  const m = /^(\d+)([smhdw])$/.exec(timeframe);
  if (!m) throw new Error(`unsupported timeframe "${timeframe}" (use e.g. 15m, 2h, 1d)`);
  const unit = { s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 }[m[2] as "s" | "m" | "h" | "d" | "w"];
  return YEAR_MS / (Number(m[1]) * unit);
}
