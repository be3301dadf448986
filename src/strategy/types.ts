// What a strategy is: one function from the decision's context to a decision in the schema the
// models answer with (src/decision/schema.ts). A strategy file exports it (default, or `decide`).
import type { Candle, Decision, IndicatorSnapshot, Position, RiskLimits } from "../domain/types.js";
import type { ResearchReport } from "../research/types.js";

export interface StrategyPortfolio {
  /** Free quote currency (USDT). */
  cash: number;
  equity: number;
  positions: Position[];
  /** Equity now minus equity at the start of the UTC day. */
  dailyPnl: number;
  /** All positions' value, percent of equity. */
  exposurePct: number;
  realizedPnl: number;
  /** The latest decisions on this symbol (live only; empty in a backtest). */
  recent: { time: number; action: string; outcome: string }[];
}

/** Everything one decision is made from, as the models see it, plus the candles themselves. */
export interface StrategyContext {
  symbol: string;
  /** When the decision is made (epoch ms): live, the clock; in a backtest, the open of the forming candle. */
  now: number;
  /** Closed candles, oldest first (up to 200); the last one closed just before `now`. */
  candles: Candle[];
  /** The indicator snapshot of those candles (SMA20/50, RSI14, MACD, Bollinger, ATR14, volatility, signal score). */
  indicators: IndicatorSnapshot;
  /** The open position in this symbol, if there is one. */
  position?: Position;
  portfolio: StrategyPortfolio;
  /** The hard limits the risk rules apply after the strategy answers (they may resize or refuse it). */
  limits: RiskLimits;
  research: ResearchReport;
}

/** A decision: buy or sell a percent of equity, close, or hold, with a confidence and reasons. */
export type StrategyDecision = Decision;

export type Strategy = (ctx: StrategyContext) => StrategyDecision | Promise<StrategyDecision>;

/** The outcome of asking a strategy: its validated decision, or why it was refused (no order is placed). */
export type StrategyOutcome = { ok: true; decision: Decision } | { ok: false; error: string };

/**
 * What decides when no model does (the model layer's last resort): the built-in offline engine, or
 * a strategy file. `decide` throws, with the reason, when the answer is refused (no order then).
 */
export interface FreeDecider {
  /** Recorded as the decision's model: offline-engine, or strategy:<file name>. */
  id: string;
  decide(inputs: import("../agent/tradingAgent.js").DecisionInputs): Promise<Decision>;
  close?(): Promise<void>;
}
