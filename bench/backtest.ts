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
