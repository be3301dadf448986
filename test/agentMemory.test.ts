import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Redis } from "ioredis";
import { testRedis } from "./support/redis.js";
import { TradingAgent, type DecisionInputs } from "../src/agent/tradingAgent.js";
import { RedisKeyValueProvider } from "../src/agent/redisKeyValue.js";
import { decisionToAgentReply, scriptedModel, type ModelV2 } from "../src/agent/scriptedModel.js";

const limits = {
  maxPositionPct: 10, maxExposurePct: 50, maxLeverage: 1, maxOpenPositions: 3, dailyLossLimitPct: 5,
  defaultStopLossPct: 3, maxStopLossPct: 10, defaultTakeProfitPct: 6, minOrderNotional: 10,
};

function inputs(decisionId: string): DecisionInputs {
  return {
    decisionId,
    symbol: "ETH/USDT",
    snapshot: {
      symbol: "ETH/USDT", candleTime: Date.UTC(2025, 0, 1), price: 3000, sma20: 2950, sma50: 2900, rsi14: 55,
      macd: { macd: 1, signal: 0.5, histogram: 0.5 }, bollinger: { upper: 3100, middle: 2950, lower: 2800 },
      atr14: 40, volatility: 0.02, signal: "neutral", signalScore: 0.1,
    },
    research: { source: "none", available: false, signals: [], note: "none" },
    portfolio: { cash: 10_000, equity: 10_000, dailyPnl: 0, exposurePct: 0, realizedPnl: 0, recent: [], positions: [] },
    limits,
  };
}

const holdReply = () => decisionToAgentReply({ symbol: "ETH/USDT", action: "hold", sizePct: 0, confidence: 0.5, reasons: ["flat"] });

/** A model that never answers (and ignores the abort signal), as a hung router call would. */
function hungModel(): ModelV2 {
  const m = scriptedModel("hung", holdReply);
  return { ...m, doStream: () => new Promise<never>(() => {}) };
}

/** A full garbage collection, without starting the test process with --expose-gc. */
function fullGc(): void {
  setFlagsFromString("--expose-gc");
  (runInNewContext("gc") as () => void)();
}

describe("agent memory under a burst of decisions", () => {
  let redis: Redis;
  let agent: TradingAgent;
  beforeAll(async () => {
    redis = await testRedis();
    agent = new TradingAgent(new RedisKeyValueProvider(redis, "burst:mem:"), { auditTtlSeconds: 600 });
    await agent.start();
  });
  afterAll(async () => {
    await agent.stop();
    await redis.quit();
  });

  it("holds each decision only while it runs, and nothing once the burst is over", async () => {
    const idle = await agent.held();
    const burst = Array.from({ length: 40 }, (_, i) => agent.decide(inputs(`b${i}`), scriptedModel("test", holdReply)));
    // Two of them run on a model that hangs: their deadline passes, and they must not stay held.
    const hung = [agent.decide(inputs("hung1"), hungModel(), 30), agent.decide(inputs("hung2"), hungModel(), 30)];
    const during = await agent.held();
    expect(during.runs).toBe(42);
    const outcomes = await Promise.all([...burst, ...hung]);
    expect(outcomes.filter((o) => o.ok)).toHaveLength(40);
    expect(outcomes.slice(40).map((o) => !o.ok && o.error)).toEqual(["no decision within 30 ms", "no decision within 30 ms"]);

    await agent.settled();
    const after = await agent.held();
    expect(after).toMatchObject({ runs: 0, cleanups: 0, auditWrites: 0, contexts: 0, queues: idle.queues });
    expect(after.memoryKeys).toBeLessThanOrEqual(1); // core's contexts index, empty
    // One audit record per decision, the hung ones included, each with the TTL it was given.
    expect(await redis.keys("burst:mem:*")).toHaveLength(42);
    const ttl = await redis.ttl("burst:mem:audit:hung1");
    expect(ttl).toBeGreaterThan(500);
    expect(ttl).toBeLessThanOrEqual(600);
  });

  it("lets the garbage collector have every finished decision's model and prompt", async () => {
    const refs: WeakRef<object>[] = [];
    for (let i = 0; i < 20; i++) {
      const model = scriptedModel("test", holdReply);
      refs.push(new WeakRef(model));
      expect((await agent.decide(inputs(`gc${i}`), model)).ok).toBe(true);
    }
    await agent.settled();
    // WeakRefs hold their target until the current job ends: collect on a later turn.
    await new Promise((r) => setTimeout(r, 0));
    fullGc();
    const alive = refs.filter((r) => r.deref() !== undefined).length;
    // On Node 20, core's abort listeners kept every one of them (20 of 20) before the fix.
    expect(alive).toBeLessThanOrEqual(1);
  });
});

describe("agent options", () => {
  it("refuses an audit TTL that is not a positive number of seconds", () => {
    const store = { get: async () => null } as never;
    expect(() => new TradingAgent(store, { auditTtlSeconds: 0 })).toThrow(/auditTtlSeconds must be .* at least 1/);
    expect(() => new TradingAgent(store, { auditTtlSeconds: Number.NaN })).toThrow(/auditTtlSeconds/);
  });
});
