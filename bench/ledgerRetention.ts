// Ledger retention: Redis memory for one year of decisions at 3 symbols every 5 minutes, without
// and with the daily rollup (LEDGER_RETENTION_DAYS=35). A private redis-server on a free port is
// seeded with the ledger's own key layout (decision record, time index, charge, its "charged"
// marker, the spend counters), in pipelined batches, then rolled up as the daily job does.
// Two workloads: the offline engine (records shaped as it writes them, no charges) and the router
// (every decision paid, a third with an x402 receipt: the ledger's largest).
import { mkdtempSync, readdirSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Redis } from "ioredis";
import { JsonlArchive } from "../src/ledger/archive.js";
import { dayKey, ledgerKeys, monthKey, spendKeys, type ChargeRecord, type DecisionRecord } from "../src/ledger/ledger.js";
import { LedgerRollup, retentionCutoff } from "../src/ledger/rollup.js";
import { ensureRedis } from "../src/redis/ensureRedis.js";
import { freePort, saveResults } from "./results.js";

const DAYS = Number(process.env.BENCH_RETENTION_DAYS_SEEDED ?? 365);
const RETENTION_DAYS = 35;
const SYMBOLS = ["BTC/USDT", "ETH/USDT", "DOGE/USDT"] as const;
const STEP_MS = 5 * 60_000;
const BATCH = 1_000;
const MODELS = ["groq/llama-3.1-8b-instant", "google-vertex/gemini-2.5-flash", "anthropic/claude-3-5-sonnet", "openai/gpt-4o"];

/** A decision record shaped like the pipeline's: indicators, reasons, the risk verdict, attempts. */
function paidRecord(n: number, time: number, symbol: string): { decision: DecisionRecord; charge?: ChargeRecord } {
  const model = MODELS[n % 7 === 0 ? 2 : n % 2]!;
  const cost = 2_000 + ((n * 7919) % 30_000);
  const hold = n % 5 !== 0;
  const price = 60_000 + ((n * 37) % 5_000) + (n % 100) / 100;
  const decision: DecisionRecord = {
    id: `sched:${symbol}:repeat:decide:${symbol}:${time}`,
    time,
    symbol,
    trigger: "schedule",
    model,
    costMicro: cost,
    latencyMs: 600 + (n % 900),
    outcome: hold ? "no-order" : "order",
    action: hold ? "hold" : "buy",
    sizePct: hold ? 0 : 4.5,
    confidence: 0.55 + (n % 40) / 100,
    reasons: ["RSI 41.2 is neutral", "MACD histogram turned positive", "price above the 50-candle EMA"],
    stopLossPct: 3,
    takeProfitPct: 6,
    indicators: { price, rsi: 41.23, macd: 12.8841, macdSignal: 10.2217, macdHistogram: 2.6624, emaFast: price * 0.998, emaSlow: price * 0.991, atr: 412.77, bollingerUpper: price * 1.02, bollingerLower: price * 0.98, volume: 1834.2, trend: "up" },
    risk: { outcome: hold ? "none" : "approved", message: hold ? "hold: nothing to check" : "within limits", rules: hold ? [] : ["maxPositionPct", "maxExposurePct", "dailyLoss", "var95"] },
    ...(hold ? {} : { order: { id: `paper-${n}`, side: "buy" as const, qty: 0.0075, avgPrice: price, fee: 0.45, status: "filled" as const } }),
    attempts: [{ model, ok: true, latencyMs: 580 + (n % 900), costMicro: cost }],
    tier: n % 7 === 0 ? "premium" : "standard",
  };
  const charge: ChargeRecord = {
    decisionId: `${decision.id}:0`,
    time: time + 700,
    model,
    costMicro: cost,
    ...(n % 3 === 0 ? { receipt: { status: "settled" as const, network: "base-sepolia", transaction: `0x${(n * 2654435761).toString(16).padStart(64, "0")}`, payer: "0x1111111111111111111111111111111111111111", x402Version: 1, scheme: "exact", paymentId: `pay-${n.toString(36).padStart(16, "0")}` } } : {}),
  };
  return { decision, charge };
}

/** The offline engine's record, as the pipeline writes it (measured at about 760 bytes of JSON). */
function offlineRecord(n: number, time: number, symbol: string): { decision: DecisionRecord; charge?: ChargeRecord } {
  const price = 98_000 + ((n * 37) % 5_000) + (n % 100) / 100;
  const decision: DecisionRecord = {
    id: `sched:${symbol}:repeat:decide:${symbol}:${time}`,
    time,
    symbol,
    trigger: "schedule",
    model: "offline-engine",
    costMicro: 0,
    latencyMs: 0,
    outcome: "no-order",
    indicators: { price, sma20: price * 0.99811, sma50: price * 0.98283, rsi14: 59.748358925509734, macdHist: -80.68515890793674, bbUpper: price * 1.00666, bbLower: price * 0.98953, atr14: 537.7195633206369, volatility: 0.003600406288409589, signal: "neutral" },
    action: "hold",
    sizePct: 0,
    confidence: 0.85,
    reasons: [`Price ${Math.round(price)} above SMA20 98,001 and SMA50 96,500 (uptrend).`, "RSI 60 (neutral).", "MACD histogram -80.69 (momentum down).", "Neutral score +0.15: no clear edge, stay out."],
    risk: { outcome: "no-trade", message: "Hold: no order.", rules: [] },
  };
  return { decision };
}

