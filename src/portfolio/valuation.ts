import type { Portfolio, Position } from "../domain/types.js";

const markOf = (p: Portfolio, position: Position): number => p.prices[position.symbol] ?? position.entryPrice;

/** Sum of all positions' notional at the latest prices (a position without a price is marked at entry). */
export function exposure(p: Portfolio): number {
  return p.positions.reduce((sum, pos) => sum + pos.qty * markOf(p, pos), 0);
}

/** Cash plus positions marked to market. */
export function equity(p: Portfolio): number {
  return p.cash + exposure(p);
}

export function unrealizedPnl(position: Position, last: number): number {
  return (last - position.entryPrice) * position.qty;
}
