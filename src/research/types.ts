import type { MarketSymbol, MicroUsdc } from "../domain/types.js";

/** Outside signals (news, sentiment, on-chain) the agent weighs beside the technicals. */
export interface ResearchReport {
  source: string;
  available: boolean;
  signals: { headline: string; sentiment: "positive" | "negative" | "neutral" }[];
  /** Market-wide stories the source follows (trending projects, themes). */
  narratives?: string[];
  note: string;
  /** How this report was had: paid now, from the cache of an earlier paid reply, free, or not at all. */
  served?: "paid" | "cache" | "free" | "refused" | "failed";
  /** What this decision paid for it (a cached reply costs the decisions it serves nothing more). */
  costMicro?: MicroUsdc;
}

export interface ResearchProvider {
  readonly name: string;
  research(symbol: MarketSymbol): Promise<ResearchReport>;
}

/** The offline default: no research source, said plainly so neither model nor user assumes one. */
export class NoResearch implements ResearchProvider {
  readonly name = "none (offline)";
  async research(): Promise<ResearchReport> {
    return {
      source: this.name,
      available: false,
      signals: [],
      note: "No research source is configured: decide on technical signals only.",
    };
  }
}
