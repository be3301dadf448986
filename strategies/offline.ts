// The offline engine as a strategy file: trend following, long-only spot, deterministic, free.
// It is the built-in default (src/engine/offlineEngine.ts runs these rules in process when no
// STRATEGY is set), and a strategy like any other: STRATEGY=strategies/offline.ts or
// `npm run backtest -- --strategy strategies/offline.ts` run it through the strategy runner.
// How to write your own: strategies/README.md.
import type { Decision, IndicatorSnapshot, Position, RiskLimits } from "../src/domain/types.js";
import type { StrategyContext } from "../src/strategy/types.js";

/** The strategy: the engine's rules on the decision's indicators, position and limits. */
export default function decide(ctx: StrategyContext): Decision {
  return decideOffline(ctx.indicators, ctx.position, ctx.limits);
}

export type OfflineLimits = Pick<RiskLimits, "maxPositionPct" | "defaultStopLossPct" | "defaultTakeProfitPct">;

/**
 * The engine's tunable numbers. Chosen on BTC/USDT 2h candles of 2017-2021 only (src/backtest/tune.ts);
 * 2022-2025 are held out and were never used to pick them (docs/evaluation.md).
 */
export interface OfflineRules {
  /** Stop loss distance in ATR14s (then clamped to [1%, 2 x the default stop]). */
  stopAtr: number;
  /** Take profit as a multiple of the stop distance: far, so trends are left to run and the trend exit does the work. */
  targetR: number;
  /** Per-candle volatility the position is sized for: size = maxPositionPct * min(1, target / volatility). 0 = off. */
  volTarget: number;
  /** No entry above this RSI: buying a stretched market is where fees and stops eat the edge. */
  maxEntryRsi: number;
  /** Close only when SMA20 crosses under SMA50 (slower), instead of when price and SMA20 are both under it. */
  slowExit: boolean;
}

export const OFFLINE_RULES: OfflineRules = { stopAtr: 4, targetR: 6, volTarget: 0.005, maxEntryRsi: 75, slowExit: false };

/*
 * Offline engine rules (deterministic, no network, no cost); long-only spot, trend following:
 *  - flat, and the trend is up (price > SMA20 > SMA50) with momentum (MACD histogram > 0) and RSI at or under maxEntryRsi -> buy. Size: maxPositionPct,
 *    scaled down when the market is more volatile than volTarget per candle (volatility targeting:
 *    equal risk per trade, smaller bets in wild markets). Stop: stopAtr x ATR14 below entry,
 *    clamped to [1, 2 x defaultStopLossPct]; target targetR x the stop.
 *  - holding, and the trend is broken (price below SMA50 and SMA20 below SMA50) -> close.
 *    Entry asks for more than exit: the gap between the two (hysteresis) keeps the engine from
 *    trading in and out of a flat market, where fees take what little there is.
 *  - anything else -> hold (flat stays flat, a held position rides on).
 * Confidence: 0.5 + |score| / 2 for trades and for holds the signal agrees with; 1 - |score| for
 * a neutral hold (a weaker signal makes "do nothing" more certain).
 */
export function decideOffline(
  snapshot: IndicatorSnapshot,
  position: Position | undefined,
  limits: OfflineLimits,
  rules: OfflineRules = OFFLINE_RULES,
): Decision {
  const s = snapshot;
  const score = s.signalScore;
  const strength = Math.min(1, Math.abs(score));
  const agreeing = clamp01(0.5 + strength / 2);
  const base = marketReasons(s);
  const decision = (action: Decision["action"], confidence: number, why: string, extra: Partial<Decision> = {}): Decision => ({
    symbol: s.symbol,
    action,
    sizePct: 0,
    confidence,
    reasons: [...base, why],
    ...extra,
  });
  const uptrend = s.price > s.sma20 && s.sma20 > s.sma50 && s.macd.histogram > 0;
  const broken = rules.slowExit ? s.sma20 < s.sma50 : s.price < s.sma50 && s.sma20 < s.sma50;

  if (!position && uptrend && s.rsi14 <= rules.maxEntryRsi) {
    const scale = rules.volTarget > 0 && s.volatility > 0 ? Math.min(1, rules.volTarget / s.volatility) : 1;
    const sizePct = round2(limits.maxPositionPct * scale);
    const { stopLossPct, takeProfitPct, basis } = exits(s, limits, rules);
    const sizing = scale < 1 ? ` (scaled to ${round2(scale * 100)}% of the largest: volatility ${round2(s.volatility * 100)}% per candle against ${round2(rules.volTarget * 100)}% targeted)` : "";
    return decision(
      "buy",
      clamp01(Math.max(0.55, agreeing)),
      `Uptrend with momentum: buy ${sizePct}% of equity${sizing}, stop ${stopLossPct}% below entry (${basis}), target ${takeProfitPct}% above.`,
      { sizePct, stopLossPct, takeProfitPct },
    );
  }
  if (position && broken) {
    const change = ((s.price - position.entryPrice) / position.entryPrice) * 100;
    return decision(
      "close",
      clamp01(Math.max(0.55, agreeing)),
      `Trend broken (price and SMA20 below SMA50): close the position bought at ${price(position.entryPrice)} (${signed(change, 1)}% since entry).`,
    );
  }
  if (position) return decision("hold", uptrend ? agreeing : clamp01(1 - strength), `Trend not broken (score ${signed(score, 2)}): keep the position.`);
  if (uptrend) return decision("hold", clamp01(1 - strength / 2), `Uptrend but RSI ${Math.round(s.rsi14)} is over ${rules.maxEntryRsi}: too stretched to buy, stay out.`);
  if (s.signal === "neutral") return decision("hold", clamp01(1 - strength), `Neutral score ${signed(score, 2)}: no clear edge, stay out.`);
  return decision("hold", agreeing, `No uptrend with momentum (score ${signed(score, 2)}): stay out (long-only).`);
}

function exits(s: IndicatorSnapshot, limits: OfflineLimits, rules: OfflineRules): { stopLossPct: number; takeProfitPct: number; basis: string } {
  const atrPct = (rules.stopAtr * s.atr14 * 100) / s.price;
  if (!Number.isFinite(atrPct) || atrPct <= 0) {
    return { stopLossPct: limits.defaultStopLossPct, takeProfitPct: limits.defaultTakeProfitPct, basis: "default, no ATR" };
  }
  const widest = Math.max(1, limits.defaultStopLossPct * 2);
  const stopLossPct = round2(Math.min(widest, Math.max(1, atrPct)));
  return { stopLossPct, takeProfitPct: round2(stopLossPct * rules.targetR), basis: `${rules.stopAtr}x ATR ${price(s.atr14)}` };
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