async function usedMemory(redis: Redis): Promise<number> {
  const info = await redis.info("memory");
  return Number(/used_memory:(\d+)/.exec(info)![1]);
}

const mb = (bytes: number) => Number((bytes / 1_048_576).toFixed(1));

type Make = typeof paidRecord;

export async function benchLedgerRetention(): Promise<Record<string, unknown>> {
  const dataDir = mkdtempSync(join(tmpdir(), "bench-retention-redis-"));
  const server = await ensureRedis({ url: `redis://127.0.0.1:${await freePort()}`, autostart: true, dataDir });
  const redis = new Redis(server.url, { maxRetriesPerRequest: null });
  try {
    // Memory is what is measured; the append-only file would only cost disk and time here.
    await redis.config("SET", "appendonly", "no");
    const figures = { offline: await workload(redis, offlineRecord), router: await workload(redis, paidRecord) };
    console.log("ledger retention:", JSON.stringify(figures, null, 2));
    saveResults("ledgerRetention", figures);
    return figures;
  } finally {
    await redis.quit();
    await server.stop();
    rmSync(dataDir, { recursive: true, force: true });
  }
}

async function workload(redis: Redis, make: Make): Promise<Record<string, unknown>> {
  const archiveDir = mkdtempSync(join(tmpdir(), "bench-retention-archive-"));
  try {
    await redis.flushdb();
    const empty = await usedMemory(redis);
    let charges = 0;

    const keys = ledgerKeys();
    const spend = spendKeys();
    const now = Date.UTC(2026, 0, 1, 12);
    const start = now - DAYS * 86_400_000;
    let n = 0;
    let pipe = redis.pipeline();
    const t0 = performance.now();
    const monthly: number[] = [];
    let month = monthKey(start);
    for (let time = start; time < now; time += STEP_MS) {
      if (monthKey(time) !== month) {
        await pipe.exec();
        pipe = redis.pipeline();
        monthly.push(await usedMemory(redis));
        month = monthKey(time);
      }
      for (const symbol of SYMBOLS) {
        const { decision, charge } = make(n++, time + SYMBOLS.indexOf(symbol) * 40, symbol);
        pipe.set(keys.decision(decision.id), JSON.stringify(decision)).zadd(keys.decisions, decision.time, decision.id);
        if (charge) {
          charges++;
          pipe
            .set(keys.charged(charge.decisionId), String(charge.costMicro))
            .zadd(keys.charges, charge.time, JSON.stringify(charge))
            .incrby(spend.day(dayKey(charge.time)), charge.costMicro)
            .incrby(spend.month(monthKey(charge.time)), charge.costMicro);
        }
        if (pipe.length >= BATCH * 6) {
          await pipe.exec();
          pipe = redis.pipeline();
        }
      }
    }
    await pipe.exec();
    const seedSeconds = (performance.now() - t0) / 1000;
    const withoutRollup = await usedMemory(redis);

    const archive = new JsonlArchive(archiveDir);
    const t1 = performance.now();
    const result = await new LedgerRollup(redis, archive).run(retentionCutoff(now, RETENTION_DAYS));
    const rollupSeconds = (performance.now() - t1) / 1000;
    const withRollup = await usedMemory(redis);
    // Redis shrinks its key table (sized for the year just deleted) in the background, a step per
    // tick; the settled figure is the one a daily rollup keeps, as it never lets the table grow.
    let settled = withRollup;
    for (let i = 0; i < 50; i++) {
      await new Promise((r) => setTimeout(r, 200));
      const m = await usedMemory(redis);
      if (m === settled && i > 5) break;
      settled = m;
    }
    const archiveBytes = readdirSync(archiveDir).reduce((s, f) => s + statSync(join(archiveDir, f)).size, 0);
    const aggregates = await redis.zcard(keys.rollups);
    const aggregateBytes = Number(await redis.memory("USAGE", keys.rollup(dayKey(start + 86_400_000))));

    const perMonth = monthly.length > 1 ? (monthly.at(-1)! - monthly[0]!) / (monthly.length - 1) : NaN;
    const figures = {
      workload: { symbols: SYMBOLS.length, intervalMinutes: 5, days: DAYS, decisions: n, charges, retentionDays: RETENTION_DAYS },
      usedMemoryEmptyMb: mb(empty),
      usedMemoryWithoutRollupMb: mb(withoutRollup),
      ledgerGrowthPerMonthMb: mb(perMonth),
      ledgerBytesPerDecision: Math.round((withoutRollup - empty) / n),
      usedMemoryRightAfterRollupMb: mb(withRollup),
      usedMemoryWithRollupMb: mb(settled),
      rolledUpDays: result.days.length,
      rolledUpDecisions: result.decisions,
      rolledUpCharges: result.charges,
      aggregateDays: aggregates,
      aggregateBytesPerDay: aggregateBytes,
      archiveMb: mb(archiveBytes),
      archiveFiles: readdirSync(archiveDir).length,
      seedSeconds: Number(seedSeconds.toFixed(1)),
      rollupSeconds: Number(rollupSeconds.toFixed(1)),
      rollupMsPerDay: Number(((rollupSeconds * 1000) / Math.max(1, result.days.length)).toFixed(1)),
    };
    return figures;
  } finally {
    rmSync(archiveDir, { recursive: true, force: true });
  }
}
