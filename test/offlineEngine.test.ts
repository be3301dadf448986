import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import type { Decision, IndicatorSnapshot, Position } from "../src/domain/types.js";
import { decideOffline, OFFLINE_MODEL_ID, OFFLINE_RULES } from "../src/engine/offlineEngine.js";
import { computeSnapshot } from "../src/indicators/snapshot.js";
import { loadCandles } from "../src/market/candles.js";

const SHIPPED = fileURLToPath(new URL("../data/ohlcv/", import.meta.url));
const limits = { maxPositionPct: 20, defaultStopLossPct: 3, defaultTakeProfitPct: 6 };

const bullish: IndicatorSnapshot = {
  symbol: "BTC/USDT",
  candleTime: Date.UTC(2025, 5, 1),
  price: 64_210,
  sma20: 63_900,
  sma50: 61_200,
  rsi14: 58,
  macd: { macd: 400, signal: 280, histogram: 120 },
  bollinger: { upper: 65_500, middle: 63_900, lower: 62_300 },
  atr14: 900,
  volatility: 0.01,
  signal: "bullish",
  signalScore: 0.65,
};
const bearish: IndicatorSnapshot = {
  ...bullish,
  price: 60_100,
  sma20: 61_500,
  sma50: 62_800,
  rsi14: 38,
  macd: { macd: -300, signal: -150, histogram: -150 },
  signal: "bearish",
  signalScore: -0.65,
};
const neutral: IndicatorSnapshot = {
  ...bullish,
  price: 63_000,
  sma20: 63_100,
  sma50: 62_900,
  rsi14: 49,
  macd: { macd: 10, signal: 5, histogram: 5 },
  signal: "neutral",
  signalScore: 0.1,
};
const held: Position = {
  symbol: "BTC/USDT",
  side: "long",
  qty: 0.1,
  entryPrice: 62_000,
  stopLoss: 60_000,
  takeProfit: 66_000,
  openedAt: Date.UTC(2025, 4, 30),
};

function wellFormed(d: Decision): void {
  expect(d.reasons.length).toBeGreaterThanOrEqual(1);
  expect(d.reasons.length).toBeLessThanOrEqual(4);
  for (const r of d.reasons) expect(r.trim().length).toBeGreaterThan(5);
  expect(d.confidence).toBeGreaterThanOrEqual(0);
  expect(d.confidence).toBeLessThanOrEqual(1);
  expect(d.sizePct).toBeGreaterThanOrEqual(0);
  expect(d.sizePct).toBeLessThanOrEqual(limits.maxPositionPct);
}

