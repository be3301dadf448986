import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import type { Candle } from "../src/domain/types.js";
import { computeSnapshot, MIN_CANDLES, signalOf, signalScore } from "../src/indicators/snapshot.js";
import { loadCandles } from "../src/market/candles.js";

const SHIPPED = fileURLToPath(new URL("../data/ohlcv/", import.meta.url));
const SHARED = fileURLToPath(new URL("../../shared/data/ohlcv/", import.meta.url));
const btc = loadCandles(join(SHIPPED, "BTC_USDT_2h.csv"));
const doge = loadCandles(join(SHIPPED, "DOGE_USDT_2h.csv"));

const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
const popStd = (xs: number[]) => {
  const m = mean(xs);
  return Math.sqrt(mean(xs.map((x) => (x - m) ** 2)));
};

/** Wilder's RSI, written out independently of the library. */
function wilderRsi(closes: number[], period = 14): number {
  let gain = 0;
  let loss = 0;
  for (let i = 1; i <= period; i++) {
    const d = closes[i]! - closes[i - 1]!;
    gain += Math.max(d, 0);
    loss += Math.max(-d, 0);
  }
  gain /= period;
  loss /= period;
  for (let i = period + 1; i < closes.length; i++) {
    const d = closes[i]! - closes[i - 1]!;
    gain = (gain * (period - 1) + Math.max(d, 0)) / period;
    loss = (loss * (period - 1) + Math.max(-d, 0)) / period;
  }
  return loss === 0 ? 100 : 100 - 100 / (1 + gain / loss);
}

function series(closes: number[]): Candle[] {
  return closes.map((close, i) => ({
    time: Date.UTC(2025, 0, 1) + i * 7_200_000,
    open: i === 0 ? close : closes[i - 1]!,
    high: Math.max(close, i === 0 ? close : closes[i - 1]!) * 1.001,
    low: Math.min(close, i === 0 ? close : closes[i - 1]!) * 0.999,
    close,
    volume: 1,
  }));
}

describe("computeSnapshot on real candles", () => {
  // A few places in the BTC slice, so a lucky coincidence cannot pass the test.
  it.each([300, 1234, 2999])("matches hand-computed values for BTC closes up to %i", (end) => {
    const closed = btc.slice(0, end);
    const closes = closed.map((c) => c.close);
    const s = computeSnapshot("BTC/USDT", closed);

    expect(s.symbol).toBe("BTC/USDT");
    expect(s.candleTime).toBe(closed.at(-1)!.time);
    expect(s.price).toBe(closed.at(-1)!.close);
    expect(s.sma20).toBeCloseTo(mean(closes.slice(-20)), 6);
    expect(s.sma50).toBeCloseTo(mean(closes.slice(-50)), 6);
    expect(s.bollinger.middle).toBeCloseTo(s.sma20, 6);
    expect(s.bollinger.upper - s.bollinger.middle).toBeCloseTo(2 * popStd(closes.slice(-20)), 4);
    expect(s.bollinger.middle - s.bollinger.lower).toBeCloseTo(2 * popStd(closes.slice(-20)), 4);
    expect(s.rsi14).toBeGreaterThanOrEqual(0);
    expect(s.rsi14).toBeLessThanOrEqual(100);
    // The library rounds RSI to 2 decimals; it sees the last 200 candles.
    expect(Math.abs(s.rsi14 - wilderRsi(closes.slice(-200)))).toBeLessThanOrEqual(0.006);
    expect(s.macd.histogram).toBeCloseTo(s.macd.macd - s.macd.signal, 6);
    expect(s.atr14).toBeGreaterThan(0);
    expect(s.atr14).toBeLessThan(Math.max(...closed.slice(-14).map((c) => c.high - c.low)) * 1.5);

    const tail = closes.slice(-21);
    const returns = tail.slice(1).map((c, i) => c / tail[i]! - 1);
    expect(s.volatility).toBeCloseTo(popStd(returns), 10);

    expect(s.signalScore).toBeGreaterThanOrEqual(-1);
    expect(s.signalScore).toBeLessThanOrEqual(1);
    expect(s.signal).toBe(signalOf(s.signalScore));
  });

  it("works on DOGE's small prices and on the shared ETH file", () => {
    const d = computeSnapshot("DOGE/USDT", doge);
    expect(d.price).toBe(doge.at(-1)!.close);
    expect(d.sma20).toBeCloseTo(mean(doge.slice(-20).map((c) => c.close)), 10);
    const eth = loadCandles(join(SHARED, "ETH_USDT_2h.csv"));
    const e = computeSnapshot("ETH/USDT", eth.slice(0, 61));
    expect(e.sma50).toBeCloseTo(mean(eth.slice(11, 61).map((c) => c.close)), 6);
  });

  it("only looks at the last 200 candles of a long history (its speed is bench/indicators.ts's to measure)", () => {
    const full = loadCandles(join(SHARED, "BTC_USDT_2h.csv"));
    // The EMAs behind MACD would differ if anything before the window were read.
    expect(computeSnapshot("BTC/USDT", full)).toEqual(computeSnapshot("BTC/USDT", full.slice(-200)));
  });

  it("refuses too short a history with a clear error", () => {
    expect(MIN_CANDLES).toBe(60);
    expect(() => computeSnapshot("BTC/USDT", btc.slice(0, MIN_CANDLES - 1))).toThrow(/at least 60 closed candles, got 59/);
    expect(() => computeSnapshot("BTC/USDT", btc.slice(0, MIN_CANDLES))).not.toThrow();
  });
});

describe("signal score", () => {
  it("calls an accelerating climb bullish and an accelerating slide bearish", () => {
    // Accelerating, so the MACD histogram keeps the trend's sign; a little wobble keeps RSI below 100.
    const path = (dir: number) =>
      Array.from({ length: 120 }, (_, i) => 100 * Math.exp(dir * 0.00004 * i * i) * (1 + 0.01 * Math.sin(i * 1.3)));
    const up = computeSnapshot("X/USDT", series(path(1)));
    const down = computeSnapshot("X/USDT", series(path(-1)));
    expect(up.signal).toBe("bullish");
    expect(up.signalScore).toBeGreaterThan(0.25);
    expect(down.signal).toBe("bearish");
    expect(down.signalScore).toBeLessThan(-0.25);
  });

  it("weighs trend, momentum, RSI and Bollinger position", () => {
    const calm = { price: 100, sma20: 100, sma50: 100, rsi14: 50, histogram: 0, bollinger: { upper: 110, lower: 90 } };
    expect(signalScore(calm)).toBe(0);
    expect(signalScore({ ...calm, price: 105, sma20: 102, histogram: 1 })).toBeCloseTo(0.4 + 0.25, 9);
    expect(signalScore({ ...calm, rsi14: 25 })).toBeCloseTo(0.2, 9);
    expect(signalScore({ ...calm, rsi14: 75 })).toBeCloseTo(-0.2, 9);
    expect(signalScore({ ...calm, price: 80 })).toBeCloseTo(-0.4 * (2 / 3) + 0.15, 5);
    expect(signalScore({ price: 50, sma20: 90, sma50: 100, rsi14: 80, histogram: -3, bollinger: { upper: 120, lower: 60 } })).toBeCloseTo(
      -0.4 - 0.25 - 0.2 + 0.15,
      5,
    );
  });

  it("uses the documented thresholds", () => {
    expect(signalOf(0.25)).toBe("bullish");
    expect(signalOf(0.2499)).toBe("neutral");
    expect(signalOf(-0.25)).toBe("bearish");
    expect(signalOf(-0.2499)).toBe("neutral");
  });
});
