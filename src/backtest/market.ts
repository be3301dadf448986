import type { Candle, MarketSymbol } from "../domain/types.js";
import { UnknownSymbolError, type MarketData } from "../market/types.js";

/**
 * Recorded candles of one or more symbols, stepped on one clock by the backtest. `at(time)` moves
 * every symbol to its candle opening at that time (the one forming now); everything before it is
 * closed. A symbol with no candle at that time (a hole in its data) shows a flat candle at its last
 * close, so the position monitor never judges a candle twice. Orders fill at the forming candle's
 * open, except where the loop says otherwise (an exit at its stop level).
 */
export class BacktestMarket implements MarketData {
  readonly kind = "replay" as const;
  /** Overrides the fill price of the next orders in a symbol (cleared by the loop). */
  readonly fillAt = new Map<MarketSymbol, number>();
  private readonly series = new Map<MarketSymbol, Candle[]>();
  /** Per symbol: index of the newest candle opening at or before now. */
  private readonly cursor = new Map<MarketSymbol, number>();
  private now = 0;

  private readonly label: string;

  /** `new BacktestMarket(symbol, candles, label)` for one symbol, `new BacktestMarket([{ symbol, candles }...], label)` for several. */
  constructor(symbols: MarketSymbol | { symbol: MarketSymbol; candles: Candle[] }[], candlesOrLabel?: Candle[] | string, label?: string) {
    if (typeof symbols === "string") this.series.set(symbols, candlesOrLabel as Candle[]);
    else for (const s of symbols) this.series.set(s.symbol, s.candles);
    this.label = (typeof candlesOrLabel === "string" ? candlesOrLabel : label) ?? "backtest";
    for (const s of this.series.keys()) this.cursor.set(s, 0);
  }

  /** Single-symbol runs step by index; kept for callers that set it. */
  set index(i: number) {
    const [symbol] = this.series.keys();
    const c = this.series.get(symbol!)![i];
    if (c) this.at(c.time);
  }

  /** Moves the clock to `time` (never backwards). Returns the symbols with a real candle at that time. */
  at(time: number): MarketSymbol[] {
    this.now = time;
    const live: MarketSymbol[] = [];
    for (const [symbol, candles] of this.series) {
      let i = this.cursor.get(symbol)!;
      while (i + 1 < candles.length && candles[i + 1]!.time <= time) i++;
      this.cursor.set(symbol, i);
      if (candles[i]!.time === time) live.push(symbol);
    }
    return live;
  }

  symbols(): MarketSymbol[] {
    return [...this.series.keys()];
  }

  /** Index of the candle forming now in `symbol`'s series, or -1 when it has none at this time. */
  indexOf(symbol: MarketSymbol): number {
    const i = this.cursor.get(symbol)!;
    return this.series.get(symbol)![i]!.time === this.now ? i : -1;
  }

  async closedCandles(symbol: MarketSymbol, limit: number): Promise<Candle[]> {
    const candles = this.check(symbol);
    const n = Math.max(0, Math.floor(limit));
    const i = this.cursor.get(symbol)!;
    const end = candles[i]!.time < this.now ? i + 1 : i;
    return candles.slice(Math.max(0, end - n), end);
  }

  async lastPrice(symbol: MarketSymbol): Promise<number> {
    this.check(symbol);
    return this.fillAt.get(symbol) ?? this.currentCandle(symbol).open;
  }

  currentCandle(symbol: MarketSymbol): Candle {
    const candles = this.check(symbol);
    const c = candles[this.cursor.get(symbol)!]!;
    if (c.time === this.now) return c;
    // No candle now: nothing traded, so the price stays at the last close.
    return { time: this.now, open: c.close, high: c.close, low: c.close, close: c.close, volume: 0 };
  }

  describe(): string {
    return this.label;
  }

  private check(symbol: MarketSymbol): Candle[] {
    const candles = this.series.get(symbol);
    if (!candles) throw new UnknownSymbolError(symbol, this.symbols());
    return candles;
  }
}
