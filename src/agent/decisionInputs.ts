import type { Candle, IndicatorSnapshot, MarketSymbol, Position, RiskLimits } from "../domain/types.js";
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
  /**
   * The closed candles the snapshot was computed from, and when the decision is made: for a
   * strategy file. The model is not shown them, and neither is part of a recording's hash.
   */
  candles?: Candle[];
  now?: number;
}
