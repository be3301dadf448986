import { USDC, type MicroUsdc } from "../domain/types.js";

/** How capable (and how dear) a model is. Selection asks for a tier; the catalogue names the model. */
export type Tier = "economy" | "fast" | "standard" | "premium";
export const TIERS: readonly Tier[] = ["economy", "fast", "standard", "premium"];
export const tierRank = (t: Tier): number => TIERS.indexOf(t);

export interface CatalogueModel {
  id: string;
  tier: Tier;
  /** Expected USDC per call before any call was seen: MODEL_PRICES, the design's price list, or COST_PER_DECISION_USDC. */
  listPriceMicro: MicroUsdc;
  timeoutMs: number;
}

// The design documents' per-call prices, used until the gateway quotes a real one.
const KNOWN_PRICES: [RegExp, number][] = [
  [/gpt-4o(?!-mini)/i, 0.1],
  [/claude-3[.-]5-sonnet|claude-3\.7|claude-sonnet/i, 0.05],
  [/gemini-2\.5-flash|gemini-.*flash/i, 0.02],
  [/llama-3\.1|llama-3-1/i, 0.01],
];

/** The tier a price puts a model in: what you pay is what the design says you get. */
export function tierForPrice(usdc: number): Tier {
  if (usdc >= 0.08) return "premium";
  if (usdc >= 0.035) return "standard";
  if (usdc >= 0.015) return "fast";
  return "economy";
}

export interface CatalogueSettings {
  primary: string;
  fallbacks: string[];
  /** USDC per call by model id (MODEL_PRICES); wins over the built-in list. */
  prices: Record<string, number>;
  defaultPriceUsdc: number;
  /** Milliseconds by model id (MODEL_TIMEOUTS). */
  timeouts: Record<string, number>;
  defaultTimeoutMs: number;
}

/** The configured router models, in the configured order (primary first), with tier, price and timeout. */
export function buildCatalogue(s: CatalogueSettings): CatalogueModel[] {
  const ids = [s.primary, ...s.fallbacks.filter((m) => m !== s.primary)];
  return ids.map((id) => {
    const usdc = s.prices[id] ?? KNOWN_PRICES.find(([re]) => re.test(id))?.[1] ?? s.defaultPriceUsdc;
    return { id, tier: tierForPrice(usdc), listPriceMicro: USDC(usdc), timeoutMs: s.timeouts[id] ?? s.defaultTimeoutMs };
  });
}
