// Historical Value at Risk from candles: no distribution is assumed, the past candle-to-candle
// returns are replayed against today's positions and the 5th-percentile loss is read off.
import type { Candle } from "../domain/types.js";

/** Close-to-close simple returns keyed by the close time of the later candle's open. */
export interface ReturnSeries {
  times: number[];
  returns: number[];
}

export const VAR_LOOKBACK = 500;

export function returnSeries(candles: Candle[]): ReturnSeries {
  const times: number[] = [];
  const returns: number[] = [];
  for (let i = 1; i < candles.length; i++) {
    const prev = candles[i - 1]!.close;
    if (prev > 0) {
      times.push(candles[i]!.time);
      returns.push(candles[i]!.close / prev - 1);
    }
  }
  return { times, returns };
}

/**
 * The loss (a positive number, same unit as the P&L) not exceeded in `confidence` of the
 * scenarios: the k-th worst with k = ceil((1 - confidence) * n). 0 when nothing is at risk.
 */
export function historicalVar(pnl: number[], confidence = 0.95): number {
  if (pnl.length === 0) return 0;
  const sorted = [...pnl].sort((a, b) => a - b);
  // 1 - 0.95 is 0.050000000000000044 in floats: without the nudge 20 scenarios would give k = 2.
  const k = Math.max(0, Math.ceil((1 - confidence) * sorted.length - 1e-9) - 1);
  return Math.max(0, -sorted[k]!);
}

/**
 * One-candle 95% VaR of a set of long positions (notional per symbol, in quote). Scenarios are
 * the candle times all held symbols share, so correlation is whatever history says it was; a
 * symbol without history counts at its notional times the worst return seen in any other.
 */
export function portfolioVar(notionals: Record<string, number>, returns: Record<string, ReturnSeries>, confidence = 0.95): number {
  const held = Object.entries(notionals).filter(([, n]) => n > 0);
  if (held.length === 0) return 0;
  const known = held.filter(([s]) => (returns[s]?.returns.length ?? 0) > 0);
  if (known.length === 0) return 0;
  let pnl: number[];
  if (known.length === 1) {
    const [symbol, notional] = known[0]!;
    pnl = returns[symbol]!.returns.map((r) => r * notional);
  } else {
    // Align on shared candle times.
    const maps = known.map(([s, n]) => {
      const m = new Map<number, number>();
      const r = returns[s]!;
      for (let i = 0; i < r.times.length; i++) m.set(r.times[i]!, r.returns[i]! * n);
      return m;
    });
    const [first, ...rest] = maps;
    pnl = [];
    for (const [t, v] of first!) {
      let sum = v;
      let shared = true;
      for (const m of rest) {
        const x = m.get(t);
        if (x === undefined) {
          shared = false;
          break;
        }
        sum += x;
      }
      if (shared) pnl.push(sum);
    }
    // No shared history (different dates): fall back to the sum of each one's VaR, which can only overstate.
    if (pnl.length < 20) return known.reduce((a, [s, n]) => a + historicalVar(returns[s]!.returns.map((r) => r * n), confidence), 0);
  }
  let total = historicalVar(pnl, confidence);
  const unknown = held.filter(([s]) => !known.some(([k]) => k === s));
  if (unknown.length) {
    const worst = Math.max(...known.flatMap(([s]) => returns[s]!.returns.map((r) => -r)), 0);
    total += unknown.reduce((a, [, n]) => a + n * worst, 0);
  }
  return total;
}
