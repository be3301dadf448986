import type { Candle, MarketSymbol } from "../domain/types.js";

export interface MarketData {
  readonly kind: "replay" | "live";
  /** symbols this source can serve, e.g. ["BTC/USDT","ETH/USDT","DOGE/USDT"] */
  symbols(): MarketSymbol[];
  /** Closed candles only (the still-forming candle is never included), oldest first, at most `limit`. */
  closedCandles(symbol: MarketSymbol, limit: number): Promise<Candle[]>;
  /** Latest price (replay: open of the current candle, the price at the moment it begins; its close is still in the future). */
  lastPrice(symbol: MarketSymbol): Promise<number>;
  /** The candle forming now, where the source has it (the replay does): lets the position monitor see a stop touched within the candle. */
  currentCandle?(symbol: MarketSymbol): Candle | Promise<Candle>;
  /** Last trade, best bid and ask, where the source has them. */
  ticker?(symbol: MarketSymbol): Promise<TickerSnapshot>;
  /** The top of the order book, where the source has one. */
  orderBook?(symbol: MarketSymbol, depth?: number): Promise<OrderBookSnapshot>;
  /** Every symbol the exchange lists, where that is more than `symbols()` (a live exchange's markets): what /symbols add may name. */
  listed?(): Promise<MarketSymbol[]>;
  /** Serves these symbols from now on (a /symbols change), where the source keeps a list. */
  serve?(symbols: MarketSymbol[]): void;
  /** One line for the startup banner and /status, e.g. "replay of real Binance 2h candles (data/ohlcv), candle 120/3000 of BTC/USDT". */
  describe(): string;
}

export interface TickerSnapshot {
  symbol: MarketSymbol;
  last: number;
  bid?: number;
  ask?: number;
  time: number;
}

export interface OrderBookSnapshot {
  symbol: MarketSymbol;
  /** [price, quantity], best first. */
  bids: [number, number][];
  asks: [number, number][];
  time: number;
  spreadPct?: number;
}

export class UnknownSymbolError extends Error {
  constructor(
    readonly symbol: string,
    readonly served: MarketSymbol[],
  ) {
    super(`Unknown symbol "${symbol}": this market serves ${served.join(", ") || "no symbols"}`);
    this.name = "UnknownSymbolError";
  }
}
