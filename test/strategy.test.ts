// Bring your own strategy: a file loaded and asked in its own thread, and refused (never traded)
// when it throws, hangs or answers outside the decision schema; the same file in the backtest
// through the risk rules and order path, and live as the deciding engine or the last fallback.
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { Redis } from "ioredis";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { runBacktest, type BacktestOptions } from "../src/backtest/engine.js";
import { offlineDirect, strategyModel } from "../src/backtest/models.js";
import type { DecisionInputs } from "../src/agent/tradingAgent.js";
import type { Candle } from "../src/domain/types.js";
import { computeSnapshot } from "../src/indicators/snapshot.js";
import { loadCandles } from "../src/market/candles.js";
import { NoResearch } from "../src/research/types.js";
import { StrategyRunner, strategyContext, strategyId } from "../src/strategy/runner.js";
import { scriptedModels, startTestApp, testConfig, type TestApp } from "./support/app.js";

const SHARED = fileURLToPath(new URL("../../shared/data/ohlcv/", import.meta.url));
const ROOT = fileURLToPath(new URL("../", import.meta.url));
const btc = loadCandles(join(SHARED, "BTC_USDT_2h.csv"));
const limits = testConfig().risk;
const dir = mkdtempSync(join(tmpdir(), "strategies-"));

/** A strategy file in a temporary folder. */
function file(name: string, source: string): string {
  const path = join(dir, name);
  writeFileSync(path, source);
  return path;
}

const BUY = `
import type { StrategyContext } from "../src/strategy/types.js";
export const name = "always buy";
export default function decide(ctx: StrategyContext) {
  return { symbol: ctx.symbol, action: ctx.position ? "hold" : "buy", sizePct: 5, confidence: 0.7, reasons: ["last close " + ctx.candles.at(-1)!.close + ", RSI " + Math.round(ctx.indicators.rsi14)] };
}
`;

const research = await new NoResearch().research();
function inputs(candles: Candle[], symbol = "BTC/USDT"): DecisionInputs {
  return {
    decisionId: "d1",
    symbol,
    snapshot: computeSnapshot(symbol, candles),
    research,
    portfolio: { cash: 10_000, equity: 10_000, positions: [], dailyPnl: 0, exposurePct: 0, realizedPnl: 0, recent: [] },
    limits,
    candles,
  };
}
const window = btc.slice(20_000, 20_200);
const ctx = (symbol = "BTC/USDT") => strategyContext(inputs(window, symbol), window, window.at(-1)!.time + 7_200_000);

afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe("a strategy file in its own thread", () => {
  const runners: StrategyRunner[] = [];
  const load = async (path: string, timeoutMs = 5_000) => {
    const r = await StrategyRunner.load(path, { timeoutMs });
    runners.push(r);
    return r;
  };
  afterAll(async () => {
    for (const r of runners) await r.close();
  });

  it("loads a TypeScript file and answers with its decision, validated, about the symbol asked", async () => {
    const r = await load(file("buyer.ts", BUY));
    expect(r.id).toBe("strategy:buyer");
    expect(r.exportedName).toBe("always buy");
    const out = await r.decide(ctx());
    expect(out).toEqual({ ok: true, decision: { symbol: "BTC/USDT", action: "buy", sizePct: 5, confidence: 0.7, reasons: [`last close ${window.at(-1)!.close}, RSI ${Math.round(computeSnapshot("BTC/USDT", window).rsi14)}`] } });
    // The shipped examples load and answer too.
    const sma = await load(join(ROOT, "strategies/sma-crossover.ts"));
    const answer = await sma.decide(ctx());
    expect(answer.ok && ["buy", "hold"]).toContain(answer.ok ? answer.decision.action : "refused");
    // A named export `decide` and plain JavaScript work as well.
    const js = await load(file("named.mjs", `export function decide(ctx) { return { symbol: ctx.symbol, action: "hold", sizePct: 0, confidence: 0.5, reasons: ["js"] }; }`));
    expect(await js.decide(ctx())).toMatchObject({ ok: true, decision: { action: "hold", reasons: ["js"] } });
  });

  it("refuses a strategy that throws, says what it threw, and answers the next call", async () => {
    const r = await load(file("thrower.ts", `let n = 0;\nexport default (ctx: { symbol: string }) => { n++; if (n === 1) throw new Error("no data for " + ctx.symbol); return { symbol: ctx.symbol, action: "hold", sizePct: 0, confidence: 0.5, reasons: ["call " + n] }; };`));
    expect(await r.decide(ctx())).toEqual({ ok: false, error: "strategy thrower threw: no data for BTC/USDT; no order" });
    // The same thread answers the next call: its state (n) goes on.
    expect(await r.decide(ctx())).toMatchObject({ ok: true, decision: { reasons: ["call 2"] } });
    expect(r.refused).toBe(1);
  });

  it("refuses a strategy that hangs, without blocking the agent, and starts a fresh thread for the next call", async () => {
    const r = await load(file("hang.ts", `let calls = 0;\nexport default (ctx: { symbol: string }) => { calls++; if (ctx.symbol === "HANG/USDT") { while (true) {} } return { symbol: ctx.symbol, action: "hold", sizePct: 0, confidence: 0.5, reasons: ["calls " + calls] }; };`), 400);
    const first = await r.decide(ctx());
    expect(first, JSON.stringify(first)).toMatchObject({ ok: true, decision: { reasons: ["calls 1"] } });
    // The agent's own event loop keeps running while the strategy spins.
    let ticks = 0;
    const tick = setInterval(() => ticks++, 20);
    const out = await r.decide(ctx("HANG/USDT"));
    clearInterval(tick);
    expect(out.ok).toBe(false);
    expect(out.ok ? "" : out.error).toBe("strategy hang did not answer within 400 ms (a hang or an endless loop): its thread was stopped and a fresh one will answer the next decision; no order");
    expect(ticks).toBeGreaterThan(0);
    // The next call is answered by a fresh thread: the module was loaded again, its counter starts over.
    expect(await r.decide(ctx())).toMatchObject({ ok: true, decision: { reasons: ["calls 1"] } });
    // An async strategy that never settles is bounded the same way.
    const slow = await load(file("slow.ts", `export default async (ctx: { symbol: string }) => { await new Promise((r) => setTimeout(r, 60_000)); return { symbol: ctx.symbol, action: "buy", sizePct: 5, confidence: 1, reasons: ["late"] }; };`), 300);
    const late = await slow.decide(ctx());
    expect(late.ok ? "" : late.error).toMatch(/^strategy slow did not answer within 300 ms/);
  });

  it("refuses answers outside the decision schema with the field at fault", async () => {
    const cases: [string, string, RegExp][] = [
      ["big.ts", `export default (c: any) => ({ symbol: c.symbol, action: "buy", sizePct: 500, confidence: 0.5, reasons: ["all in"] })`, /^strategy big answered outside the decision schema: \(sizePct: Too big: expected number to be <=100\) \(see src\/decision\/schema\.ts\); no order$/],
      ["noreasons.ts", `export default (c: any) => ({ symbol: c.symbol, action: "buy", sizePct: 5, confidence: 0.5, reasons: [] })`, /answered outside the decision schema: \(reasons: /],
      ["short.ts", `export default (c: any) => ({ symbol: c.symbol, action: "short", sizePct: 5, confidence: 0.5, reasons: ["x"] })`, /answered outside the decision schema: \(action: /],
      ["other.ts", `export default () => ({ symbol: "ETH/USDT", action: "buy", sizePct: 5, confidence: 0.5, reasons: ["x"] })`, /answered for ETH\/USDT when asked about BTC\/USDT/],
      ["nothing.ts", `export default () => undefined`, /answered nothing instead of a decision: return \{ symbol, action/],
      ["fn.ts", `export default () => ({ symbol: "BTC/USDT", action: "hold", sizePct: 0, confidence: 0.5, reasons: ["x"], later: () => 1 })`, /its answer could not be read .*answer plain data/],
    ];
    for (const [name, source, why] of cases) {
      const out = await (await load(file(name, source))).decide(ctx());
      expect(out.ok, name).toBe(false);
      expect(out.ok ? "" : out.error, name).toMatch(why);
    }
  });

  it("will not load a file that is missing or exports no function", async () => {
    await expect(StrategyRunner.load(join(dir, "missing.ts"), { timeoutMs: 2000 })).rejects.toThrow(/no such file \(give the path of a \.ts or \.js file/);
    await expect(StrategyRunner.load(file("empty.ts", `export const x = 1;`), { timeoutMs: 5000 })).rejects.toThrow(/cannot be used: it exports no strategy function: write export default function decide/);
    await expect(StrategyRunner.load(file("broken.ts", `export default (() => {`), { timeoutMs: 5000 })).rejects.toThrow(/strategy .*broken\.ts cannot be used/);
    expect(strategyId("/a/b/my-rules.mjs")).toBe("strategy:my-rules");
  });
});

describe("a strategy file in the backtest", () => {
  let redis: Redis;
  beforeAll(async () => {
    const worker = Number(process.env.VITEST_POOL_ID ?? process.env.VITEST_WORKER_ID ?? 1);
    redis = new Redis(process.env.TEST_REDIS_URL ?? "redis://127.0.0.1:6379", { db: worker % 8, maxRetriesPerRequest: null });
  });
  afterAll(async () => {
    await redis.quit();
  });
  const base = (model: BacktestOptions["model"]): BacktestOptions => ({
    symbol: "BTC/USDT", timeframe: "2h", candles: btc, from: Date.UTC(2022, 5, 1), to: Date.UTC(2022, 6, 1) - 1,
    model, limits, feeRate: 0.001, slippageBps: 5, startingCash: 10_000, redis,
  });

  it("trades the offline engine's file exactly as the built-in engine, through the same risk rules and order path", async () => {
    await redis.flushdb();
    const builtIn = await runBacktest(base(offlineDirect()));
    const builtInTrades = await redis.lrange("portfolio:closed", 0, -1);
    await redis.flushdb();
    const runner = await StrategyRunner.load(join(ROOT, "strategies/offline.ts"), { timeoutMs: 5000 });
    try {
      const fromFile = await runBacktest(base(strategyModel(runner, "strategies/offline.ts", 5000)));
      expect(fromFile.curves.strategy).toEqual(builtIn.curves.strategy);
      expect(await redis.lrange("portfolio:closed", 0, -1)).toEqual(builtInTrades);
      expect(fromFile.report.decidedBy.counts).toEqual({ "strategy:offline": fromFile.report.candles });
      expect(fromFile.report.model.path).toMatch(/^strategy file strategies\/offline\.ts, in a worker thread, each answer within 5000 ms/);
    } finally {
      await runner.close();
    }
  });

  it("places no order for a refused answer, counts it, and lets no other engine stand in", async () => {
    await redis.flushdb();
    // Buys at every 5th call with a size the schema refuses; holds otherwise.
    const runner = await StrategyRunner.load(file("fifth.ts", `let n = 0;\nexport default (c: any) => (++n % 5 === 0 ? { symbol: c.symbol, action: "buy", sizePct: 150, confidence: 1, reasons: ["too big"] } : { symbol: c.symbol, action: "hold", sizePct: 0, confidence: 0.5, reasons: ["wait"] });`), { timeoutMs: 5000 });
    try {
      const { report } = await runBacktest(base(strategyModel(runner, "fifth.ts", 5000)));
      expect(report.model.refused).toBe(Math.floor(report.candles / 5));
      expect(report.model.firstRefusal).toMatch(/sizePct: Too big/);
      expect(report.strategy.orders).toBe(0);
      expect(report.decidedBy.counts).toEqual({ "strategy:fifth": report.candles - report.model.refused, refused: report.model.refused });
      expect(await redis.llen("paper:trades")).toBe(0);
    } finally {
      await runner.close();
    }
  });
});

describe("a strategy file live (STRATEGY)", () => {
  let t: TestApp | undefined;
  afterEach(async () => {
    await t?.app.stop();
    t = undefined;
  });

  it("makes the decision, through the risk rules, to an order", async () => {
    const path = file("live-buyer.ts", BUY);
    t = await startTestApp(testConfig((c) => (c.strategy = { file: path, timeoutMs: 5000 })));
    const reply = await t.run("/decide BTC");
    const record = (await t.app.services.ledger.recent(1))[0]!;
    expect(record).toMatchObject({ model: "strategy:live-buyer", outcome: "order", action: "buy", sizePct: 5, costMicro: 0 });
    expect(record.reasons![0]).toMatch(/^last close \d/);
    expect(reply.text).toMatch(/Model: strategy:live-buyer · cost \$0\.0000/);
    expect((await t.app.services.portfolio.positions()).map((p) => p.symbol)).toEqual(["BTC/USDT"]);
  });

  it("refuses a strategy that throws or hangs: the decision fails with the reason, no order, and the agent goes on", async () => {
    const path = file("live-hang.ts", `export default (c: any) => { if (c.symbol === "BTC/USDT") { while (true) {} } throw new Error("ETH data looks wrong"); };`);
    t = await startTestApp(testConfig((c) => (c.strategy = { file: path, timeoutMs: 400 })));
    const hung = await t.run("/decide BTC");
    expect(hung.text).toMatch(/strategy:live-hang: did not answer within 400 ms \(a hang or an endless loop\)[^\n]*; no order/);
    const threw = await t.run("/decide ETH");
    expect(threw.text).toMatch(/strategy:live-hang: threw: ETH data looks wrong; no order/);
    const records = await t.app.services.ledger.recent(2);
    expect(records.map((r) => r.outcome)).toEqual(["failed", "failed"]);
    expect(records.every((r) => r.order === undefined)).toBe(true);
    expect(await t.app.services.portfolio.positions()).toEqual([]);
    expect((await t.run("/status")).text).toMatch(/Model: strategy:live-hang/);
  });

  it("decides when the models cannot, as the last fallback", async () => {
    const path = file("fallback.ts", BUY);
    t = await startTestApp(testConfig((c) => (c.strategy = { file: path, timeoutMs: 5000 })), { models: scriptedModels(() => "<response>no action here</response>") });
    await t.run("/decide BTC");
    const record = (await t.app.services.ledger.recent(1))[0]!;
    expect(record.model).toBe("strategy:fallback");
    expect(record.outcome).toBe("order");
    expect(record.attempts?.map((a) => a.failure)).toEqual(["invalid-reply"]);
  });
});
