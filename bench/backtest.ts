// A full offline backtest of the real BTC/USDT 2h history (35,000+ candles): wall time and candles
// per second. Also what one decision costs through @daydreamsai/core on a 300-candle sample,
// which is why the offline engine is called directly in a backtest.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Redis } from "ioredis";
import { runBacktest } from "../src/backtest/engine.js";
import { offlineDirect, standInModel, throughAgent } from "../src/backtest/models.js";
import { loadConfig } from "../src/config/config.js";
import { loadCandles } from "../src/market/candles.js";
import { ensureRedis } from "../src/redis/ensureRedis.js";
import { summarize, walkForward, yearlyPeriods } from "../src/backtest/walkForward.js";
import { freePort, saveResults } from "./results.js";

export async function benchBacktest(): Promise<Record<string, number>> {
  const loaded = loadConfig({});
  if (!loaded.ok) throw new Error(loaded.message);
  const config = loaded.config;
  const candles = loadCandles(new URL("../../shared/data/ohlcv/BTC_USDT_2h.csv", import.meta.url).pathname);
  const dataDir = mkdtempSync(join(tmpdir(), "bench-backtest-"));
  // A private Redis on its own port, as npm run backtest starts one.
  const server = await ensureRedis({ url: `redis://127.0.0.1:${await freePort()}`, autostart: true, dataDir });
  const redis = new Redis(server.url, { maxRetriesPerRequest: null });
  const common = {
    symbol: "BTC/USDT",
    timeframe: "2h",
    candles,
    limits: config.risk,
    feeRate: config.exchange.feeRate,
    slippageBps: config.exchange.slippageBps,
    startingCash: config.exchange.paperStartUsdt,
    redis,
  };
  try {
    await redis.flushdb();
    const t0 = performance.now();
    const full = await runBacktest({ ...common, from: 0, to: Date.now(), model: offlineDirect() });
    const wallS = (performance.now() - t0) / 1000;

    await redis.flushdb();
    const sampleFrom = candles[20_000]!.time;
    const sampleTo = candles[20_299]!.time;
    const direct = await runBacktest({ ...common, from: sampleFrom, to: sampleTo, model: offlineDirect() });
    await redis.flushdb();
    const viaCore = await throughAgent({ id: "offline-engine", pricePerCallUsdc: 0, route: "offline", path: "bench", model: standInModel("offline-engine") });
    const core = await runBacktest({ ...common, from: sampleFrom, to: sampleTo, model: viaCore });
    await viaCore.close();

    const figures = {
      candles: full.report.candles,
      wallSeconds: Number(wallS.toFixed(2)),
      candlesPerSecond: Math.round(full.report.candles / wallS),
      orders: full.report.strategy.orders,
      trades: full.report.strategy.trades,
      sampleCandles: direct.report.candles,
      directMsPerCandle: Number((direct.report.wallTimeMs / direct.report.candles).toFixed(3)),
      throughCoreMsPerCandle: Number((core.report.wallTimeMs / core.report.candles).toFixed(3)),
      sameDecisionsThroughCore: Number(JSON.stringify(core.curves.strategy) === JSON.stringify(direct.curves.strategy)),
    };
    console.log(`backtest (offline engine, real BTC/USDT 2h, ${figures.candles} candles, one decision per candle):`);
    console.log(`  ${figures.wallSeconds} s wall, ${figures.candlesPerSecond} candles/s; ${figures.orders} orders, ${figures.trades} round trips`);
    console.log(`  per candle on a ${figures.sampleCandles}-candle sample: ${figures.directMsPerCandle} ms direct, ${figures.throughCoreMsPerCandle} ms through @daydreamsai/core (same decisions: ${figures.sameDecisionsThroughCore ? "yes" : "NO"})`);
    saveResults("backtest", figures);
    return figures;
  } finally {
    await redis.quit();
    await server.stop();
    rmSync(dataDir, { recursive: true, force: true });
  }
}

/**
 * The walk-forward run docs/evaluation.md shows: the offline engine on each year of the real
 * BTC/USDT 2h history, one fresh account per year, with every baseline. Wall time for all of it.
 */
export async function benchWalkForward(): Promise<Record<string, number>> {
  const loaded = loadConfig({});
  if (!loaded.ok) throw new Error(loaded.message);
  const config = loaded.config;
  const candles = loadCandles(new URL("../../shared/data/ohlcv/BTC_USDT_2h.csv", import.meta.url).pathname);
  const dataDir = mkdtempSync(join(tmpdir(), "bench-walkforward-"));
  const server = await ensureRedis({ url: `redis://127.0.0.1:${await freePort()}`, autostart: true, dataDir });
  const redis = new Redis(server.url, { maxRetriesPerRequest: null });
  try {
    const periods = yearlyPeriods(candles);
    const t0 = performance.now();
    const wf = await walkForward(
      { symbol: "BTC/USDT", timeframe: "2h", candles, model: offlineDirect(), limits: config.risk, feeRate: config.exchange.feeRate, slippageBps: config.exchange.slippageBps, startingCash: config.exchange.paperStartUsdt, redis },
      periods,
    );
    const wallS = (performance.now() - t0) / 1000;
    const heldOut = summarize(wf.rows.filter((r) => Number(r.period.slice(0, 4)) >= 2022));
    const figures = {
      periods: wf.rows.length,
      candles: wf.rows.reduce((a, r) => a + r.candles, 0),
      wallSeconds: Number(wallS.toFixed(2)),
      sharpeWinsVsExposureMatched: wf.summary.exposureMatched.sharpeWins,
      heldOutPeriods: heldOut.exposureMatched.periods,
      heldOutSharpeWinsVsExposureMatched: heldOut.exposureMatched.sharpeWins,
      heldOutLowerDrawdownThanBuyAndHold: heldOut.buyAndHold.lowerDrawdown,
    };
    console.log(`walk-forward (offline engine, real BTC/USDT 2h, ${figures.periods} years, ${figures.candles} candles):`);
    console.log(`  ${figures.wallSeconds} s wall; Sharpe above buy-and-hold at its exposure in ${figures.sharpeWinsVsExposureMatched}/${figures.periods} years, ${figures.heldOutSharpeWinsVsExposureMatched}/${figures.heldOutPeriods} held-out`);
    saveResults("walkForward", figures);
    return figures;
  } finally {
    await redis.quit();
    await server.stop();
    rmSync(dataDir, { recursive: true, force: true });
  }
}
