// A plain SMA crossover as a strategy file: long while the fast average of the closes is above the
// slow one, flat otherwise. It reads the candles themselves (not the indicator snapshot), to show
// how a strategy computes what it needs. Copy it to start your own (strategies/README.md).
import type { Decision } from "../src/domain/types.js";
import type { StrategyContext } from "../src/strategy/types.js";

export const name = "SMA 20/50 crossover";

const FAST = 20;
const SLOW = 50;

const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;

export default function decide(ctx: StrategyContext): Decision {
  const closes = ctx.candles.map((c) => c.close);
  const hold = (why: string): Decision => ({ symbol: ctx.symbol, action: "hold", sizePct: 0, confidence: 0.5, reasons: [why] });
  if (closes.length < SLOW) return hold(`Only ${closes.length} closed candles: the ${SLOW}-candle average needs ${SLOW}.`);
  const fast = mean(closes.slice(-FAST));
  const slow = mean(closes.slice(-SLOW));
  const why = `SMA${FAST} ${fast.toPrecision(6)} is ${fast > slow ? "above" : "below"} SMA${SLOW} ${slow.toPrecision(6)}.`;
  if (fast > slow && !ctx.position) {
    // As much as the position cap allows; the risk rules resize it to what the account may hold.
    // No target to speak of and the widest stop allowed: the crossover itself is the exit.
    return { symbol: ctx.symbol, action: "buy", sizePct: ctx.limits.maxPositionPct, confidence: 0.6, reasons: [why, "Trend up: go long."], stopLossPct: ctx.limits.maxStopLossPct, takeProfitPct: 1000 };
  }
  if (fast < slow && ctx.position) return { symbol: ctx.symbol, action: "close", sizePct: 0, confidence: 0.6, reasons: [why, "Trend down: close the position."] };
  return hold(why);
}
