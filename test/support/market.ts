import { join } from "node:path";
import { fileURLToPath } from "node:url";
import type { Candle } from "../../src/domain/types.js";
import { loadCandles } from "../../src/market/candles.js";
import type { MarketData } from "../../src/market/types.js";

const DATA = fileURLToPath(new URL("../../data/ohlcv/", import.meta.url));

/**
 * Real recorded candles as history, with the forming candle set by the test, so a test can put
 * the price exactly where a stop or a target is (or gap through it).
 */
export class SteeredMarket implements MarketData {
  readonly kind = "replay" as const;
  private readonly history = new Map<string, Candle[]>();
  private readonly current = new Map<string, Candle>();

  constructor(symbols: string[] = ["BTC/USDT", "ETH/USDT", "DOGE/USDT"]) {
    for (const symbol of symbols) {
      const candles = loadCandles(join(DATA, `${symbol.replace("/", "_")}_2h.csv`)).slice(0, 400);
      this.history.set(symbol, candles);
      const last = candles[candles.length - 1]!;
      this.current.set(symbol, { ...last, time: last.time + 2 * 3600_000, open: last.close, high: last.close, low: last.close });
    }
  }

  symbols(): string[] {
    return [...this.history.keys()];
  }

  /** Sets the forming candle: `open` is the price now, high/low what it touched so far. */
  set(symbol: string, c: { open: number; high?: number; low?: number }): void {
    const prev = this.current.get(symbol)!;
    this.current.set(symbol, { ...prev, open: c.open, high: c.high ?? c.open, low: c.low ?? c.open, close: c.open });
  }

  async closedCandles(symbol: string, limit: number): Promise<Candle[]> {
    return this.history.get(symbol)!.slice(-limit);
  }

  async lastPrice(symbol: string): Promise<number> {
    return this.current.get(symbol)!.open;
  }

  currentCandle(symbol: string): Candle {
    return { ...this.current.get(symbol)! };
  }

  describe(): string {
    return "steered test market over real candles";
  }
}
