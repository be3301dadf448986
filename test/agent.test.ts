import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Redis } from "ioredis";
import { testRedis } from "./support/redis.js";
import { TradingAgent, type DecisionInputs } from "../src/agent/tradingAgent.js";
import { RedisKeyValueProvider } from "../src/agent/redisKeyValue.js";
import { readAudit } from "../src/agent/auditRecord.js";
import { decisionToAgentReply, scriptedModel } from "../src/agent/scriptedModel.js";
import { decideOffline } from "../src/engine/offlineEngine.js";

const limits = {
  maxPositionPct: 10, maxExposurePct: 50, maxLeverage: 1, maxOpenPositions: 3, dailyLossLimitPct: 5,
  defaultStopLossPct: 3, maxStopLossPct: 10, defaultTakeProfitPct: 6, minOrderNotional: 10,
};

function inputs(decisionId: string, held = false): DecisionInputs {
  return {
    decisionId,
    symbol: "BTC/USDT",
    snapshot: {
      symbol: "BTC/USDT", candleTime: Date.UTC(2025, 0, 1), price: 100, sma20: 98, sma50: 95, rsi14: 60,
      macd: { macd: 1, signal: 0.5, histogram: 0.5 }, bollinger: { upper: 105, middle: 98, lower: 91 },
      atr14: 2, volatility: 0.01, signal: "bullish", signalScore: 0.6,
    },
    research: { source: "none", available: false, signals: [], note: "none" },
    portfolio: {
      cash: 10_000, equity: 10_000, dailyPnl: 0, exposurePct: held ? 5 : 0, realizedPnl: 0, recent: [],
      positions: held ? [{ symbol: "BTC/USDT", side: "long", qty: 5, entryPrice: 100, stopLoss: 97, takeProfit: 106, openedAt: 0 }] : [],
    },
    limits,
  };
}

describe("trading agent on @daydreamsai/core", () => {
  let redis: Redis;
  let agent: TradingAgent;
  let store: RedisKeyValueProvider;
  beforeAll(async () => {
    redis = await testRedis();
    store = new RedisKeyValueProvider(redis, "t:mem:");
    agent = new TradingAgent(store);
    await agent.start();
  });
  afterAll(async () => {
    await agent.stop();
    await redis.quit();
  });

  it("turns an ExecuteTrade action into a validated decision with one model call", async () => {
    let prompt = "";
    const model = scriptedModel("test", () =>
      decisionToAgentReply({ symbol: "BTC/USDT", action: "buy", sizePct: 7, confidence: 0.8, reasons: ["uptrend"], stopLossPct: 2 }),
    );
    const spy = { ...model, doStream: async (o: Parameters<typeof model.doStream>[0]) => { prompt = JSON.stringify(o.prompt); return model.doStream(o); } };
    const out = await agent.decide(inputs("d1"), spy);
    expect(out).toEqual({
      ok: true,
      modelCalls: 1,
      decision: { symbol: "BTC/USDT", action: "buy", sizePct: 7, confidence: 0.8, reasons: ["uptrend"], stopLossPct: 2 },
    });
    // The prompt carries every context the decision is made from.
    for (const part of ["sma20", "No research".slice(0, 2), "maxPositionPct", "positions"]) expect(prompt).toContain(part);
  });

  it("maps Rebalance and RiskManagement onto trades against the held position", async () => {
    const rebalance = scriptedModel("test", () =>
      `<response><reasoning>x</reasoning><action_call name="Rebalance">{"targetPct":2,"confidence":0.6,"reasons":["trim"]}</action_call></response>`);
    const r = await agent.decide(inputs("d2", true), rebalance);
    expect(r.ok && r.decision.action).toBe("sell");
    expect(r.ok && r.decision.sizePct).toBeCloseTo(3, 6); // held 5% of equity, target 2%
    const reduce = scriptedModel("test", () =>
      `<response><action_call name="RiskManagement">{"stance":"reduce-exposure","confidence":0.7,"reasons":["volatile"]}</action_call></response>`);
    const m = await agent.decide(inputs("d3", true), reduce);
    expect(m.ok && m.decision).toMatchObject({ action: "sell", sizePct: 2.5 });
  });

  it("reports a reply that breaks the schema as a failed call, never a decision", async () => {
    const bad = scriptedModel("test", () =>
      `<response><action_call name="ExecuteTrade">{"side":"buy","sizePct":500,"confidence":3,"reasons":[]}</action_call></response>`);
    const out = await agent.decide(inputs("d4"), bad);
    expect(out.ok).toBe(false);
    expect(out.modelCalls).toBe(1);
  });

  it("reports prose with no action as a failed call", async () => {
    const prose = scriptedModel("test", () => "I think you should buy some bitcoin!");
    const out = await agent.decide(inputs("d5"), prose);
    expect(out.ok).toBe(false);
    expect(out.modelCalls).toBe(1);
  });

  it("writes one audit record per decision, holding its prompt and reply, and nothing else to Redis", async () => {
    const model = scriptedModel("test", () => decisionToAgentReply({ symbol: "BTC/USDT", action: "hold", sizePct: 0, confidence: 0.5, reasons: ["flat"] }));
    const before = new Set(await redis.keys("t:mem:*"));
    for (let i = 0; i < 12; i++) expect((await agent.decide(inputs(`many${i}`), model)).ok).toBe(true);
    await agent.settled();
    const added = (await redis.keys("t:mem:*")).filter((k) => !before.has(k)).sort();
    expect(added).toEqual(Array.from({ length: 12 }, (_, i) => `t:mem:audit:many${i}`).sort());
    const audit = await readAudit(store, "many11");
    expect(audit).toMatchObject({ decisionId: "many11", symbol: "BTC/USDT", modelId: "test", modelCalls: 1, outcome: { ok: true, decision: { action: "hold" } } });
    // The prompt as the model saw it: every context rendered, and the reply as the model gave it.
    for (const part of ["Decision id many11", "sma20", "maxPositionPct", "positions", "RiskManagement"]) expect(audit!.prompt).toContain(part);
    expect(audit!.reply).toContain(`<action_call name="RiskManagement">`);
    expect(await redis.ttl("t:mem:audit:many11")).toBeGreaterThan(3 * 24 * 3600 - 60);
    // Core's memory never reaches Redis: no index, no context state, no working memory.
    expect(await redis.keys("t:mem:*context*")).toEqual([]);
    expect(await redis.keys("t:mem:working-memory*")).toEqual([]);
  });

  it("keeps the audit of a failed call too, with the reply that failed", async () => {
    await agent.decide(inputs("prose1"), scriptedModel("test", () => "I think you should buy some bitcoin!"));
    await agent.settled();
    const audit = await readAudit(store, "prose1");
    expect(audit?.outcome).toEqual({ ok: false, error: "invalid reply: no action call in the reply" });
    expect(audit?.reply).toBe("I think you should buy some bitcoin!");
    expect(audit?.prompt).toContain("Decision id prose1");
  });
});

