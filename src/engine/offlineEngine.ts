import type { Decision, IndicatorSnapshot, Position, RiskLimits } from "../domain/types.js";

/** Model id recorded on decisions made without an LLM. */
export const OFFLINE_MODEL_ID = "offline-engine";

export type OfflineLimits = Pick<RiskLimits, "maxPositionPct" | "defaultStopLossPct" | "defaultTakeProfitPct">;

/*
 * Offline engine rules (deterministic, no network, no cost); long-only spot:
 *  - flat and signal bullish   -> buy maxPositionPct * min(1, |score|) percent of equity;
 *      stop loss = 2 * ATR14 / price in percent, clamped to [1, 2 * defaultStopLossPct],
 *      take profit = 2 * stop (reward twice the risk). Without a usable ATR the risk defaults apply.
 *  - holding and signal bearish -> close the position.
 *  - anything else              -> hold (flat stays flat, a held position rides on).
 * Confidence: trades and holds the signal agrees with get 0.5 + |score| / 2; a neutral hold gets
 * 1 - |score| (a weaker signal makes "do nothing" more certain).
 */
export function decideOffline(
  snapshot: IndicatorSnapshot,
  position: Position | undefined,
  limits: OfflineLimits,
): Decision {
  const score = snapshot.signalScore;
  const strength = Math.min(1, Math.abs(score));
  const agreeing = clamp01(0.5 + strength / 2);
  const base = marketReasons(snapshot);
  const decision = (action: Decision["action"], confidence: number, why: string, extra: Partial<Decision> = {}): Decision => ({
    symbol: snapshot.symbol,
    action,
    sizePct: 0,
    confidence,
    reasons: [...base, why],
    ...extra,
  });

  if (!position && snapshot.signal === "bullish") {
    const sizePct = round2(limits.maxPositionPct * strength);
    const { stopLossPct, takeProfitPct, basis } = exits(snapshot, limits);
    return decision(
      "buy",
      agreeing,
      `Bullish score ${signed(score, 2)}: buy ${sizePct}% of equity, stop ${stopLossPct}% below entry (${basis}), target ${takeProfitPct}% above.`,
      { sizePct, stopLossPct, takeProfitPct },
    );
  }
  if (position && snapshot.signal === "bearish") {
    const change = ((snapshot.price - position.entryPrice) / position.entryPrice) * 100;
    return decision(
      "close",
      agreeing,
      `Bearish score ${signed(score, 2)}: close the position bought at ${price(position.entryPrice)} (${signed(change, 1)}% since entry).`,
    );
  }
  if (snapshot.signal === "neutral") {
    return decision("hold", clamp01(1 - strength), `Neutral score ${signed(score, 2)}: no clear edge, ${position ? "keep the position" : "stay out"}.`);
  }
  return decision(
    "hold",
    agreeing,
    position
      ? `Score ${signed(score, 2)} still bullish: keep the position.`
      : `Score ${signed(score, 2)} bearish and no position: stay out (long-only).`,
  );
}

function exits(s: IndicatorSnapshot, limits: OfflineLimits): { stopLossPct: number; takeProfitPct: number; basis: string } {
  const atrPct = (2 * s.atr14 * 100) / s.price;
  if (!Number.isFinite(atrPct) || atrPct <= 0) {
    return { stopLossPct: limits.defaultStopLossPct, takeProfitPct: limits.defaultTakeProfitPct, basis: "default, no ATR" };
  }
  const widest = Math.max(1, limits.defaultStopLossPct * 2);
  const stopLossPct = round2(Math.min(widest, Math.max(1, atrPct)));
  return { stopLossPct, takeProfitPct: round2(stopLossPct * 2), basis: `2x ATR ${price(s.atr14)}` };
}

/** The three observations every decision cites: trend, RSI, MACD momentum. */
function marketReasons(s: IndicatorSnapshot): string[] {
  const above20 = s.price > s.sma20;
  const above50 = s.price > s.sma50;
  const relation =
    above20 === above50
      ? `${above20 ? "above" : "below"} SMA20 ${price(s.sma20)} and SMA50 ${price(s.sma50)}`
      : `${above20 ? "above" : "below"} SMA20 ${price(s.sma20)} but ${above50 ? "above" : "below"} SMA50 ${price(s.sma50)}`;
  const trend =
    above20 && above50 && s.sma20 > s.sma50
      ? "uptrend"
      : !above20 && !above50 && s.sma20 < s.sma50
        ? "downtrend"
        : "mixed trend";
  const rsiState = s.rsi14 < 30 ? "oversold" : s.rsi14 > 70 ? "overbought" : "neutral";
  const h = s.macd.histogram;
  const momentum = h > 0 ? "momentum up" : h < 0 ? "momentum down" : "flat momentum";
  return [
    `Price ${price(s.price)} ${relation} (${trend}).`,
    `RSI ${Math.round(s.rsi14)} (${rsiState}).`,
    `MACD histogram ${h > 0 ? "+" : h < 0 ? "-" : ""}${price(Math.abs(h))} (${momentum}).`,
  ];
}

const round2 = (x: number): number => Math.round(x * 100) / 100;
// Three decimals: enough to rank decisions, and no float noise like 0.9666669999999999 in chat.
const clamp01 = (x: number): number => Math.round(Math.min(1, Math.max(0, x)) * 1000) / 1000;

// Built once: a NumberFormat per call was a fifth of a full-history backtest's time.
const BIG = new Intl.NumberFormat("en-US", { maximumFractionDigits: 0 });
const MID = new Intl.NumberFormat("en-US", { maximumFractionDigits: 2 });
const SMALL = new Intl.NumberFormat("en-US", { maximumSignificantDigits: 4 });

/** Readable at any magnitude: 64,210 for BTC, 3,712.5 for ETH, 0.1652 for DOGE. Fixed locale for determinism. */
function price(x: number): string {
  const abs = Math.abs(x);
  return (abs >= 10_000 ? BIG : abs >= 1 ? MID : SMALL).format(x);
}

function signed(x: number, digits: number): string {
  const text = x.toFixed(digits);
  return x > 0 ? `+${text}` : text;
}
