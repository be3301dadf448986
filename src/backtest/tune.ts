// npx tsx src/backtest/tune.ts: the small search that picked the offline engine's rules. It runs a
// handful of candidates on BTC/USDT 2h, one year at a time, over 2017-2021 ONLY: it refuses any
// period that reaches 2022, so the held-out years 2022-2025 never shape the choice.
import { mkdtempSync, rmSync } from "node:fs";
import { createServer, type AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Redis } from "ioredis";
import { loadConfig } from "../config/config.js";
import { validateDecision } from "../decision/schema.js";
import { decideOffline, OFFLINE_MODEL_ID, OFFLINE_RULES, type OfflineRules } from "../engine/offlineEngine.js";
import { loadCandles } from "../market/candles.js";
import { ensureRedis } from "../redis/ensureRedis.js";
import type { PricedModel } from "./models.js";
import { HELD_OUT_FROM, walkForward, yearlyPeriods } from "./walkForward.js";

/** The first moment the search may not see. */
export { HELD_OUT_FROM };

// Round 1 started from { stopAtr: 3, targetR: 4, volTarget: 0.008, maxEntryRsi: 75 } and tried
// four variants; wider exits (4 ATR, 6R) won: Sharpe above buy-and-hold at the same exposure in 3
// of 5 years, mean edge +0.53. Round 2 tried three changes to that; a volatility target of 0.5%
// won: 4 of 5, mean edge +0.77, and is the engine's rule now. Every figure is from 2017-2021.
const ROUND_1 = { stopAtr: 3, targetR: 4, volTarget: 0.008, maxEntryRsi: 75, slowExit: false };
const ROUND_2 = { ...ROUND_1, stopAtr: 4, targetR: 6 };
export const CANDIDATES: Record<string, OfflineRules> = {
  "chosen (round 2: vol target 0.5%)": OFFLINE_RULES,
  "round 1: start (3 ATR, 4R, vol target 0.8%)": ROUND_1,
  "round 1: tight exits (2 ATR, 2R), no vol target, no RSI cap": { ...ROUND_1, stopAtr: 2, targetR: 2, volTarget: 0, maxEntryRsi: 100 },
  "round 1: no vol target": { ...ROUND_1, volTarget: 0 },
  "round 1: wider exits (4 ATR, 6R)": ROUND_2,
  "round 1: RSI cap 65": { ...ROUND_1, maxEntryRsi: 65 },
  "round 2: targets out of reach (10R)": { ...ROUND_2, targetR: 10 },
  "round 2: slow exit (SMA20 under SMA50)": { ...ROUND_2, slowExit: true },
};

export function engineWith(rules: OfflineRules): PricedModel {
  return {
    id: OFFLINE_MODEL_ID,
    pricePerCallUsdc: 0,
    route: "offline",
    path: "offline engine with candidate rules",
    async decide(inputs) {
      const position = inputs.portfolio.positions.find((p) => p.symbol === inputs.symbol);
      const r = validateDecision(decideOffline(inputs.snapshot, position, inputs.limits, rules));
      return r.ok ? { ok: true, decision: r.decision, modelCalls: 0, source: "offline engine" } : { ok: false, error: r.error, modelCalls: 0 };
    },
    async close() {},
  };
}

async function main(): Promise<void> {
  const loaded = loadConfig({});
  if (!loaded.ok) throw new Error(loaded.message);
  const config = loaded.config;
  const candles = loadCandles(new URL("../../../shared/data/ohlcv/BTC_USDT_2h.csv", import.meta.url).pathname);
  const periods = yearlyPeriods(candles, -Infinity, HELD_OUT_FROM - 1);
  if (periods.some((p) => p.to >= HELD_OUT_FROM)) throw new Error("the search may not see 2022 or later");
  const port = await new Promise<number>((ok) => {
    const srv = createServer().listen(0, "127.0.0.1", () => {
      const p = (srv.address() as AddressInfo).port;
      srv.close(() => ok(p));
    });
  });
  const dataDir = mkdtempSync(join(tmpdir(), "tune-redis-"));
  const server = await ensureRedis({ url: `redis://127.0.0.1:${port}`, autostart: true, dataDir });
  const redis = new Redis(server.url, { maxRetriesPerRequest: null });
  // Its failures reach the commands that wait on it; without a listener ioredis prints a stack.
  redis.on("error", () => {});
  const only = process.argv[2];
  try {
    for (const [name, rules] of Object.entries(CANDIDATES)) {
      if (only && !name.includes(only)) continue;
      const wf = await walkForward(
        { symbol: "BTC/USDT", timeframe: "2h", candles, model: engineWith(rules), limits: config.risk, feeRate: config.exchange.feeRate, slippageBps: config.exchange.slippageBps, startingCash: config.exchange.paperStartUsdt, redis },
        periods,
      );
      // The search (2025) scored Sharpe against a bought-once benchmark; the score is kept as it was
      // run, with the rebalanced benchmark's return edge beside it.
      const s = wf.pooled;
      const meanEdge = wf.rows.reduce((a, r) => a + (r.strategy.sharpe - r.exposureMatched.sharpe), 0) / wf.rows.length;
      const e = s.edgePerYear.afterFees;
      console.log(`${name}: Sharpe above B&H@exposure in ${s.beside.exposureMatched.sharpeWins}/${s.periods}, mean Sharpe edge ${meanEdge.toFixed(2)}, won on return ${s.wonOnReturn}/${s.periods}, edge ${e.meanPct.toFixed(2)} points a year (${e.lowPct.toFixed(2)} to ${e.highPct.toFixed(2)}), lower DD than B&H in ${s.beside.buyAndHold.lowerDrawdown}/${s.periods}`);
      for (const r of wf.rows) console.log(`  ${r.period.padEnd(24)} ret ${r.strategy.totalReturnPct.toFixed(1).padStart(6)}% sharpe ${r.strategy.sharpe.toFixed(2).padStart(5)} dd ${r.strategy.maxDrawdownPct.toFixed(1).padStart(5)}% exp ${r.exposurePct.toFixed(1)}% | matched sharpe ${r.exposureMatched.sharpe.toFixed(2)} | B&H ret ${r.buyAndHold.totalReturnPct.toFixed(1)}% dd ${r.buyAndHold.maxDrawdownPct.toFixed(1)}% | fees ${r.strategy.fees.toFixed(0)} trades ${r.strategy.trades}`);
    }
  } finally {
    await redis.quit();
    await server.stop();
    rmSync(dataDir, { recursive: true, force: true });
  }
}

if (process.argv[1]?.endsWith("tune.ts")) await main();
