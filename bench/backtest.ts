// A full offline backtest of the real BTC/USDT 2h history (35,000+ candles): wall time and candles
// per second. Also what one decision costs through @daydreamsai/core on a 300-candle sample,
// which is why the offline engine is called directly in a backtest.
import { existsSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Redis } from "ioredis";
import { runBacktest, type SymbolSeries } from "../src/backtest/engine.js";
import { offlineDirect, standInModel, strategyModel, throughAgent } from "../src/backtest/models.js";
import { StrategyRunner } from "../src/strategy/runner.js";
import { loadConfig } from "../src/config/config.js";
import { loadCandles } from "../src/market/candles.js";
import { ensureRedis } from "../src/redis/ensureRedis.js";
import { walkForward, yearlyPeriods } from "../src/backtest/walkForward.js";
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
    // The same engine as a strategy file (strategies/offline.ts), asked in its worker thread.
    await redis.flushdb();
    const runner = await StrategyRunner.load(new URL("../strategies/offline.ts", import.meta.url).pathname, { timeoutMs: config.strategy.timeoutMs });
    const file = await runBacktest({ ...common, from: sampleFrom, to: sampleTo, model: strategyModel(runner, "strategies/offline.ts", config.strategy.timeoutMs) });
    await runner.close();

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
      strategyFileMsPerCandle: Number((file.report.wallTimeMs / file.report.candles).toFixed(3)),
      sameDecisionsAsStrategyFile: Number(JSON.stringify(file.curves.strategy) === JSON.stringify(direct.curves.strategy)),
    };
    console.log(`backtest (offline engine, real BTC/USDT 2h, ${figures.candles} candles, one decision per candle):`);
    console.log(`  ${figures.wallSeconds} s wall, ${figures.candlesPerSecond} candles/s; ${figures.orders} orders, ${figures.trades} round trips`);
    console.log(`  per candle on a ${figures.sampleCandles}-candle sample: ${figures.directMsPerCandle} ms direct, ${figures.throughCoreMsPerCandle} ms through @daydreamsai/core (same decisions: ${figures.sameDecisionsThroughCore ? "yes" : "NO"}), ${figures.strategyFileMsPerCandle} ms as a strategy file in its thread (same decisions: ${figures.sameDecisionsAsStrategyFile ? "yes" : "NO"})`);
    saveResults("backtest", figures);
    return figures;
  } finally {
    await redis.quit();
    await server.stop();
    rmSync(dataDir, { recursive: true, force: true });
  }
}

/** Every SYMBOL_2h.csv in the shared candles folder (else data/ohlcv): the symbols the data command fetched. */
function allSymbols(timeframe: string): SymbolSeries[] {
  const shared = new URL("../../shared/data/ohlcv/", import.meta.url).pathname;
  const dir = existsSync(shared) ? shared : new URL("../data/ohlcv/", import.meta.url).pathname;
  return readdirSync(dir)
    .filter((f) => f.endsWith(`_${timeframe}.csv`))
    .sort()
    .map((f) => ({ symbol: f.slice(0, -`_${timeframe}.csv`.length).replace("_", "/"), candles: loadCandles(join(dir, f)) }));
}

/**
 * The walk-forward runs docs/evaluation.md shows: the offline engine on each year of the real
 * BTC/USDT 2h history, then on every symbol with recorded candles (each on its own account, a
 * fresh one per year), with the rebalanced benchmark and its bootstrap intervals. Wall times.
 */
export async function benchWalkForward(): Promise<Record<string, number>> {
  const loaded = loadConfig({});
  if (!loaded.ok) throw new Error(loaded.message);
  const config = loaded.config;
  const candles = loadCandles(new URL("../../shared/data/ohlcv/BTC_USDT_2h.csv", import.meta.url).pathname);
  const dataDir = mkdtempSync(join(tmpdir(), "bench-walkforward-"));
  const server = await ensureRedis({ url: `redis://127.0.0.1:${await freePort()}`, autostart: true, dataDir });
  const redis = new Redis(server.url, { maxRetriesPerRequest: null });
  const common = { timeframe: "2h", model: offlineDirect(), limits: config.risk, feeRate: config.exchange.feeRate, slippageBps: config.exchange.slippageBps, startingCash: config.exchange.paperStartUsdt, redis };
  try {
    const t0 = performance.now();
    const wf = await walkForward({ ...common, symbol: "BTC/USDT", candles }, yearlyPeriods(candles));
    const wallS = (performance.now() - t0) / 1000;
    const series = allSymbols("2h");
    const t1 = performance.now();
    const several = await walkForward({ ...common, series });
    const severalS = (performance.now() - t1) / 1000;
    const held = wf.heldOut ?? wf.pooled;
    const figures = {
      periods: wf.rows.length,
      candles: wf.rows.reduce((a, r) => a + r.candles, 0),
      wallSeconds: Number(wallS.toFixed(2)),
      heldOutPeriods: held.periods,
      heldOutWonOnReturn: held.wonOnReturn,
      heldOutEdgePerYearPct: Number(held.edgePerYear.afterFees.meanPct.toFixed(3)),
      heldOutEdgeLowPct: Number(held.edgePerYear.afterFees.lowPct.toFixed(3)),
      heldOutEdgeHighPct: Number(held.edgePerYear.afterFees.highPct.toFixed(3)),
      symbols: series.length,
      symbolsPeriods: several.rows.length,
      symbolsCandles: several.rows.reduce((a, r) => a + r.candles, 0),
      symbolsWallSeconds: Number(severalS.toFixed(2)),
      symbolsWonOnReturn: several.pooled.wonOnReturn,
      symbolsEdgePerYearPct: Number(several.pooled.edgePerYear.afterFees.meanPct.toFixed(3)),
    };
    console.log(`walk-forward (offline engine, real BTC/USDT 2h, ${figures.periods} years, ${figures.candles} candles):`);
    console.log(`  ${figures.wallSeconds} s wall; won on return against B&H at its exposure (rebalanced) in ${figures.heldOutWonOnReturn}/${figures.heldOutPeriods} held-out years, edge ${figures.heldOutEdgePerYearPct} points a year (${figures.heldOutEdgeLowPct} to ${figures.heldOutEdgeHighPct})`);
    console.log(`walk-forward over ${figures.symbols} symbols (${series.map((s) => s.symbol).join(", ")}; ${figures.symbolsPeriods} periods, ${figures.symbolsCandles} candles):`);
    console.log(`  ${figures.symbolsWallSeconds} s wall; won on return in ${figures.symbolsWonOnReturn}/${figures.symbolsPeriods}, pooled edge ${figures.symbolsEdgePerYearPct} points a year`);
    saveResults("walkForward", figures);
    return figures;
  } finally {
    await redis.quit();
    await server.stop();
    rmSync(dataDir, { recursive: true, force: true });
  }
}
