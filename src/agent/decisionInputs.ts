import type { IndicatorSnapshot, MarketSymbol, Position, RiskLimits } from "../domain/types.js";
import type { ResearchReport } from "../research/types.js";

/** Everything one decision is made from; rendered into the agent's contexts. */
export interface DecisionInputs {
  decisionId: string;
  symbol: MarketSymbol;
  snapshot: IndicatorSnapshot;
  research: ResearchReport;
  portfolio: {
    cash: number;
    equity: number;
    positions: Position[];
    dailyPnl: number;
    exposurePct: number;
    realizedPnl: number;
    recent: { time: number; action: string; outcome: string }[];
  };
  limits: RiskLimits;
}
