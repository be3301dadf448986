import type { Portfolio, Position } from "../domain/types.js";

const markOf = (p: Portfolio, position: Position): number => p.prices[position.symbol] ?? position.entryPrice;

/** Sum of all positions' notional at the latest prices (a position without a price is marked at entry). */
export function exposure(p: Portfolio): number {
  return p.positions.reduce((sum, pos) => sum + pos.qty * markOf(p, pos), 0);
}

/** Each position's notional at the latest price, by symbol. */
export function exposureBySymbol(p: Portfolio): Record<string, number> {
  const out: Record<string, number> = {};
  for (const pos of p.positions) out[pos.symbol] = (out[pos.symbol] ?? 0) + pos.qty * markOf(p, pos);
  return out;
}

/** Cash (free, and locked in open buy orders) plus positions marked to market. */
export function equity(p: Portfolio): number {
  return p.cash + (p.reserved ?? 0) + exposure(p);
}

export function unrealizedPnl(position: Position, last: number): number {
  return (last - position.entryPrice) * position.qty;
}

/** Unrealized P&L of every open position at the latest prices. */
export function totalUnrealizedPnl(p: Portfolio): number {
  return p.positions.reduce((sum, pos) => sum + unrealizedPnl(pos, markOf(p, pos)), 0);
}

/** Deepest fall from a running peak, as a fraction of that peak (0.25 = 25%). */
export function maxDrawdown(equities: number[]): number {
  let peak = -Infinity;
  let worst = 0;
  for (const e of equities) {
    if (e > peak) peak = e;
    if (peak > 0) worst = Math.max(worst, (peak - e) / peak);
  }
  return worst;
}
