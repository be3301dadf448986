// The router's pure policies: catalogue and tiers, selection, the signal gate, failure classes and
// the retry policy, and the parsing of batched replies.
import { describe, expect, it } from "vitest";
import { loadConfig } from "../src/config/config.js";
import type { IndicatorSnapshot, Position } from "../src/domain/types.js";
import { batchPrompt, parseBatchReply, type BatchItem } from "../src/models/batchPrompt.js";
import { buildCatalogue } from "../src/models/catalogue.js";
import { adviseAfter, classify, type CallFacts } from "../src/models/failures.js";
import { parseRetryAfter } from "../src/payments/refusals.js";
import { assess, orderForTier } from "../src/models/selection.js";
import { signalGate } from "../src/models/signalGate.js";

const snap = (over: Partial<IndicatorSnapshot> = {}): IndicatorSnapshot => ({
  symbol: "BTC/USDT",
  candleTime: Date.UTC(2025, 0, 1),
  price: 100,
  sma20: 99,
  sma50: 95,
  rsi14: 58,
  macd: { macd: 1, signal: 0.5, histogram: 0.5 },
  bollinger: { upper: 105, middle: 99, lower: 93 },
  atr14: 2,
  volatility: 0.01,
  signal: "bullish",
  signalScore: 0.6,
  ...over,
});

const catalogue = buildCatalogue({
  primary: "openai/gpt-4o",
  fallbacks: ["anthropic/claude-3-5-sonnet", "google-vertex/gemini-2.5-flash", "groq/llama-3.1-8b-instant"],
  prices: {},
  defaultPriceUsdc: 0.04,
  timeouts: { "openai/gpt-4o": 15_000 },
  defaultTimeoutMs: 20_000,
});

describe("the catalogue", () => {
  it("prices and tiers the design's models, and honours MODEL_PRICES and MODEL_TIMEOUTS", () => {
    expect(catalogue.map((m) => [m.id, m.tier, m.listPriceMicro, m.timeoutMs])).toEqual([
      ["openai/gpt-4o", "premium", 80_000, 15_000],
      ["anthropic/claude-3-5-sonnet", "standard", 50_000, 20_000],
      ["google-vertex/gemini-2.5-flash", "fast", 20_000, 20_000],
      ["groq/llama-3.1-8b-instant", "economy", 10_000, 20_000],
    ]);
    const custom = buildCatalogue({ primary: "x/new-model", fallbacks: [], prices: { "x/new-model": 0.001 }, defaultPriceUsdc: 0.04, timeouts: {}, defaultTimeoutMs: 5000 });
    expect(custom[0]).toMatchObject({ tier: "economy", listPriceMicro: 1000, priceFrom: "configured" });
  });

  it("prices from the router's live catalogue, and marks a model it no longer offers", () => {
    const live = buildCatalogue({
      primary: "openai:gpt-5",
      fallbacks: ["google:gemini-2.5-flash", "gone:model"],
      prices: { "google:gemini-2.5-flash": 0.03 },
      defaultPriceUsdc: 0.04,
      timeouts: {},
      defaultTimeoutMs: 5000,
      offered: [{ id: "openai:gpt-5", priceMicro: 20_063 }, { id: "google:gemini-2.5-flash", priceMicro: 2_027 }, { id: "auto" }],
    });
    expect(live.map((m) => [m.id, m.listPriceMicro, m.priceFrom, m.tier, m.offered])).toEqual([
      // Tiers by rank of price among the models offered: cheapest economy, dearest premium.
      ["openai:gpt-5", 20_063, "catalogue", "economy", undefined],
      // MODEL_PRICES wins over the catalogue.
      ["google:gemini-2.5-flash", 30_000, "configured", "premium", undefined],
      ["gone:model", 40_000, "estimate", "standard", false],
    ]);
  });

  it("reads MODEL_PRICES and MODEL_TIMEOUTS from config, and refuses models outside the chain", () => {
    const ok = loadConfig({ PRIMARY_MODEL: "openai/gpt-4o", FALLBACK_MODELS: "groq/llama-3.1-8b-instant", MODEL_PRICES: "openai/gpt-4o=0.12, groq/llama-3.1-8b-instant=0.005", MODEL_TIMEOUTS: "openai/gpt-4o=9000" });
    expect(ok.ok && ok.config.routing).toMatchObject({ modelPrices: { "openai/gpt-4o": 0.12, "groq/llama-3.1-8b-instant": 0.005 }, modelTimeouts: { "openai/gpt-4o": 9000 } });
    const bad = loadConfig({ PRIMARY_MODEL: "openai/gpt-4o", FALLBACK_MODELS: "groq/llama-3.1-8b-instant", MODEL_PRICES: "openai/gpt-5=0.2", MODEL_TIMEOUTS: "openai/gpt-4o=fast", BATCH_DECISIONS: "on", DECISION_CACHE_TTL_SECONDS: "0" });
    expect(bad.ok).toBe(false);
    const message = bad.ok ? "" : bad.message;
    expect(message).toMatch(/MODEL_TIMEOUTS: expected a comma-separated list of MODEL=VALUE pairs/);
    expect(message).toMatch(/MODEL_PRICES: openai\/gpt-5 is not PRIMARY_MODEL or in FALLBACK_MODELS/);
    expect(message).toMatch(/BATCH_DECISIONS: "on" hands each symbol its answer through the decision cache/);
  });
});

