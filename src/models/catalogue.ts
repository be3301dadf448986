import { USDC, type MicroUsdc } from "../domain/types.js";
import { isLocalModel } from "../localModels/openaiCompatible.js";

/** How capable (and how dear) a model is. Selection asks for a tier; the catalogue names the model. */
export type Tier = "economy" | "fast" | "standard" | "premium";
export const TIERS: readonly Tier[] = ["economy", "fast", "standard", "premium"];
export const tierRank = (t: Tier): number => TIERS.indexOf(t);

export interface CatalogueModel {
  id: string;
  tier: Tier;
  /** Expected USDC per call before any call was seen: MODEL_PRICES, the router's catalogue, the built-in list, or COST_PER_DECISION_USDC. */
  listPriceMicro: MicroUsdc;
  priceFrom: "configured" | "catalogue" | "estimate";
  timeoutMs: number;
  /** false: the router's live catalogue was read and does not list this model now. */
  offered?: false;
  /** A local model (local:NAME, LOCAL_MODEL_URL): free, never paid, not in the router's catalogue. */
  free?: true;
}

// Rough per-decision prices by model family, used only until the router's catalogue is read
// (or when it names no price); MODEL_PRICES overrides them.
const KNOWN_PRICES: [RegExp, number][] = [
  [/gpt-5|gpt-4o(?!-mini)|claude-opus|opus/i, 0.08],
  [/claude-3[.-]5-sonnet|claude-3\.7|claude-sonnet|sonnet/i, 0.05],
  [/gemini-2\.5-flash|gemini-.*flash|kimi/i, 0.02],
  [/llama/i, 0.01],
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
  /** The router's live catalogue, when it was read: its models and their prices. */
  offered?: { id: string; priceMicro?: MicroUsdc }[];
}

/**
 * Tiers by rank of price among the configured models: the cheapest is economy, the dearest premium,
 * the others spread between. Prices move (2024's $0.10 call is a few cents today); what selection
 * needs is which model is the better buy for a harder decision, not a price level. One price for
 * all (or one model): the absolute scale.
 */
export function tiersByRank(prices: MicroUsdc[]): Tier[] {
  const distinct = [...new Set(prices)].sort((a, b) => a - b);
  if (distinct.length < 2) return prices.map((p) => tierForPrice(p / 1_000_000));
  return prices.map((p) => TIERS[Math.round((distinct.indexOf(p) * (TIERS.length - 1)) / (distinct.length - 1))]!);
}

/** The configured router models, in the configured order (primary first), with tier, price and timeout. */
export function buildCatalogue(s: CatalogueSettings): CatalogueModel[] {
  const ids = [s.primary, ...s.fallbacks.filter((m) => m !== s.primary)];
  const priced = ids.map((id) => {
    const local = isLocalModel(id);
    const live = s.offered?.find((m) => m.id === id);
    const [micro, from]: [MicroUsdc, CatalogueModel["priceFrom"]] =
      local ? [0, "configured"]
      : s.prices[id] !== undefined ? [USDC(s.prices[id]!), "configured"]
      : live?.priceMicro !== undefined ? [live.priceMicro, "catalogue"]
      : [USDC(KNOWN_PRICES.find(([re]) => re.test(id))?.[1] ?? s.defaultPriceUsdc), "estimate"];
    return { id, tier: tierForPrice(micro / 1_000_000), listPriceMicro: micro, priceFrom: from, timeoutMs: s.timeouts[id] ?? s.defaultTimeoutMs, ...(s.offered && !live && !local ? { offered: false as const } : {}), ...(local ? { free: true as const } : {}) };
  });
  // A model the router no longer offers keeps its place in the list, but takes no tier from the others.
  const ranked = priced.filter((m) => m.offered !== false);
  const tiers = tiersByRank(ranked.map((m) => m.listPriceMicro));
  ranked.forEach((m, i) => (m.tier = tiers[i]!));
  return priced;
}
