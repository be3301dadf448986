// The range each risk limit may take, wherever it is set: the configuration (MAX_POSITION_PCT
// ...) and /limits read the same table, so a value one refuses the other refuses too. The edges
// are what still means something: a position of 1e-22 % of equity is no position, a stop loss 80%
// below the entry is no stop.
import type { RiskLimits } from "../domain/types.js";

export interface LimitBound {
  min: number;
  max: number;
  whole?: boolean;
  /** 0 turns the limit off and is allowed besides the range. */
  off?: boolean;
  /** What the number counts, for the message. */
  unit: string;
}

export const LIMIT_BOUNDS: Record<keyof RiskLimits, LimitBound> = {
  maxPositionPct: { min: 0.1, max: 100, unit: "% of equity" },
  maxExposurePct: { min: 0.1, max: 1000, unit: "% of equity" },
  maxLeverage: { min: 1, max: 10, unit: "x equity" },
  maxOpenPositions: { min: 1, max: 100, whole: true, unit: "positions" },
  dailyLossLimitPct: { min: 0.1, max: 100, unit: "% of the day's starting equity" },
  defaultStopLossPct: { min: 0.1, max: 50, unit: "% below entry" },
  maxStopLossPct: { min: 0.1, max: 50, unit: "% below entry" },
  defaultTakeProfitPct: { min: 0.1, max: 1000, unit: "% above entry" },
  minOrderNotional: { min: 1, max: 1_000_000, unit: "USDT" },
  cooldownAfterLossMinutes: { min: 1, max: 10_080, whole: true, off: true, unit: "minutes" },
  maxVar95Pct: { min: 0.1, max: 100, unit: "% of equity" },
  trailingStopPct: { min: 0.1, max: 50, off: true, unit: "% below the high" },
};

/** "from 0.1 to 100 (% of equity)", "0 (off) or a whole number from 1 to 10080 (minutes)". */
export function boundText(b: LimitBound): string {
  const range = `${b.whole ? "a whole number " : ""}from ${b.min} to ${b.max} (${b.unit})`;
  return b.off ? `0 (off) or ${range}` : range;
}

export function withinBound(b: LimitBound, n: number): boolean {
  if (!Number.isFinite(n)) return false;
  if (b.off && n === 0) return true;
  if (b.whole && !Number.isInteger(n)) return false;
  return n >= b.min && n <= b.max;
}
