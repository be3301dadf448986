// Domain types shared by every layer. Plain data only: no I/O, no library types.

/** A market symbol in ccxt form, e.g. "BTC/USDT". */
export type MarketSymbol = string;

/** One OHLCV candle; `time` is the candle's open time in epoch milliseconds (UTC). */
export interface Candle {
  time: number;
  open: number;
  high: number;
  low: number;
  close: number;
  volume: number;
}

export type Signal = "bullish" | "bearish" | "neutral";

/** Technical indicators computed over closed candles, as the agent and the offline engine see them. */
export interface IndicatorSnapshot {
  symbol: MarketSymbol;
  /** Open time of the last closed candle used (epoch ms). */
  candleTime: number;
  price: number;
  sma20: number;
  sma50: number;
  rsi14: number;
  macd: { macd: number; signal: number; histogram: number };
  bollinger: { upper: number; middle: number; lower: number };
  atr14: number;
  /** Standard deviation of candle-to-candle returns over the last 20 candles, as a fraction (0.02 = 2%). */
  volatility: number;
  signal: Signal;
  /** -1 (strongly bearish) .. +1 (strongly bullish). */
  signalScore: number;
}

/** What the model (or the offline engine) may ask for. Long-only spot: "sell" reduces a long. */
export type TradeAction = "buy" | "sell" | "hold" | "close";

export interface Decision {
  symbol: MarketSymbol;
  action: TradeAction;
  /** Requested order size as percent of equity (0..100). Ignored for hold and close. */
  sizePct: number;
  /** 0..1 */
  confidence: number;
  reasons: string[];
  /** Stop loss distance below entry, percent (e.g. 3 = 3%). Optional: the risk limits supply a default. */
  stopLossPct?: number;
  /** Take profit distance above entry, percent. Optional: the risk limits supply a default. */
  takeProfitPct?: number;
}

export interface Position {
  symbol: MarketSymbol;
  side: "long";
  qty: number;
  entryPrice: number;
  stopLoss: number;
  takeProfit: number;
  openedAt: number;
  /** Trailing stop distance below the highest price since entry, percent; absent means off. */
  trailingStopPct?: number;
  /** Highest price seen since entry (for the trailing stop). */
  highWater?: number;
}

export interface RiskLimits {
  /** Largest single position, percent of equity. */
  maxPositionPct: number;
  /** Largest sum of all positions' notional, percent of equity. */
  maxExposurePct: number;
  /** Largest exposure / equity ratio (spot: 1). */
  maxLeverage: number;
  maxOpenPositions: number;
  /** Trading stops for the day once the day's loss reaches this percent of the day's starting equity. */
  dailyLossLimitPct: number;
  /** Default and widest stop loss, percent below entry. */
  defaultStopLossPct: number;
  maxStopLossPct: number;
  defaultTakeProfitPct: number;
  /** Smallest order notional in quote currency (exchanges reject dust). */
  minOrderNotional: number;
  /** No new buy in a symbol for this long after a losing exit in it, minutes; 0 or absent: off. */
  cooldownAfterLossMinutes?: number;
  /** Largest one-candle historical VaR (95%) of all positions together, percent of equity; absent: off. */
  maxVar95Pct?: number;
  /** Trailing stop for new positions, percent below the highest price since entry; 0 or absent: off. */
  trailingStopPct?: number;
}

export interface Portfolio {
  /** Free quote currency (USDT). */
  cash: number;
  /**
   * Quote currency locked in our open buy limit orders (not free, still ours): part of equity,
   * and room the risk rules keep for those orders until they fill or are cancelled.
   */
  reserved?: number;
  positions: Position[];
  /** Latest price per symbol, for marking positions to market. */
  prices: Record<MarketSymbol, number>;
  /** Equity at the start of the current UTC day (for the daily loss limit). */
  dayStartEquity: number;
}

export type OrderSide = "buy" | "sell";

export interface OrderRequest {
  /** Derived from the decision, so a retried job finds the order it already placed. */
  clientOrderId: string;
  symbol: MarketSymbol;
  side: OrderSide;
  /** Base-asset quantity. */
  qty: number;
}

export interface Order {
  id: string;
  clientOrderId: string;
  symbol: MarketSymbol;
  side: OrderSide;
  qty: number;
  filledQty: number;
  avgPrice: number;
  fee: number;
  status: "filled" | "partial" | "rejected" | "open";
  reason?: string;
  time: number;
}

/** Micro-USDC: integer count of 1e-6 USDC, so money sums are exact. */
export type MicroUsdc = number;

export const USDC = (n: number): MicroUsdc => Math.round(n * 1_000_000);
export const fromMicro = (m: MicroUsdc): number => m / 1_000_000;
/** The one way money is written for people: `$0.0313` (4 digits unless asked otherwise). */
export const usd = (m: MicroUsdc, digits = 4): string => `$${fromMicro(m).toFixed(digits)}`;

/** How this run of the agent trades and decides, in words for chat (never a key). */
export interface AgentMode {
  trading: "paper" | "live";
  market: string;
  wallet: string;
  model: string;
  research: string;
}
