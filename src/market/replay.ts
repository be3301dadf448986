import { readdirSync } from "node:fs";
import { join, relative } from "node:path";
import type { Candle, MarketSymbol } from "../domain/types.js";
import { loadCandles } from "./candles.js";
import { UnknownSymbolError, type MarketData } from "./types.js";

/** Enough closed candles before the first "now" for SMA50, MACD 12/26/9 and ATR 14 to be defined. */
export const DEFAULT_WARMUP = 200;

const FILE_NAME = /^([A-Za-z0-9]+)_([A-Za-z0-9]+)_([0-9]+[smhdwM])\.csv$/;

export interface ReplayOptions {
  /** Folder of `BASE_QUOTE_TIMEFRAME.csv` files, e.g. data/ohlcv. */
  dir: string;
  /** Wall clock (epoch ms); injected so tests and demos can move time. */
  clock: () => number;
  /** Wall time at which the replay stands at candle `warmup`. */
  epoch: number;
  /** Wall-clock milliseconds per replayed candle (the candle's own length for real time, less to fast-forward). */
  stepMs: number;
  warmup?: number;
  /** Only load files of this timeframe (e.g. "2h"); needed when a folder holds several per symbol. */
  timeframe?: string;
}

interface Series {
  timeframe: string;
  candles: Candle[];
}

/**
 * Plays recorded candles back as if they were live. Wall time since `epoch` picks the "current"
 * candle; everything before it is closed history. Each symbol plays its own file from its own
 * start, because the files cover different dates.
 */
export class ReplayMarketData implements MarketData {
  readonly kind = "replay" as const;
  private readonly series = new Map<MarketSymbol, Series>();
  private readonly clock: () => number;
  private readonly epoch: number;
  private readonly stepMs: number;
  private readonly warmup: number;
  private readonly dirLabel: string;

  constructor(opts: ReplayOptions) {
    if (!(opts.stepMs > 0)) throw new Error(`ReplayMarketData: stepMs must be positive, got ${opts.stepMs}`);
    this.clock = opts.clock;
    this.epoch = opts.epoch;
    this.stepMs = opts.stepMs;
    this.warmup = Math.max(0, Math.floor(opts.warmup ?? DEFAULT_WARMUP));
    this.dirLabel = relative(process.cwd(), opts.dir) || opts.dir;

    for (const file of readdirSync(opts.dir).sort()) {
      const m = FILE_NAME.exec(file);
      if (!m) continue;
      const base = m[1]!.toUpperCase();
      const quote = m[2]!.toUpperCase();
      const timeframe = m[3]!;
      if (opts.timeframe !== undefined && timeframe !== opts.timeframe) continue;
      const symbol = `${base}/${quote}`;
      const existing = this.series.get(symbol);
      if (existing) {
        throw new Error(
          `ReplayMarketData: ${opts.dir} has ${symbol} in ${existing.timeframe} and ${timeframe}; pass the timeframe option`,
        );
      }
      const candles = loadCandles(join(opts.dir, file));
      if (candles.length === 0) throw new Error(`ReplayMarketData: ${file} has no candles`);
      this.series.set(symbol, { timeframe, candles });
    }
    if (this.series.size === 0) throw new Error(`ReplayMarketData: no BASE_QUOTE_TIMEFRAME.csv files in ${opts.dir}`);
  }

  symbols(): MarketSymbol[] {
    return [...this.series.keys()];
  }

  /** Index of the current (forming) candle of `symbol` in its file. */
  index(symbol: MarketSymbol): number {
    const { candles } = this.get(symbol);
    const last = candles.length - 1;
    // Before the epoch the replay waits at its first "now"; after the last candle it stays there.
    const elapsed = Math.max(0, Math.floor((this.clock() - this.epoch) / this.stepMs));
    return Math.min(Math.min(this.warmup, last) + elapsed, last);
  }

  /** The forming candle: its high/low tell whether a stop or target was touched during it. */
  currentCandle(symbol: MarketSymbol): Candle {
    const { candles } = this.get(symbol);
    return { ...candles[this.index(symbol)]! };
  }

  /** True once `symbol` has reached its last recorded candle. */
  ended(symbol: MarketSymbol): boolean {
    return this.index(symbol) === this.get(symbol).candles.length - 1;
  }

  async closedCandles(symbol: MarketSymbol, limit: number): Promise<Candle[]> {
    const { candles } = this.get(symbol);
    const end = this.index(symbol);
    const n = Math.max(0, Math.floor(limit));
    return candles.slice(Math.max(0, end - n), end).map((c) => ({ ...c }));
  }

  async lastPrice(symbol: MarketSymbol): Promise<number> {
    return this.currentCandle(symbol).open;
  }

  describe(): string {
    const timeframes = [...new Set([...this.series.values()].map((s) => s.timeframe))].join("/");
    const head = `replay of real Binance ${timeframes} candles (${this.dirLabel})`;
    const syms = this.symbols();
    if (syms.every((s) => this.ended(s))) return `${head}, replay ended (market stays at its last candles)`;
    const first = syms[0]!;
    const position = `candle ${this.index(first) + 1}/${this.get(first).candles.length} of ${first}`;
    const ended = syms.filter((s) => this.ended(s));
    return ended.length > 0 ? `${head}, ${position}; replay ended for ${ended.join(", ")}` : `${head}, ${position}`;
  }

  private get(symbol: MarketSymbol): Series {
    const s = this.series.get(symbol);
    if (!s) throw new UnknownSymbolError(symbol, this.symbols());
    return s;
  }
}

/** Maps "btc", "BTC", "btcusdt", "BTC-USDT", "btc_usdt" or "BTC/USDT" to a served symbol, if any. */
export function normalizeSymbol(input: string, known: MarketSymbol[]): MarketSymbol | undefined {
  const text = input.trim().toUpperCase();
  if (text === "") return undefined;
  const parts = text.split(/[/\-_: ]+/).filter(Boolean);
  if (parts.length === 2) {
    const wanted = `${parts[0]}/${parts[1]}`;
    return known.find((k) => k.toUpperCase() === wanted);
  }
  if (parts.length !== 1) return undefined;
  const joined = known.find((k) => k.toUpperCase().replace("/", "") === text);
  if (joined) return joined;
  // A bare base asset: prefer the USDT pair when several quotes are served.
  const byBase = known.filter((k) => k.toUpperCase().split("/")[0] === text);
  return byBase.find((k) => k.toUpperCase().endsWith("/USDT")) ?? byBase[0];
}
