import type { Candle, MarketSymbol } from "../domain/types.js";
import { UnknownSymbolError, type MarketData } from "../market/types.js";

/**
 * Recorded candles stepped one at a time by the backtest: candle `index` is the one forming now,
 * everything before it is closed. Orders fill at the forming candle's open, except where the loop
 * says otherwise (an exit at its stop level).
 */
export class BacktestMarket implements MarketData {
  readonly kind = "replay" as const;
  index = 0;
  /** Overrides the fill price of the next orders in a symbol (cleared by the loop). */
  readonly fillAt = new Map<MarketSymbol, number>();

  constructor(readonly symbol: MarketSymbol, readonly candles: Candle[], private readonly label: string) {}

  symbols(): MarketSymbol[] {
    return [this.symbol];
  }

  async closedCandles(symbol: MarketSymbol, limit: number): Promise<Candle[]> {
    this.check(symbol);
    const n = Math.max(0, Math.floor(limit));
    return this.candles.slice(Math.max(0, this.index - n), this.index);
  }

  async lastPrice(symbol: MarketSymbol): Promise<number> {
    this.check(symbol);
    return this.fillAt.get(symbol) ?? this.candles[this.index]!.open;
  }

  currentCandle(symbol: MarketSymbol): Candle {
    this.check(symbol);
    return this.candles[this.index]!;
  }

  describe(): string {
    return this.label;
  }

  private check(symbol: MarketSymbol): void {
    if (symbol !== this.symbol) throw new UnknownSymbolError(symbol, [this.symbol]);
  }
}
