// The caps a chain of models cannot get around: the per-decision ceiling when every model answers
// badly (each bad reply paid), the breakers those bad replies open, and the API-key mode's hold.
import { afterEach, describe, expect, it } from "vitest";
import { loadConfig } from "../src/config/config.js";
import { dayKey } from "../src/ledger/ledger.js";
import { CLAUDE, GEMINI, GPT, LLAMA, STANDIN_PRICES, TEST_API_KEY, TEST_WALLET_KEY, startRouterApp, type RouterTestApp } from "./support/routerApp.js";

let t: RouterTestApp | undefined;
afterEach(async () => {
  await t?.stop();
  t = undefined;
});

describe("MAX_SPEND_PER_DECISION_USDC", () => {
  it("caps what the fallback chain pays for one decision when every model replies invalidly, and the bad replies open the breakers", async () => {
    const ceiling = 0.05;
    t = await startRouterApp((c) => {
      c.routing.maxSpendPerDecision = ceiling;
      c.routing.modelPrices = { ...STANDIN_PRICES };
      c.routing.breakerFailures = 2;
      c.routing.breakerCooldownMs = 3_600_000;
      // The whole chain may be asked here: this test is about the ceiling (the default stops sooner, below).
      c.routing.invalidReplyRetries = 3;
    });
    for (const m of [GPT, CLAUDE, GEMINI, LLAMA]) t.standIn.setFault(m, { kind: "schema" });
    await t.app.services.state.chooseModel(GPT);
    const records = [];
    for (let i = 0; i < 5; i++) {
      t.clock.advance(1);
      records.push(await t.app.decide({ decisionId: `bad:${i}`, symbol: "BTC/USDT", trigger: "chat" }));
    }
    // Each decision paid at most the ceiling; none traded on a bad reply.
    for (const r of records) {
      expect(r.costMicro).toBeLessThanOrEqual(ceiling * 1_000_000);
      expect(r.model).toBe("offline-engine");
    }
    // The first: gpt-4o paid (0.0313); claude (0.0211) would cross the ceiling and is not asked; the cheaper ones fit.
    expect(records[0]!.attempts!.map((a) => [a.model, a.failure])).toEqual([
      [GPT, "invalid-reply"],
      [CLAUDE, "over-ceiling"],
      [GEMINI, "invalid-reply"],
      [LLAMA, "invalid-reply"],
    ]);
    expect(records[0]!.costMicro).toBe(31_337 + 11_017 + 4_021);
    // Two bad replies each open the breakers: the third decision finds only claude still closed,
    // and after its own two bad replies the fifth decision pays nothing at all.
    expect(records[2]!.attempts!.filter((a) => !a.skipped)).toEqual([expect.objectContaining({ model: CLAUDE, failure: "invalid-reply" })]);
    expect(records[4]!.costMicro).toBe(0);
    expect(records[4]!.attempts!.every((a) => a.skipped)).toBe(true);
    // What the stand-in was paid is what is booked, and it is bounded by ceiling x decisions.
    const paid = t.standIn.paidAtomic();
    expect(BigInt(await t.app.services.ledger.spentOn(dayKey(t.clock.now)))).toBe(paid);
    expect(paid).toBe(2n * (31_337n + 11_017n + 4_021n) + 2n * 21_113n);
    expect((await t.run("/model")).text).toMatch(/openai\/gpt-4o[^\n]*cooling down/);
  }, 60_000);

  it("after an invalid reply asks at most one more paid model (INVALID_REPLY_RETRIES), then the offline engine decides", async () => {
    t = await startRouterApp((c) => {
      c.routing.breakerFailures = 100;
    });
    for (const m of [GPT, CLAUDE, GEMINI, LLAMA]) t.standIn.setFault(m, { kind: "schema" });
    await t.app.services.state.chooseModel(GPT);
    for (let i = 0; i < 3; i++) {
      t.clock.advance(1);
      const before = t.standIn.payments.length;
      const r = await t.app.decide({ decisionId: `hostile:${i}`, symbol: "BTC/USDT", trigger: "chat" });
      expect(t.standIn.payments.length - before).toBe(2);
      expect(r.model).toBe("offline-engine");
      expect(r.attempts!.map((a) => a.model)).toEqual([GPT, CLAUDE]);
      expect(r.costMicro).toBe(31_337 + 21_113);
    }
    expect(t.standIn.calls.filter((c) => c.model === GEMINI || c.model === LLAMA)).toEqual([]);
    expect(BigInt(await t.app.services.ledger.spentOn(dayKey(t.clock.now)))).toBe(t.standIn.paidAtomic());
  }, 60_000);
});

describe("API-key mode", () => {
  it("holds the chosen model's price, not MAX_PRICE_PER_CALL_USDC, and books the reported usage.cost", async () => {
    t = await startRouterApp((c) => {
      c.router.auth = "api-key";
      c.router.apiKey = TEST_API_KEY;
      c.router.privateKey = undefined;
      c.routing.maxPricePerCall = 0.25;
      c.routing.modelPrices = { [GPT]: 0.03 };
      // Below one MAX_PRICE_PER_CALL_USDC hold, above one call: before, no call was ever made.
      c.balance.dailyBudget = 0.07;
    });
    await t.app.services.state.chooseModel(GPT);
    const first = await t.app.decide({ decisionId: "key:1", symbol: "BTC/USDT", trigger: "chat" });
    t.clock.advance(1);
    const second = await t.app.decide({ decisionId: "key:2", symbol: "BTC/USDT", trigger: "chat" });
    t.clock.advance(1);
    const third = await t.app.decide({ decisionId: "key:3", symbol: "BTC/USDT", trigger: "chat" });
    expect([first.model, second.model]).toEqual([GPT, GPT]);
    expect([first.costMicro, second.costMicro]).toEqual([31_337, 31_337]);
    // The third would need 0.03 held on top of 0.0627 spent: over the 0.07 cap, refused before calling.
    expect(third.freeBecause).toBe("budget");
    expect(t.standIn.callsTo(GPT)).toHaveLength(2);
    expect(await t.app.services.ledger.spentOn(dayKey(t.clock.now))).toBe(62_674);
  });

  it("refuses a cap below one call's price at start, saying which cap and which price", () => {
    const base = { DECISION_MODEL: "router", DREAMS_ROUTER_API_KEY: TEST_API_KEY, FALLBACK_MODELS: LLAMA };
    const low = loadConfig({ ...base, DAILY_BUDGET_USDC: "0.005" });
    expect(low.ok).toBe(false);
    expect(!low.ok && low.message).toMatch(/DAILY_BUDGET_USDC: 0\.005 is below the price of one call to the cheapest model \(groq\/llama-3\.1-8b-instant, 0\.01 USDC\): no model call could ever be made; raise it to at least 0\.01/);
    const ceiling = loadConfig({ ...base, X402_PRIVATE_KEY: TEST_WALLET_KEY, MAX_SPEND_PER_DECISION_USDC: "0.001" });
    expect(!ceiling.ok && ceiling.message).toMatch(/MAX_SPEND_PER_DECISION_USDC: 0\.001 is below the price/);
    expect(loadConfig({ ...base, DAILY_BUDGET_USDC: "0.01" }).ok).toBe(true);
  });
});
