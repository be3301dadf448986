// The decision pipeline with the offline engine over the real BTC 2h candles: decisions per second,
// and the per-decision overhead of everything except the model (market, indicators, agent, risk,
// paper order, ledger, Redis), p50 and p99.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Redis } from "ioredis";
import type { DecisionInputs } from "../src/agent/tradingAgent.js";
import { buildApp } from "../src/app.js";
import { loadConfig } from "../src/config/config.js";
import { ReplayMarketData } from "../src/market/replay.js";
import { ModelLayer, type ModelEntry } from "../src/models/modelLayer.js";
import { ensureRedis } from "../src/redis/ensureRedis.js";
import { freePort, percentile, saveResults } from "./results.js";

const DECISIONS = Number(process.env.BENCH_DECISIONS ?? 2000);
const STEP_MS = 2 * 3600 * 1000;

/** The offline engine, with the time spent inside it measured so it can be taken out. */
class TimedModels extends ModelLayer {
  modelMs = 0;
  override languageModel(entry: ModelEntry, inputs: DecisionInputs) {
    const m = super.languageModel(entry, inputs);
    return {
      ...m,
      doStream: async (o: Parameters<typeof m.doStream>[0]) => {
        const t0 = performance.now();
        const r = await m.doStream(o);
        this.modelMs += performance.now() - t0;
        return r;
      },
    };
  }
}

export async function benchDecisionPipeline(): Promise<Record<string, number>> {
  const dataDir = mkdtempSync(join(tmpdir(), "bench-redis-"));
  // A private Redis on its own port, so the benchmark never touches a user's data.
  const redis = await ensureRedis({ url: `redis://127.0.0.1:${await freePort()}`, autostart: true, dataDir });
  const flush = new Redis(redis.url);
  await flush.flushdb();
  await flush.quit();

  const loaded = loadConfig({ SYMBOLS: "BTC/USDT", LOG_LEVEL: "error" });
  if (!loaded.ok) throw new Error(loaded.message);
  const clock = { now: 0 };
  const market = new ReplayMarketData({
    dir: new URL("../../shared/data/ohlcv/", import.meta.url).pathname,
    timeframe: "2h",
    clock: () => clock.now,
    epoch: 0,
    stepMs: STEP_MS,
  });
  const models = new TimedModels();
  const app = await buildApp(loaded.config, redis.url, { clock: () => clock.now, market, models });

  const totals: number[] = [];
  const overheads: number[] = [];
  const outcomes: Record<string, number> = {};
  const wall0 = performance.now();
  for (let i = 0; i < DECISIONS; i++) {
    const modelBefore = models.modelMs;
    const t0 = performance.now();
    const r = await app.decide({ decisionId: `bench:${i}`, symbol: "BTC/USDT", trigger: "schedule" });
    const total = performance.now() - t0;
    totals.push(total);
    overheads.push(total - (models.modelMs - modelBefore));
    outcomes[r.outcome] = (outcomes[r.outcome] ?? 0) + 1;
    clock.now += STEP_MS; // one real candle later
  }
  const wallS = (performance.now() - wall0) / 1000;
  await app.stop();
  await redis.stop();
  rmSync(dataDir, { recursive: true, force: true });

  overheads.sort((a, b) => a - b);
  totals.sort((a, b) => a - b);
  const figures = {
    decisions: DECISIONS,
    decisionsPerSecond: Number((DECISIONS / wallS).toFixed(1)),
    overheadP50Ms: Number(percentile(overheads, 50).toFixed(2)),
    overheadP99Ms: Number(percentile(overheads, 99).toFixed(2)),
    totalP50Ms: Number(percentile(totals, 50).toFixed(2)),
    modelMsPerDecision: Number((models.modelMs / DECISIONS).toFixed(3)),
    orders: outcomes.order ?? 0,
  };
  console.log(`decision pipeline (offline engine, ${DECISIONS} decisions over real BTC/USDT 2h candles):`);
  console.log(`  ${figures.decisionsPerSecond} decisions/s; overhead excluding the model p50 ${figures.overheadP50Ms} ms, p99 ${figures.overheadP99Ms} ms; model ${figures.modelMsPerDecision} ms; ${figures.orders} orders`);
  saveResults("decisionPipeline", figures);
  return figures;
}