describe("model selection", () => {
  it("sends a routine scheduled decision on a clear signal to the economy tier", () => {
    const a = assess({ trigger: "schedule", snapshot: snap(), holding: false });
    expect(a).toMatchObject({ type: "entry", urgency: "normal", complexity: "low", tier: "economy" });
    expect(orderForTier(catalogue, a.tier).map((m) => m.id)[0]).toBe("groq/llama-3.1-8b-instant");
  });

  it("pays for more on chat, urgency, complexity and an unsure last decision", () => {
    expect(assess({ trigger: "chat", snapshot: snap(), holding: false }).tier).toBe("fast");
    expect(assess({ trigger: "schedule", snapshot: snap({ signalScore: 0.1 }), holding: false }).tier).toBe("fast");
    expect(assess({ trigger: "schedule", snapshot: snap(), holding: false, lastConfidence: 0.4 }).tier).toBe("fast");
    const exit = assess({ trigger: "schedule", snapshot: snap({ signal: "bearish", signalScore: -0.6 }), holding: true });
    expect(exit).toMatchObject({ type: "manage-position", urgency: "high", tier: "fast" });
    const storm = assess({ trigger: "chat", snapshot: snap({ signalScore: 0.05, volatility: 0.06, price: 120 }), holding: false, lastConfidence: 0.3 });
    expect(storm).toMatchObject({ urgency: "high", complexity: "high", tier: "premium" });
    expect(storm.why.length).toBeGreaterThanOrEqual(4);
  });

  it("orders fallbacks by distance in tier, cheaper first; a pinned model goes first", () => {
    expect(orderForTier(catalogue, "standard").map((m) => m.id)).toEqual([
      "anthropic/claude-3-5-sonnet",
      "google-vertex/gemini-2.5-flash",
      "openai/gpt-4o",
      "groq/llama-3.1-8b-instant",
    ]);
    expect(orderForTier(catalogue, "economy", "openai/gpt-4o").map((m) => m.id)).toEqual([
      "openai/gpt-4o",
      "anthropic/claude-3-5-sonnet",
      "google-vertex/gemini-2.5-flash",
      "groq/llama-3.1-8b-instant",
    ]);
    // Nothing good enough: the best there is.
    expect(orderForTier(catalogue.slice(2), "premium")[0]!.id).toBe("google-vertex/gemini-2.5-flash");
  });
});

