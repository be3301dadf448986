// The books as the profit views and the operator gauges read them: the portfolio's fills, round
// trips and positions, the ledger's AI spend, the exchange's cash and the market's last prices.
import type { Position } from "../domain/types.js";
import type { Exchange } from "../exchange/types.js";
import type { Ledger } from "../ledger/ledger.js";
import type { MarketData } from "../market/types.js";
import type { PortfolioStore } from "../portfolio/store.js";
import { equity, exposure, totalUnrealizedPnl } from "../portfolio/valuation.js";

export interface ProfitBooks {
  portfolio: Pick<PortfolioStore, "fills" | "recentFills" | "closedTrades" | "realizedPnl" | "positions">;
  ledger: Pick<Ledger, "charges" | "decisions">;
  market: Pick<MarketData, "lastPrice">;
  exchange: Pick<Exchange, "balances">;
  quote: string;
  clock: () => number;
}

export interface AccountFigures {
  cash: number;
  equity: number;
  /** The positions' notional at the last prices. */
  exposure: number;
  positions: Position[];
  prices: Record<string, number>;
  unrealized: number;
  /** Every P&L the portfolio realized since its books began. */
  realized: number;
}

/** Cash, equity, exposure and P&L now, marked at the last prices. */
export async function accountFigures(b: Pick<ProfitBooks, "portfolio" | "market" | "exchange" | "quote">): Promise<AccountFigures> {
  const [balances, positions, realized] = await Promise.all([b.exchange.balances(), b.portfolio.positions(), b.portfolio.realizedPnl()]);
  const prices: Record<string, number> = {};
  await Promise.all(positions.map(async (p) => (prices[p.symbol] = await b.market.lastPrice(p.symbol))));
  const p = { cash: balances[b.quote] ?? 0, positions, prices, dayStartEquity: 0 };
  return { cash: p.cash, equity: equity(p), exposure: exposure(p), positions, prices, unrealized: totalUnrealizedPnl(p), realized };
}
