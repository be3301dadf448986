// Indicator update time per new candle over the real BTC/USDT 2h candles: the streaming
// indicators (src/indicators/incremental.ts, O(1) per candle) against recomputing the same six
// indicators with technicalindicators over a 1,000-candle window for every new candle (what a
// stateless snapshot has to do). Also the 200-candle decision snapshot, both ways.
import { ATR, BollingerBands, EMA, MACD, RSI, SMA } from "technicalindicators";
import type { Candle } from "../src/domain/types.js";
import { Atr, Bollinger, Ema, Macd, Rsi, Sma } from "../src/indicators/incremental.js";
import { computeSnapshot, SnapshotStream } from "../src/indicators/snapshot.js";
import { loadCandles } from "../src/market/candles.js";
import { saveResults } from "./results.js";

const WINDOW = 1000;
const UPDATES = Number(process.env.BENCH_INDICATOR_UPDATES ?? 2000);

function recomputeWithLibrary(window: Candle[]): number {
  const values = window.map((c) => c.close);
  const high = window.map((c) => c.high);
  const low = window.map((c) => c.low);
  // The sum keeps the results alive so the work cannot be optimized away.
  return (
    SMA.calculate({ period: 20, values }).at(-1)! +
    SMA.calculate({ period: 50, values }).at(-1)! +
    EMA.calculate({ period: 12, values }).at(-1)! +
    RSI.calculate({ period: 14, values }).at(-1)! +
    MACD.calculate({ values, fastPeriod: 12, slowPeriod: 26, signalPeriod: 9, SimpleMAOscillator: false, SimpleMASignal: false }).at(-1)!.MACD! +
    BollingerBands.calculate({ period: 20, stdDev: 2, values }).at(-1)!.upper +
    ATR.calculate({ period: 14, high, low, close: values }).at(-1)!
  );
}

export async function benchIndicators(): Promise<Record<string, number>> {
  const candles = loadCandles(new URL("../../shared/data/ohlcv/BTC_USDT_2h.csv", import.meta.url).pathname);
  const start = WINDOW;
  const end = Math.min(candles.length, start + UPDATES);
  const n = end - start;

  let sink = 0;
  // Streaming: warm up over the window, then time the updates; run twice and keep the second so
  // the JIT's first compilation is not counted.
  const measureStreaming = (): { streamUs: number; replaceUs: number } => {
    const sma20 = new Sma(20), sma50 = new Sma(50), ema12 = new Ema(12), rsi = new Rsi(14), macd = new Macd(), bb = new Bollinger(), atr = new Atr(14);
    const push = (c: Candle) =>
      (sma20.push(c.close) ?? 0) + (sma50.push(c.close) ?? 0) + (ema12.push(c.close) ?? 0) + (rsi.push(c.close) ?? 0) +
      (macd.push(c.close)?.macd ?? 0) + (bb.push(c.close)?.upper ?? 0) + (atr.push(c) ?? 0);
    for (let i = 0; i < start; i++) push(candles[i]!);
    let t = performance.now();
    for (let i = start; i < end; i++) sink += push(candles[i]!);
    const streamUs = ((performance.now() - t) * 1000) / n;
    // The forming candle replaced: same cost as a push.
    t = performance.now();
    const last = candles[end - 1]!;
    for (let i = 0; i < n; i++) {
      const x = last.close * (1 + (i % 7) * 1e-4);
      sink += sma20.replace(x)! + sma50.replace(x)! + ema12.replace(x)! + rsi.replace(x)! + macd.replace(x)!.macd + bb.replace(x)!.upper + atr.replace({ ...last, close: x })!;
    }
    return { streamUs, replaceUs: ((performance.now() - t) * 1000) / n };
  };
  measureStreaming();
  const { streamUs, replaceUs } = measureStreaming();

  // Full recomputation over the last 1,000 candles, for each new candle.
  let t0 = performance.now();
  for (let i = start; i < end; i++) sink += recomputeWithLibrary(candles.slice(i - WINDOW + 1, i + 1));
  const fullUs = ((performance.now() - t0) * 1000) / n;

  // The decision snapshot: 200 candles, as runDecision computes it, and the streaming snapshot.
  t0 = performance.now();
  for (let i = start; i < end; i++) sink += computeSnapshot("BTC/USDT", candles.slice(i - 200, i)).sma20;
  const snapshot200Us = ((performance.now() - t0) * 1000) / n;
  t0 = performance.now();
  for (let i = start; i < end; i++) sink += recomputeWithLibrary(candles.slice(i - 200, i));
  const library200Us = ((performance.now() - t0) * 1000) / n;
  const stream = new SnapshotStream("BTC/USDT");
  for (let i = 0; i < start; i++) stream.push(candles[i]!);
  t0 = performance.now();
  for (let i = start; i < end; i++) {
    stream.push(candles[i]!);
    sink += stream.snapshot()!.sma20;
  }
  const streamSnapshotUs = ((performance.now() - t0) * 1000) / n;
  if (!Number.isFinite(sink)) throw new Error("benchmark produced a non-finite sum");

  const figures = {
    updates: n,
    window: WINDOW,
    streamingUsPerCandle: Number(streamUs.toFixed(3)),
    streamingReplaceUsPerTick: Number(replaceUs.toFixed(3)),
    technicalindicatorsFullWindowUsPerCandle: Number(fullUs.toFixed(1)),
    speedup: Number((fullUs / streamUs).toFixed(0)),
    decisionSnapshot200UsPerCall: Number(snapshot200Us.toFixed(1)),
    technicalindicators200UsPerCall: Number(library200Us.toFixed(1)),
    streamingSnapshotUsPerCandle: Number(streamSnapshotUs.toFixed(3)),
  };
  console.log(`indicators (SMA20, SMA50, EMA12, RSI14, MACD, Bollinger, ATR14) over ${n} real BTC/USDT 2h candles:`);
  console.log(`  streaming ${figures.streamingUsPerCandle} µs per new candle, ${figures.streamingReplaceUsPerTick} µs per forming-candle update`);
  console.log(`  technicalindicators recomputing a ${WINDOW}-candle window: ${figures.technicalindicatorsFullWindowUsPerCandle} µs per candle (${figures.speedup}x slower)`);
  console.log(`  decision snapshot from 200 candles ${figures.decisionSnapshot200UsPerCall} µs (technicalindicators over the same 200: ${figures.technicalindicators200UsPerCall} µs); streaming snapshot ${figures.streamingSnapshotUsPerCandle} µs per candle`);
  saveResults("indicators", figures);
  return figures;
}
