// The streaming indicators against technicalindicators 3.1.0 over the whole real BTC/USDT 2h
// history (35,123 candles), every output value, to the tolerances stated in docs/markets.md.
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { ATR, BollingerBands, EMA, MACD, RSI, SMA } from "technicalindicators";
import { describe, expect, it } from "vitest";
import { Atr, Bollinger, Ema, Macd, Rsi, Sma } from "../src/indicators/incremental.js";
import { computeSnapshot, SnapshotStream } from "../src/indicators/snapshot.js";
import { loadCandles } from "../src/market/candles.js";

const SHARED = fileURLToPath(new URL("../../shared/data/ohlcv/", import.meta.url));
const btc = loadCandles(join(SHARED, "BTC_USDT_2h.csv"));
const closes = btc.map((c) => c.close);
const highs = btc.map((c) => c.high);
const lows = btc.map((c) => c.low);

/** Largest relative difference between our series (aligned on the last value) and the reference. */
function worst(ours: (number | undefined)[], reference: number[]): { rel: number; abs: number } {
  const defined = ours.filter((v): v is number => v !== undefined);
  expect(defined.length).toBe(reference.length);
  let rel = 0;
  let abs = 0;
  for (let i = 0; i < reference.length; i++) {
    const d = Math.abs(defined[i]! - reference[i]!);
    abs = Math.max(abs, d);
    rel = Math.max(rel, d / Math.max(1e-12, Math.abs(reference[i]!)));
  }
  return { rel, abs };
}

// Stated tolerances (docs/markets.md). Relative to the value for price-like outputs; RSI is
// compared in RSI points because the library rounds it to 2 decimals.
const PRICE_REL = 1e-9;
const RSI_POINTS = 0.005 + 1e-9;

describe("streaming indicators match technicalindicators over the full BTC history", () => {
  it(`uses the real history (${btc.length} candles)`, () => {
    expect(btc.length).toBe(35_123);
  });

  it("SMA 20 and 50", () => {
    for (const period of [20, 50]) {
      const s = new Sma(period);
      const ours = closes.map((c) => s.push(c));
      expect(worst(ours, SMA.calculate({ period, values: closes })).rel).toBeLessThan(PRICE_REL);
    }
  });

  it("EMA 12 and 26", () => {
    for (const period of [12, 26]) {
      const e = new Ema(period);
      const ours = closes.map((c) => e.push(c));
      expect(worst(ours, EMA.calculate({ period, values: closes })).rel).toBeLessThan(PRICE_REL);
    }
  });

  it("RSI 14 (the library rounds to 2 decimals; ours does not)", () => {
    const r = new Rsi(14);
    const ours = closes.map((c) => r.push(c));
    const { abs } = worst(ours, RSI.calculate({ period: 14, values: closes }));
    expect(abs).toBeLessThanOrEqual(RSI_POINTS);
    // and ours is not rounded
    expect(ours.some((v) => v !== undefined && Math.abs(v * 100 - Math.round(v * 100)) > 1e-6)).toBe(true);
  });

  it("MACD 12/26/9: line, signal and histogram", () => {
    const m = new Macd(12, 26, 9);
    const ours = closes.map((c) => m.push(c));
    const ref = MACD.calculate({ values: closes, fastPeriod: 12, slowPeriod: 26, signalPeriod: 9, SimpleMAOscillator: false, SimpleMASignal: false });
    expect(ours.filter((v) => v !== undefined)).toHaveLength(ref.length);
    const defined = ours.filter((v) => v !== undefined);
    let worstAbs = 0;
    for (let i = 0; i < ref.length; i++) {
      const o = defined[i]!;
      const r = ref[i]!;
      worstAbs = Math.max(worstAbs, Math.abs(o.macd - r.MACD!));
      expect(o.signal === undefined).toBe(r.signal === undefined);
      if (o.signal !== undefined) worstAbs = Math.max(worstAbs, Math.abs(o.signal - r.signal!), Math.abs(o.histogram! - r.histogram!));
    }
    // MACD is a difference of prices: the tolerance is relative to the price (BTC up to ~124,000).
    expect(worstAbs).toBeLessThan(PRICE_REL * 130_000);
  });

  it("Bollinger 20, 2 standard deviations", () => {
    const b = new Bollinger(20, 2);
    const ours = closes.map((c) => b.push(c));
    const ref = BollingerBands.calculate({ period: 20, stdDev: 2, values: closes });
    expect(worst(ours.map((v) => v?.upper), ref.map((r) => r.upper)).rel).toBeLessThan(PRICE_REL);
    expect(worst(ours.map((v) => v?.middle), ref.map((r) => r.middle)).rel).toBeLessThan(PRICE_REL);
    expect(worst(ours.map((v) => v?.lower), ref.map((r) => r.lower)).rel).toBeLessThan(PRICE_REL);
  });

  it("ATR 14", () => {
    const a = new Atr(14);
    const ours = btc.map((c) => a.push(c));
    const ref = ATR.calculate({ period: 14, high: highs, low: lows, close: closes });
    expect(worst(ours, ref).rel).toBeLessThan(PRICE_REL);
  });
});

describe("the forming candle", () => {
  it("can be replaced any number of times without disturbing the committed state", () => {
    const replaced = new SnapshotStream("BTC/USDT");
    const clean = new SnapshotStream("BTC/USDT");
    const slice = btc.slice(1000, 1400);
    for (const c of slice) {
      // the candle forms in three ticks before it closes at its real values
      replaced.update({ ...c, high: c.open, low: c.open, close: c.open });
      replaced.update({ ...c, close: (c.open + c.close) / 2, high: Math.max(c.open, (c.open + c.close) / 2) });
      replaced.update(c);
      clean.push(c);
      expect(replaced.snapshot()).toEqual(clean.snapshot());
    }
    expect(replaced.length).toBe(slice.length);
  });

  it("refuses a candle older than the newest", () => {
    const s = new SnapshotStream("BTC/USDT");
    s.push(btc[5]!);
    expect(() => s.push(btc[4]!)).toThrow(/not newer/);
  });

  it("a streamed snapshot equals the 200-candle snapshot within the smoothing residue", () => {
    const stream = new SnapshotStream("BTC/USDT");
    for (const c of btc.slice(0, 20_000)) stream.push(c);
    const streamed = stream.snapshot()!;
    const windowed = computeSnapshot("BTC/USDT", btc.slice(0, 20_000));
    expect(streamed.sma20).toBeCloseTo(windowed.sma20, 6);
    expect(streamed.sma50).toBeCloseTo(windowed.sma50, 6);
    // EMA/Wilder state older than 200 candles decays below 1e-5 of a price
    expect(Math.abs(streamed.rsi14 - windowed.rsi14)).toBeLessThan(1e-3);
    expect(Math.abs(streamed.atr14 - windowed.atr14) / windowed.atr14).toBeLessThan(1e-4);
    expect(Math.abs(streamed.macd.macd - windowed.macd.macd)).toBeLessThan(1e-2);
    expect(streamed.signal).toBe(windowed.signal);
  });
});