describe("decideOffline", () => {
  it("has a stable model id", () => {
    expect(OFFLINE_MODEL_ID).toBe("offline-engine");
  });

  it("the rules picked on 2017-2021 (docs/evaluation.md)", () => {
    expect(OFFLINE_RULES).toEqual({ stopAtr: 4, targetR: 6, volTarget: 0.005, maxEntryRsi: 75, slowExit: false });
  });

  it("buys an uptrend with momentum when flat: volatility-targeted size, 4 ATR stop, 6x target", () => {
    const d = decideOffline(bullish, undefined, limits);
    wellFormed(d);
    expect(d.action).toBe("buy");
    expect(d.symbol).toBe("BTC/USDT");
    // Volatility 1% per candle against 0.5% targeted: half the largest position.
    expect(d.sizePct).toBeCloseTo(20 * 0.5, 6);
    const atrStop = (4 * 900 * 100) / 64_210; // 5.61%
    expect(d.stopLossPct).toBeCloseTo(atrStop, 2);
    expect(d.takeProfitPct).toBeCloseTo(6 * d.stopLossPct!, 6);
    expect(d.confidence).toBeCloseTo(0.5 + 0.65 / 2, 3);
    expect(d.reasons.join(" ")).toContain("64,210");
    expect(d.reasons.join(" ")).toContain("SMA20 63,900");
    expect(d.reasons.join(" ")).toMatch(/uptrend/);
    expect(d.reasons.join(" ")).toMatch(/RSI 58 \(neutral\)/);
    expect(d.reasons.join(" ")).toMatch(/MACD histogram \+120 \(momentum up\)/);
  });

  it("clamps the ATR stop to [1, 2 x default] and caps the size at maxPositionPct", () => {
    const wild = decideOffline({ ...bullish, atr14: 10_000, volatility: 0.02 }, undefined, limits);
    expect(wild.stopLossPct).toBe(6);
    expect(wild.takeProfitPct).toBe(36);
    expect(wild.sizePct).toBe(5); // 0.5% / 2%: a quarter of the largest
    const calm = decideOffline({ ...bullish, atr14: 50, volatility: 0.003 }, undefined, limits);
    expect(calm.stopLossPct).toBe(1);
    expect(calm.takeProfitPct).toBe(6);
    expect(calm.sizePct).toBe(20); // calmer than targeted: the largest, never more
    const noAtr = decideOffline({ ...bullish, atr14: 0 }, undefined, limits);
    expect(noAtr.stopLossPct).toBe(3);
    expect(noAtr.takeProfitPct).toBe(6);
  });

  it("closes a held position when the snapshot turns bearish", () => {
    const d = decideOffline(bearish, held, limits);
    wellFormed(d);
    expect(d.action).toBe("close");
    expect(d.reasons.join(" ")).toMatch(/downtrend/);
    expect(d.reasons.join(" ")).toMatch(/62,000/);
    expect(d.confidence).toBeCloseTo(0.825, 3);
  });

  it("holds when neutral, with or without a position", () => {
    for (const position of [undefined, held]) {
      const d = decideOffline(neutral, position, limits);
      wellFormed(d);
      expect(d.action).toBe("hold");
      expect(d.sizePct).toBe(0);
      expect(d.confidence).toBeCloseTo(0.9, 3);
      expect(d.reasons.join(" ")).toMatch(/mixed trend/);
    }
  });

  it("keeps a position while bullish and stays out while bearish (long-only)", () => {
    expect(decideOffline(bullish, held, limits).action).toBe("hold");
    expect(decideOffline(bearish, undefined, limits).action).toBe("hold");
  });

  it("asks more to enter than to stay: a mixed trend neither buys nor sells", () => {
    // Price under SMA20 but over SMA50: no entry, and no exit (the trend is not broken).
    const mixed = { ...bullish, price: 62_000, signal: "bullish" as const };
    expect(decideOffline(mixed, undefined, limits).action).toBe("hold");
    expect(decideOffline(mixed, held, limits).action).toBe("hold");
    // Price under SMA50 while SMA20 is still above it: held on, not yet broken.
    expect(decideOffline({ ...bullish, price: 61_000 }, held, limits).action).toBe("hold");
    // No momentum (MACD histogram under 0): no entry in an otherwise up market.
    expect(decideOffline({ ...bullish, macd: { macd: 100, signal: 150, histogram: -50 } }, undefined, limits).action).toBe("hold");
  });

  it("does not buy a stretched market (RSI over 75)", () => {
    const d = decideOffline({ ...bullish, rsi14: 81 }, undefined, limits);
    expect(d.action).toBe("hold");
    expect(d.reasons.at(-1)).toMatch(/RSI 81 is over 75/);
  });

  it("is deterministic", () => {
    for (const [s, p] of [
      [bullish, undefined],
      [bearish, held],
      [neutral, held],
    ] as const) {
      expect(decideOffline(s, p, limits)).toEqual(decideOffline(structuredClone(s), p && { ...p }, { ...limits }));
    }
  });

  it("makes well-formed decisions all along the real BTC and DOGE candles", () => {
    const seen = new Set<string>();
    for (const file of ["BTC_USDT_2h.csv", "DOGE_USDT_2h.csv"]) {
      const candles = loadCandles(join(SHIPPED, file));
      for (let end = 200; end <= candles.length; end += 25) {
        const s = computeSnapshot(file.slice(0, -7).replace("_", "/"), candles.slice(0, end));
        for (const p of [undefined, { ...held, symbol: s.symbol, entryPrice: s.price }]) {
          const d = decideOffline(s, p, limits);
          wellFormed(d);
          seen.add(d.action);
          if (d.action === "buy") {
            expect(d.stopLossPct!).toBeGreaterThanOrEqual(1);
            expect(d.stopLossPct!).toBeLessThanOrEqual(6);
            expect(d.takeProfitPct).toBeCloseTo(6 * d.stopLossPct!, 6);
          }
          expect(d.reasons.join(" ")).not.toMatch(/NaN|undefined|Infinity/);
        }
      }
    }
    // Real markets go up and down, so the engine must have used every action it has.
    expect([...seen].sort()).toEqual(["buy", "close", "hold"]);
  });
});
