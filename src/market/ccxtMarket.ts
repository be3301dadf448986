import type { Exchange } from "ccxt";
import type { Candle, MarketSymbol } from "../domain/types.js";
import { UnknownSymbolError, type MarketData } from "./types.js";

export interface CcxtMarketOptions {
  /** A ccxt exchange instance, e.g. `new ccxt.binance()`; public endpoints only are used. */
  exchange: Exchange;
  symbols: MarketSymbol[];
  /** ccxt timeframe, e.g. "2h". */
  timeframe: string;
  /** Wall clock (epoch ms), injectable for tests; defaults to Date.now. */
  now?: () => number;
}

/** Exchanges cap one klines request (Binance: 1000). */
const MAX_FETCH = 1000;

/** Live market data over ccxt's public REST calls. */
export class CcxtMarketData implements MarketData {
  readonly kind = "live" as const;
  private readonly exchange: Exchange;
  private readonly served: MarketSymbol[];
  private readonly timeframe: string;
  private readonly timeframeMs: number;
  private readonly now: () => number;

  constructor(opts: CcxtMarketOptions) {
    this.exchange = opts.exchange;
    this.served = [...opts.symbols];
    this.timeframe = opts.timeframe;
    // parseTimeframe answers in seconds.
    this.timeframeMs = opts.exchange.parseTimeframe(opts.timeframe) * 1000;
    this.now = opts.now ?? (() => Date.now());
  }

  symbols(): MarketSymbol[] {
    return [...this.served];
  }

  async closedCandles(symbol: MarketSymbol, limit: number): Promise<Candle[]> {
    this.check(symbol);
    const n = Math.max(0, Math.floor(limit));
    if (n === 0) return [];
    // One extra, because the exchange's newest candle is usually still forming and gets dropped.
    const rows = await this.exchange.fetchOHLCV(symbol, this.timeframe, undefined, Math.min(n + 1, MAX_FETCH));
    const now = this.now();
    const candles: Candle[] = [];
    for (const row of rows) {
      const [time, open, high, low, close, volume] = row;
      if (time === undefined || open === undefined || high === undefined || low === undefined || close === undefined) {
        continue;
      }
      // A candle is closed only once its whole period has passed; a forming one would repaint.
      if (time + this.timeframeMs > now) continue;
      candles.push({ time, open, high, low, close, volume: volume ?? 0 });
    }
    candles.sort((a, b) => a.time - b.time);
    return candles.slice(-n);
  }

  async lastPrice(symbol: MarketSymbol): Promise<number> {
    this.check(symbol);
    const ticker = await this.exchange.fetchTicker(symbol);
    const price = ticker.last ?? ticker.close;
    if (price === undefined || !Number.isFinite(price)) {
      throw new Error(`${this.exchange.id} returned no last price for ${symbol}`);
    }
    return price;
  }

  describe(): string {
    return `live ${this.exchange.name ?? this.exchange.id} ${this.timeframe} candles for ${this.served.join(", ")}`;
  }

  private check(symbol: MarketSymbol): void {
    if (!this.served.includes(symbol)) throw new UnknownSymbolError(symbol, this.symbols());
  }
}