describe("a rule that decides without a language model (the offline engine)", () => {
  let redis: Redis;
  let agent: TradingAgent;
  let store: RedisKeyValueProvider;
  beforeAll(async () => {
    redis = await testRedis();
    store = new RedisKeyValueProvider(redis, "t3:mem:");
    agent = new TradingAgent(store);
    await agent.start();
  });
  afterAll(async () => {
    await agent.stop();
    await redis.quit();
  });

  it("decides as the same decision would through core, validated by the same schema, with the same audit record", async () => {
    const i = inputs("direct1");
    const engine = (x: DecisionInputs) => decideOffline(x.snapshot, undefined, x.limits);
    const direct = await agent.decideWithout(i, "offline-engine", engine);
    const viaCore = await agent.decide(inputs("core1"), scriptedModel("offline-engine", () => decisionToAgentReply(engine(i))));
    expect(direct).toEqual(viaCore.ok ? { ...viaCore, modelCalls: 0 } : viaCore);
    await agent.settled();
    const audit = await readAudit(store, "direct1");
    expect(audit).toMatchObject({ decisionId: "direct1", modelId: "offline-engine", modelCalls: 0, outcome: { ok: true } });
    // What the rule was shown, and what it answered.
    for (const part of ["sma20", "maxPositionPct", "positions"]) expect(audit!.prompt).toContain(part);
    expect(JSON.parse(audit!.reply)).toMatchObject({ symbol: "BTC/USDT" });
    // Nothing of core's run is held afterwards.
    expect(await agent.held()).toMatchObject({ runs: 0, cleanups: 0 });
  });

  it("reports a decision that breaks the schema as a failure, never a decision", async () => {
    const out = await agent.decideWithout(inputs("direct2"), "offline-engine", () => ({ symbol: "BTC/USDT", action: "buy", sizePct: 500, confidence: 2, reasons: [] }));
    expect(out.ok).toBe(false);
    expect(out.ok ? "" : out.error).toMatch(/^invalid decision: /);
  });
});

describe("malformed replies", () => {
  it("never become decisions and never crash the process", async () => {
    const redis = await testRedis();
    const agent = new TradingAgent(new RedisKeyValueProvider(redis, "t2:mem:"));
    await agent.start();
    const replies = [
      `<response><action_call name="ExecuteTrade">{not json</action_call></response>`,
      `<response><action_call name="ExecuteTrade">{"side":"short","sizePct":5,"confidence":0.5,"reasons":["x"]}</action_call></response>`,
      `<response><action_call name="ExecuteTrade">{"side":"buy","sizePct":"lots","confidence":0.5,"reasons":["x"]}</action_call></response>`,
      `<response><action_call name="LaunchRocket">{}</action_call></response>`,
      ``,
    ];
    for (const [n, reply] of replies.entries()) {
      const out = await agent.decide(inputs(`bad${n}`), scriptedModel("test", () => reply));
      expect(out.ok, reply).toBe(false);
      expect(out.modelCalls).toBe(1);
    }
    await agent.stop();
    await redis.quit();
  });
});