describe("the signal gate", () => {
  it("pays on a decisive score, an extreme RSI, or a threatened position, and not otherwise", () => {
    expect(signalGate(snap({ signalScore: 0.5 }), false, 0.3).pay).toBe(true);
    expect(signalGate(snap({ signalScore: -0.5, signal: "bearish" }), false, 0.3).pay).toBe(true);
    expect(signalGate(snap({ signalScore: 0.1, rsi14: 25 }), false, 0.3).pay).toBe(true);
    expect(signalGate(snap({ signalScore: -0.1, signal: "bearish" }), true, 0.3).pay).toBe(true);
    const quiet = signalGate(snap({ signalScore: 0.1, signal: "neutral" }), false, 0.3);
    expect(quiet).toEqual({ pay: false, why: expect.stringMatching(/signal score 0\.10 is under 0\.3/) });
  });
});

describe("failure classes and the retry policy", () => {
  const facts = (f: Partial<CallFacts>): CallFacts => ({ ok: false, timedOut: false, paymentSent: false, paymentRefused: false, ...f });

  it("classifies each way a call fails", () => {
    expect(classify(facts({ status: 500 }))).toBe("server");
    expect(classify(facts({ status: 503, timedOut: true }))).toBe("server");
    expect(classify(facts({}))).toBe("server");
    expect(classify(facts({ status: 429 }))).toBe("rate-limited");
    expect(classify(facts({ timedOut: true }))).toBe("timeout");
    expect(classify(facts({ status: 402, paymentSent: true, paymentRefused: true }))).toBe("payment");
    expect(classify(facts({ status: 401 }))).toBe("auth");
    expect(classify(facts({ status: 404 }))).toBe("unavailable");
    expect(classify(facts({ status: 200, paymentSent: true }))).toBe("invalid-reply");
    expect(classify(facts({ guard: "budget" }))).toBe("over-budget");
    expect(classify(facts({ guard: "price" }))).toBe("over-price");
    expect(classify(facts({ ok: true, status: 200 }))).toBeUndefined();
  });

  it("retries only an unpaid server error, once; never a payment or a paid call", () => {
    expect(adviseAfter("server", facts({ status: 500 }), 1)).toMatchObject({ retrySameModel: true, breaker: "failure" });
    expect(adviseAfter("server", facts({ status: 500 }), 2).retrySameModel).toBe(false);
    expect(adviseAfter("server", facts({ status: 500, paymentSent: true }), 1).retrySameModel).toBe(false);
    for (const cls of ["payment", "invalid-reply", "timeout", "rate-limited"] as const) {
      expect(adviseAfter(cls, facts({ paymentSent: true }), 1).retrySameModel, cls).toBe(false);
    }
    expect(adviseAfter("rate-limited", facts({ status: 429, retryAfterMs: 30_000 }), 1)).toMatchObject({ breaker: "cool-down", coolDownMs: 30_000 });
    expect(adviseAfter("rate-limited", facts({ status: 429 }), 1).coolDownMs).toBeUndefined();
    expect(adviseAfter("over-budget", facts({ guard: "budget" }), 1)).toMatchObject({ stopPaidCalls: true, breaker: "none" });
    expect(adviseAfter("auth", facts({ status: 401 }), 1).stopPaidCalls).toBe(true);
    expect(adviseAfter("over-price", facts({ guard: "price" }), 1)).toMatchObject({ stopPaidCalls: false, breaker: "none" });
  });

  it("reads Retry-After as seconds or a date", () => {
    expect(parseRetryAfter("2")).toBe(2000);
    expect(parseRetryAfter(new Date(10_000).toUTCString(), 4_000)).toBe(6000);
    expect(parseRetryAfter("soon")).toBeUndefined();
    expect(parseRetryAfter(null)).toBeUndefined();
  });
});

