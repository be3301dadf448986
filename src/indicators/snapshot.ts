import { Atr, Bollinger, Macd, ReturnsStdDev, Rsi, Sma } from "./incremental.js";
import type { Candle, IndicatorSnapshot, MarketSymbol, Signal } from "../domain/types.js";

/** SMA50 needs 50 closes and MACD 26+9; 60 leaves a little room for the smoothed ones to settle. */
export const MIN_CANDLES = 60;
/** Older candles barely move the smoothed indicators, so computing over more only costs time. */
const WINDOW = 200;
const VOLATILITY_RETURNS = 20;

export const BULLISH_THRESHOLD = 0.25;
export const BEARISH_THRESHOLD = -0.25;

const sign = (x: number): number => (x > 0 ? 1 : x < 0 ? -1 : 0);

export interface ScoreInputs {
  price: number;
  sma20: number;
  sma50: number;
  rsi14: number;
  histogram: number;
  bollinger: { upper: number; lower: number };
}

/**
 * Signal score in [-1, 1], a weighted vote:
 *  - trend 0.40: price vs SMA20, price vs SMA50 and SMA20 vs SMA50, each +-1, averaged;
 *  - momentum 0.25: sign of the MACD histogram;
 *  - RSI 0.20: below 30 is oversold (+1), above 70 overbought (-1), else 0;
 *  - Bollinger 0.15: a close below the lower band counts +1 (stretched down), above the upper -1.
 * Trend and momentum dominate, so a strong trend stays bullish even when RSI calls it overbought.
 */
export function signalScore(x: ScoreInputs): number {
  const trend = (sign(x.price - x.sma20) + sign(x.price - x.sma50) + sign(x.sma20 - x.sma50)) / 3;
  const momentum = sign(x.histogram);
  const rsi = x.rsi14 < 30 ? 1 : x.rsi14 > 70 ? -1 : 0;
  const band = x.price < x.bollinger.lower ? 1 : x.price > x.bollinger.upper ? -1 : 0;
  const score = 0.4 * trend + 0.25 * momentum + 0.2 * rsi + 0.15 * band;
  // Rounded so that float noise cannot flip a signal sitting exactly on a threshold.
  return Math.max(-1, Math.min(1, Math.round(score * 1e6) / 1e6));
}

export function signalOf(score: number): Signal {
  return score >= BULLISH_THRESHOLD ? "bullish" : score <= BEARISH_THRESHOLD ? "bearish" : "neutral";
}

/**
 * The snapshot indicators of one symbol, kept up to date one candle at a time (O(1) per candle).
 * `push` adds a candle; `update` replaces the newest one when it has the same open time (a forming
 * candle that moved), else pushes. Feed it closed candles only and `snapshot()` is what a decision
 * sees; feed it the forming candle too and it shows the market as it is now.
 */
export class SnapshotStream {
  private readonly sma20 = new Sma(20);
  private readonly sma50 = new Sma(50);
  private readonly rsi14 = new Rsi(14);
  private readonly macd = new Macd(12, 26, 9);
  private readonly bb = new Bollinger(20, 2);
  private readonly atr14 = new Atr(14);
  private readonly vol = new ReturnsStdDev(VOLATILITY_RETURNS);
  private newest: Candle | undefined;
  private count = 0;

  constructor(readonly symbol: MarketSymbol) {}

  /** Candles seen, the newest counted once however often it was replaced. */
  get length(): number {
    return this.count;
  }

  get last(): Candle | undefined {
    return this.newest;
  }

  push(c: Candle): void {
    if (this.newest && c.time <= this.newest.time) {
      throw new Error(`SnapshotStream(${this.symbol}): candle ${new Date(c.time).toISOString()} is not newer than the last one`);
    }
    this.feed(c, "push");
    this.count++;
  }

  /** Replaces the newest candle if `c` has its open time (it was still forming), else pushes `c`. */
  update(c: Candle): void {
    if (this.newest && c.time === this.newest.time) this.feed(c, "replace");
    else this.push(c);
  }

  private feed(c: Candle, how: "push" | "replace"): void {
    this.newest = { ...c };
    this.sma20[how](c.close);
    this.sma50[how](c.close);
    this.rsi14[how](c.close);
    this.macd[how](c.close);
    this.bb[how](c.close);
    this.atr14[how](c);
    this.vol[how](c.close);
  }

  /** The indicators with the newest candle as the last one; undefined before MIN_CANDLES. */
  snapshot(): IndicatorSnapshot | undefined {
    const newest = this.newest;
    if (!newest || this.count < MIN_CANDLES) return undefined;
    const sma20 = this.sma20.value();
    const sma50 = this.sma50.value();
    const rsi14 = this.rsi14.value();
    const m = this.macd.value();
    const bb = this.bb.value();
    const atr14 = this.atr14.value();
    const volatility = this.vol.value();
    if (sma20 === undefined || sma50 === undefined || rsi14 === undefined || !m || !bb || atr14 === undefined || volatility === undefined) {
      return undefined;
    }
    const price = newest.close;
    const macd = { macd: m.macd, signal: m.signal ?? 0, histogram: m.histogram ?? 0 };
    const bollinger = { upper: bb.upper, middle: bb.middle, lower: bb.lower };
    const score = signalScore({ price, sma20, sma50, rsi14, histogram: macd.histogram, bollinger });
    return {
      symbol: this.symbol,
      candleTime: newest.time,
      price,
      sma20,
      sma50,
      rsi14,
      macd,
      bollinger,
      atr14,
      volatility,
      signal: signalOf(score),
      signalScore: score,
    };
  }
}

/**
 * Indicators over closed candles (oldest first); the last candle is the newest closed one. Only
 * the last 200 candles are read, so the answer is the same whatever history the caller has.
 */
export function computeSnapshot(symbol: MarketSymbol, closed: Candle[]): IndicatorSnapshot {
  if (closed.length < MIN_CANDLES) {
    throw new Error(`computeSnapshot(${symbol}): need at least ${MIN_CANDLES} closed candles, got ${closed.length}`);
  }
  const stream = new SnapshotStream(symbol);
  for (const c of closed.slice(-WINDOW)) stream.push(c);
  const s = stream.snapshot();
  if (!s) throw new Error(`computeSnapshot(${symbol}): indicators undefined after ${Math.min(WINDOW, closed.length)} candles`);
  return s;
}
