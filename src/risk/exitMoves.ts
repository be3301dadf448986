// Moving a position's stop loss or take profit by hand (/stop, /tp): the same bounds as a new
// position's exits. Long-only spot: the stop sits below the price, at most maxStopLossPct below the
// entry (the widest stop the limits allow); the target sits above the price. A level on the wrong
// side would sell at once, which is /close's job, not a moved exit.
import type { Position, RiskLimits } from "../domain/types.js";
import { LIMIT_BOUNDS } from "./bounds.js";

export type ExitMove = { ok: true; change: { stopLoss: number; takeProfit: number }; note: string } | { ok: false; error: string };

const fmt = (n: number) => n.toLocaleString("en-US", { maximumFractionDigits: 8 });
const pct = (n: number) => `${n.toFixed(2)}%`;

/** Checks a new stop loss for a long position at the price now. */
export function moveStop(position: Position, level: number, last: number, limits: Pick<RiskLimits, "maxStopLossPct">): ExitMove {
  if (!(level > 0) || !Number.isFinite(level)) return { ok: false, error: `A stop loss must be a price above 0, not ${fmt(level)}.` };
  if (!(last > 0)) return { ok: false, error: `There is no price for ${position.symbol} now; try again shortly.` };
  if (level >= last) {
    return { ok: false, error: `A stop loss at ${fmt(level)} is at or above the price now (${fmt(last)}): for a long it must be below the price, or it would sell at once. /close ${position.symbol.split("/")[0]} sells now.` };
  }
  const widest = position.entryPrice * (1 - limits.maxStopLossPct / 100);
  if (level < widest) {
    return {
      ok: false,
      error: `A stop loss at ${fmt(level)} is ${pct(((position.entryPrice - level) / position.entryPrice) * 100)} below the entry ${fmt(position.entryPrice)}, wider than the ${limits.maxStopLossPct}% allowed (max_stop_loss): the lowest allowed is ${fmt(widest)}.`,
    };
  }
  const trailing = position.trailingStopPct ? ` The trailing stop (${position.trailingStopPct}%) still moves it up as the price rises.` : "";
  return {
    ok: true,
    change: { stopLoss: level, takeProfit: position.takeProfit },
    note: `${pct(((last - level) / last) * 100)} below the price now (${fmt(last)}), ${level >= position.entryPrice ? `${pct(((level - position.entryPrice) / position.entryPrice) * 100)} above` : `${pct(((position.entryPrice - level) / position.entryPrice) * 100)} below`} the entry.${trailing}`,
  };
}

/** Checks a new take profit for a long position at the price now. */
export function moveTakeProfit(position: Position, level: number, last: number): ExitMove {
  if (!(level > 0) || !Number.isFinite(level)) return { ok: false, error: `A take profit must be a price above 0, not ${fmt(level)}.` };
  if (!(last > 0)) return { ok: false, error: `There is no price for ${position.symbol} now; try again shortly.` };
  if (level <= last) {
    return { ok: false, error: `A take profit at ${fmt(level)} is at or below the price now (${fmt(last)}): for a long it must be above the price, or it would sell at once. /close ${position.symbol.split("/")[0]} sells now.` };
  }
  const highest = position.entryPrice * (1 + LIMIT_BOUNDS.defaultTakeProfitPct.max / 100);
  if (level > highest) return { ok: false, error: `A take profit at ${fmt(level)} is more than ${LIMIT_BOUNDS.defaultTakeProfitPct.max}% above the entry ${fmt(position.entryPrice)}: at most ${fmt(highest)}.` };
  return { ok: true, change: { stopLoss: position.stopLoss, takeProfit: level }, note: `${pct(((level - last) / last) * 100)} above the price now (${fmt(last)}).` };
}

/** A price typed in chat ("95000", "0.25"), or undefined when it is not one. */
export function parsePrice(raw: string): number | undefined {
  const t = raw.replace(/^@/, "").replace(/,/g, "");
  if (!/^\d+(\.\d+)?$/.test(t)) return undefined;
  const n = Number(t);
  return Number.isFinite(n) ? n : undefined;
}