describe("batched replies", () => {
  const held: Position = { symbol: "ETH/USDT", side: "long", qty: 10, entryPrice: 100, stopLoss: 95, takeProfit: 110, openedAt: 0 };
  const items: BatchItem[] = [
    { symbol: "BTC/USDT", snapshot: snap() },
    { symbol: "ETH/USDT", snapshot: snap({ symbol: "ETH/USDT" }), position: held },
    { symbol: "DOGE/USDT", snapshot: snap({ symbol: "DOGE/USDT" }) },
    { symbol: "SOL/USDT", snapshot: snap({ symbol: "SOL/USDT" }) },
  ];
  const ctx = { equity: 10_000, cash: 9_000, exposurePct: 10, limits: { maxPositionPct: 10, maxExposurePct: 50, maxLeverage: 1, maxOpenPositions: 3, dailyLossLimitPct: 5, defaultStopLossPct: 3, maxStopLossPct: 10, defaultTakeProfitPct: 6, minOrderNotional: 10 } };
  const call = (name: string, body: unknown) => `<action_call name="${name}">${typeof body === "string" ? body : JSON.stringify(body)}</action_call>`;

  it("names every symbol in the prompt", () => {
    const prompt = batchPrompt(items, ctx);
    expect(prompt[1]!.content).toContain("Symbols to decide: BTC/USDT, ETH/USDT, DOGE/USDT, SOL/USDT");
    expect(prompt[0]!.content).toContain('put the symbol in its JSON as "symbol"');
  });

  it("validates each symbol's answer on its own", () => {
    const reply = `<response><reasoning>x</reasoning>${[
      call("ExecuteTrade", { symbol: "BTC/USDT", side: "buy", sizePct: 5, confidence: 0.7, reasons: ["up"] }),
      call("RiskManagement", { symbol: "ETH/USDT", stance: "reduce-exposure", confidence: 0.6, reasons: ["risk"] }),
      call("ExecuteTrade", { symbol: "DOGE/USDT", side: "buy", sizePct: 500, confidence: 0.7, reasons: ["moon"] }),
      call("ExecuteTrade", { symbol: "XRP/USDT", side: "buy", sizePct: 5, confidence: 0.7, reasons: ["not asked"] }),
      call("ExecuteTrade", `{"symbol":"SOL/USDT","side":"buy"`),
    ].join("")}</response>`;
    const v = parseBatchReply(reply, items, ctx);
    expect(v.get("BTC/USDT")).toEqual({ ok: true, decision: { symbol: "BTC/USDT", action: "buy", sizePct: 5, confidence: 0.7, reasons: ["up"] } });
    // Holding 10 ETH at 100 on 10,000 equity is 10%: reduce-exposure sells half of it.
    expect(v.get("ETH/USDT")).toEqual({ ok: true, decision: { symbol: "ETH/USDT", action: "sell", sizePct: 5, confidence: 0.6, reasons: ["risk"] } });
    expect(v.get("DOGE/USDT")).toMatchObject({ ok: false, error: expect.stringMatching(/invalid reply for DOGE\/USDT: ExecuteTrade sizePct/) });
    expect(v.get("SOL/USDT")).toMatchObject({ ok: false, error: expect.stringMatching(/no valid action for SOL\/USDT/) });
    expect([...v.keys()]).not.toContain("XRP/USDT");
  });

  it("refuses two answers for one symbol, and an unknown action", () => {
    const twice = call("ClosePosition", { symbol: "BTC/USDT", confidence: 0.5, reasons: ["a"] }).repeat(2);
    const unknown = call("LaunchRocket", { symbol: "ETH/USDT" });
    const v = parseBatchReply(`<response>${twice}${unknown}</response>`, items.slice(0, 2), ctx);
    expect(v.get("BTC/USDT")).toMatchObject({ ok: false, error: expect.stringMatching(/2 actions for BTC\/USDT/) });
    expect(v.get("ETH/USDT")).toMatchObject({ ok: false, error: expect.stringMatching(/unknown action "LaunchRocket"/) });
  });
});
