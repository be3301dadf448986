import type { Position } from "../domain/types.js";
import type { MarketData } from "../market/types.js";
import type { PortfolioStore } from "../portfolio/store.js";
import type { RiskContext } from "./rules.js";
import { returnSeries, VAR_LOOKBACK, type ReturnSeries } from "./var.js";

/**
 * The history the risk rules need before a buy: when the symbol last closed at a loss (for the
 * cool-down) and recent returns of it and of every held symbol (for the VaR limit).
 */
export async function riskContext(
  svc: { market: MarketData; portfolio: PortfolioStore; limits: { maxVar95Pct?: number }; clock: () => number },
  symbol: string,
  positions: Position[],
  /** The last loss per symbol, when the caller read it already. */
  lastLosses?: Record<string, number>,
): Promise<RiskContext> {
  const now = svc.clock();
  const losses = lastLosses ?? (await svc.portfolio.lastLosses());
  const context: RiskContext = { now, ...(losses[symbol] !== undefined ? { lastLossAt: losses[symbol] } : {}) };
  if (svc.limits.maxVar95Pct === undefined) return context;
  const symbols = [...new Set([symbol, ...positions.map((p) => p.symbol)])];
  const returns: Record<string, ReturnSeries> = {};
  await Promise.all(symbols.map(async (s) => (returns[s] = returnSeries(await svc.market.closedCandles(s, VAR_LOOKBACK + 1)))));
  return { ...context, returns };
}
