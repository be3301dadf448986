import { ATR, BollingerBands, MACD, RSI, SMA } from "technicalindicators";
import type { Candle, IndicatorSnapshot, MarketSymbol, Signal } from "../domain/types.js";

/** SMA50 needs 50 closes and MACD 26+9; 60 leaves a little room for the smoothed ones to settle. */
export const MIN_CANDLES = 60;
/** Older candles barely move the smoothed indicators, so computing over more only costs time. */
const WINDOW = 200;
const VOLATILITY_RETURNS = 20;

export const BULLISH_THRESHOLD = 0.25;
export const BEARISH_THRESHOLD = -0.25;

function last<T>(values: T[], what: string): T {
  const v = values[values.length - 1];
  if (v === undefined) throw new Error(`computeSnapshot: ${what} produced no value`);
  return v;
}

/** Population standard deviation of simple close-to-close returns, as a fraction. */
function returnsStdDev(closes: number[], count: number): number {
  const tail = closes.slice(-(count + 1));
  const returns: number[] = [];
  for (let i = 1; i < tail.length; i++) returns.push(tail[i]! / tail[i - 1]! - 1);
  const mean = returns.reduce((a, b) => a + b, 0) / returns.length;
  const variance = returns.reduce((a, r) => a + (r - mean) ** 2, 0) / returns.length;
  return Math.sqrt(variance);
}

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

/** Indicators over closed candles (oldest first); the last candle is the newest closed one. */
export function computeSnapshot(symbol: MarketSymbol, closed: Candle[]): IndicatorSnapshot {
  if (closed.length < MIN_CANDLES) {
    throw new Error(`computeSnapshot(${symbol}): need at least ${MIN_CANDLES} closed candles, got ${closed.length}`);
  }
  const candles = closed.slice(-WINDOW);
  const closes = candles.map((c) => c.close);
  const newest = candles[candles.length - 1]!;
  const price = newest.close;

  const sma20 = last(SMA.calculate({ period: 20, values: closes }), "SMA20");
  const sma50 = last(SMA.calculate({ period: 50, values: closes }), "SMA50");
  const rsi14 = last(RSI.calculate({ period: 14, values: closes }), "RSI14");
  const macdOut = last(
    MACD.calculate({
      values: closes,
      fastPeriod: 12,
      slowPeriod: 26,
      signalPeriod: 9,
      SimpleMAOscillator: false,
      SimpleMASignal: false,
    }),
    "MACD",
  );
  const bb = last(BollingerBands.calculate({ period: 20, stdDev: 2, values: closes }), "Bollinger");
  const atr14 = last(
    ATR.calculate({
      period: 14,
      high: candles.map((c) => c.high),
      low: candles.map((c) => c.low),
      close: closes,
    }),
    "ATR14",
  );

  const macd = {
    macd: macdOut.MACD ?? 0,
    signal: macdOut.signal ?? 0,
    histogram: macdOut.histogram ?? 0,
  };
  const bollinger = { upper: bb.upper, middle: bb.middle, lower: bb.lower };
  const score = signalScore({ price, sma20, sma50, rsi14, histogram: macd.histogram, bollinger });

  return {
    symbol,
    candleTime: newest.time,
    price,
    sma20,
    sma50,
    rsi14,
    macd,
    bollinger,
    atr14,
    volatility: returnsStdDev(closes, VOLATILITY_RETURNS),
    signal: signalOf(score),
    signalScore: score,
  };
}
