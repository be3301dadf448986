// Which model decides: the policy of the design documents, as a pure function of the decision.
import type { IndicatorSnapshot } from "../domain/types.js";
import { TIERS, tierRank, type CatalogueModel, type Tier } from "./catalogue.js";

export interface DecisionTraits {
  trigger: "schedule" | "chat";
  snapshot: IndicatorSnapshot;
  /** A position is open in the symbol: the decision manages it, not a fresh entry. */
  holding: boolean;
  /** The confidence of the last decision on this symbol, if there was one. */
  lastConfidence?: number;
}

export interface Assessment {
  type: "entry" | "manage-position";
  urgency: "normal" | "high";
  complexity: "low" | "medium" | "high";
  tier: Tier;
  why: string[];
}

/**
 * One point for each reason to pay for a better model, capped at the top tier:
 *  - a person asked (/decide from chat): they wait for it and will act on it;
 *  - urgency: the price is stretched more than 2.5 ATR from its SMA20 (a sharp move), or an open
 *    position faces a bearish signal;
 *  - complexity: the indicators disagree (weak score, or RSI at an extreme against the trend),
 *    and again for a very volatile market (over 4% per candle);
 *  - the last decision on the symbol was unsure (confidence under 0.55).
 * A routine scheduled decision on a clear signal gets the economy tier.
 */
export function assess(t: DecisionTraits): Assessment {
  const s = t.snapshot;
  const why: string[] = [];
  let need = 0;
  if (t.trigger === "chat") {
    need++;
    why.push("asked from chat");
  }
  const bigMove = s.atr14 > 0 && Math.abs(s.price - s.sma20) > 2.5 * s.atr14;
  const threatened = t.holding && s.signal === "bearish";
  const urgency = bigMove || threatened ? "high" : "normal";
  if (urgency === "high") {
    need++;
    why.push(bigMove ? "the price is stretched over 2.5 ATR from its SMA20" : "an open position faces a bearish signal");
  }
  const rsiAgainst = (s.rsi14 > 70 && s.signal === "bearish") || (s.rsi14 < 30 && s.signal === "bullish");
  const mixed = Math.abs(s.signalScore) < 0.25 || rsiAgainst;
  const wild = s.volatility > 0.04;
  let complexity: Assessment["complexity"] = "low";
  if (mixed) {
    need++;
    complexity = "medium";
    why.push("the indicators disagree");
  }
  if (wild) {
    need++;
    complexity = mixed ? "high" : "medium";
    why.push("the market is very volatile");
  }
  if (t.lastConfidence !== undefined && t.lastConfidence < 0.55) {
    need++;
    why.push(`the last decision was unsure (${Math.round(t.lastConfidence * 100)}%)`);
  }
  const tier = TIERS[Math.min(need, TIERS.length - 1)]!;
  if (why.length === 0) why.push("routine decision on a clear signal");
  return { type: t.holding ? "manage-position" : "entry", urgency, complexity, tier, why };
}

/**
 * The order models are tried in for a tier: the cheapest model of at least that tier first (or the
 * best there is), then the others by distance in tier, cheaper first at equal distance. A pinned
 * model (/model NAME) goes first and the rest keep the configured order.
 */
export function orderForTier(models: CatalogueModel[], tier: Tier, pinned?: string): CatalogueModel[] {
  if (pinned) {
    const first = models.find((m) => m.id === pinned);
    if (first) return [first, ...models.filter((m) => m.id !== pinned)];
  }
  if (models.length === 0) return [];
  const want = tierRank(tier);
  const byPrice = [...models].sort((a, b) => a.listPriceMicro - b.listPriceMicro || models.indexOf(a) - models.indexOf(b));
  const first = byPrice.find((m) => tierRank(m.tier) >= want) ?? byPrice.at(-1)!;
  const rest = byPrice
    .filter((m) => m !== first)
    .sort((a, b) => {
      const da = Math.abs(tierRank(a.tier) - want);
      const db = Math.abs(tierRank(b.tier) - want);
      return da - db || a.listPriceMicro - b.listPriceMicro;
    });
  return [first, ...rest];
}
