// The fallback chain, the retry policy and the circuit breaker, with the real provider and the
// router stand-in failing in each way a gateway or model fails.
import { afterEach, describe, expect, it } from "vitest";
import { buyReply } from "./support/app.js";
import { CLAUDE, GEMINI, GPT, LLAMA, startRouterApp, type RouterTestApp } from "./support/routerApp.js";
import { holdReply, type StandInFault } from "./support/routerStandIn.js";

let t: RouterTestApp | undefined;
afterEach(async () => {
  await t?.stop();
  t = undefined;
});

const latest = async () => (await t!.app.services.ledger.recent(1))[0]!;
/** /decide, a millisecond after the previous one, so the ledger's newest record is this one. */
const decide = () => {
  t!.clock.advance(1);
  return t!.run("/decide BTC");
};

describe("a primary that fails, and the next model answering", () => {
  const cases: { fault: StandInFault; failure: string; calls: number; paid: boolean }[] = [
    { fault: { kind: "http-500" }, failure: "server", calls: 2, paid: false },
    { fault: { kind: "http-429", retryAfterSeconds: 30 }, failure: "rate-limited", calls: 1, paid: false },
    { fault: { kind: "hang" }, failure: "timeout", calls: 1, paid: false },
    { fault: { kind: "malformed" }, failure: "invalid-reply", calls: 2, paid: true },
    { fault: { kind: "schema" }, failure: "invalid-reply", calls: 2, paid: true },
    // The gateway refused a valid payment: nothing was taken, so nothing is booked.
    { fault: { kind: "402-repeat" }, failure: "payment", calls: 2, paid: false },
  ];

  it("falls back on each injected failure, retries only an unpaid server error, and never trades a bad reply", async () => {
    t = await startRouterApp((c) => {
      // Generous for a loaded machine; the hang case waits it out.
      c.routing.modelTimeouts = { [GPT]: 2500 };
      c.routing.breakerFailures = 100;
    });
    await t.run(`/model ${GPT}`);
    for (const c of cases) {
      t.standIn.calls.length = 0;
      const paidBefore = t.standIn.payments.length;
      t.standIn.setFault(GPT, c.fault);
      const reply = await decide();
      const record = await latest();
      const name = c.fault.kind;
      expect(record.model, name).toBe(CLAUDE);
      expect(record.action, name).toBe("hold");
      expect(reply.text, name).toMatch(new RegExp(`Model: ${CLAUDE}[\\s\\S]*Note: model notes: ${GPT}: ${c.failure}`));
      if (c.fault.kind === "402-repeat") expect(reply.text, name).toMatch(/refused the payment[^\n]*nothing was paid/);
      const primary = record.attempts!.filter((a) => a.model === GPT);
      expect(primary.map((a) => a.failure), name).toEqual(c.fault.kind === "http-500" ? ["server", "server"] : [c.failure]);
      expect(t.standIn.callsTo(GPT), name).toHaveLength(c.calls);
      // Money: a failure before payment costs nothing; a paid bad reply is booked as paid.
      const primaryCost = primary.reduce((s, a) => s + a.costMicro, 0);
      expect(primaryCost, name).toBe(c.paid ? 31_337 : 0);
      expect(record.costMicro, name).toBe(primaryCost + 21_113);
      if (c.fault.kind === "malformed" || c.fault.kind === "schema") expect(t.standIn.payments.length - paidBefore, name).toBe(2);
      // The 402 to a valid payment: the gateway took nothing; the ledger keeps it as refused, not spent.
      if (c.fault.kind === "402-repeat") {
        expect(t.standIn.refused.at(-1)!.reason).toMatch(/injected/);
        expect((await t.app.services.ledger.refusals(0, Date.now() * 2)).map((r) => r.model)).toEqual([GPT]);
      }
      await t.app.redis.del(`router:breaker:${GPT}`);
    }
    expect(await t.app.services.exchange.trades(100)).toEqual([]);
    // Every payment the stand-in took is in the ledger, and nothing else.
    const booked = (await t.app.services.ledger.charges(0, Date.now() * 2)).reduce((s, c) => s + c.costMicro, 0);
    expect(BigInt(booked)).toBe(t.standIn.paidAtomic());
  });

  it("cools a rate-limited model for its retry-after, and other decisions skip it meanwhile", async () => {
    t = await startRouterApp();
    await t.run(`/model ${GPT}`);
    t.standIn.setFault(GPT, { kind: "http-429", retryAfterSeconds: 30 }, 1);
    await decide();
    expect((await t.run("/model")).text).toMatch(/openai\/gpt-4o \[chosen\] — premium, [^\n]*cooling down \(30 s left/);
    await decide();
    expect(t.standIn.callsTo(GPT)).toHaveLength(1);
    expect((await latest()).attempts![0]).toMatchObject({ model: GPT, skipped: true, failure: expect.stringMatching(/^cooling down until/) });
    t.clock.advance(31_000);
    await decide();
    expect((await latest()).model).toBe(GPT);
  });

  it("walks the whole chain: two models down, the third answers; all down, the offline engine does", async () => {
    t = await startRouterApp((c) => (c.routing.breakerFailures = 100));
    await t.run(`/model ${GPT}`);
    t.standIn.setFault(GPT, { kind: "http-500" });
    t.standIn.setFault(CLAUDE, { kind: "malformed" });
    await decide();
    expect((await latest()).model).toBe(GEMINI);
    t.standIn.setFault(GEMINI, { kind: "schema" });
    t.standIn.setFault(LLAMA, { kind: "http-500" });
    const reply = await decide();
    const record = await latest();
    expect(record.model).toBe("offline-engine");
    expect(record.freeBecause).toBe("all-failed");
    expect(reply.text).toMatch(/Model: offline-engine/);
    expect((await t.run("/report")).text).toMatch(/Fallbacks taken: 2 \(free decisions: 1 all models failed\)/);
  });
});

describe("the circuit breaker", () => {
  it("opens after N failures, skips the model (no call, no latency), then probes it and closes", async () => {
    t = await startRouterApp((c) => {
      c.routing.breakerFailures = 3;
      c.routing.breakerCooldownMs = 60_000;
    });
    await t.run(`/model ${GPT}`);
    t.standIn.setFault(GPT, { kind: "http-500" });
    await decide(); // 500, retried once: 2 failures
    await decide(); // the third failure opens it: no retry
    expect(t.standIn.callsTo(GPT)).toHaveLength(3);
    expect((await t.run("/model")).text).toMatch(/openai\/gpt-4o \[chosen\] — premium, [^\n]*cooling down \(60 s left, after 3 failures\)/);

    for (let i = 0; i < 3; i++) await decide();
    expect(t.standIn.callsTo(GPT)).toHaveLength(3);
    const skipped = await latest();
    expect(skipped.model).toBe(CLAUDE);
    expect(skipped.attempts![0]).toMatchObject({ model: GPT, skipped: true, latencyMs: 0 });

    // After the cool-down one call probes it. Still failing: open again at once, no retry.
    t.clock.advance(61_000);
    await decide();
    expect(t.standIn.callsTo(GPT)).toHaveLength(4);
    expect((await t.run("/model")).text).toMatch(/cooling down \(60 s left/);

    // Recovered: the next probe succeeds and closes the breaker.
    t.standIn.setFault(GPT, undefined);
    t.clock.advance(61_000);
    await decide();
    expect((await latest()).model).toBe(GPT);
    expect((await t.run("/model")).text).toMatch(/openai\/gpt-4o \[chosen\] — premium, [^\n]*, healthy; last \d+ calls/);
    await decide();
    expect((await latest()).model).toBe(GPT);
  });

  it("keeps its state in Redis: a second app (another worker) skips the model the first one tripped", async () => {
    t = await startRouterApp((c) => (c.routing.breakerFailures = 1));
    await t.run(`/model ${GPT}`);
    t.standIn.setFault(GPT, { kind: "http-500" });
    await decide();
    const calls = t.standIn.callsTo(GPT).length;
    const { buildApp } = await import("../src/app.js");
    const other = await buildApp(t.app.config, t.url, { clock: () => t!.clock.now, queuePrefix: "bull-test-2", paperWallet: true });
    try {
      await other.decide({ decisionId: "worker2:1", symbol: "BTC/USDT", trigger: "chat" });
      expect(t.standIn.callsTo(GPT)).toHaveLength(calls);
      expect((await other.services.ledger.get("worker2:1"))!.model).toBe(CLAUDE);
    } finally {
      await other.stop();
    }
  });
});

describe("a malformed reply", () => {
  it("never becomes an order, whatever shape it takes; with ROUTER_FALLBACK=hold the agent holds", async () => {
    t = await startRouterApp((c) => {
      c.routing.fallback = "hold";
      // Every shape of bad reply is walked here; the default stops after one more paid model (routerCaps.test.ts).
      c.routing.invalidReplyRetries = 3;
    });
    t.standIn.setReply((req) =>
      req.model === LLAMA
        ? `<response>${buyReply(5).replace(/<\/?response>/g, "")}${buyReply(5).replace(/<\/?response>/g, "")}</response>`
        : req.model === GEMINI
          ? `<response><action_call name="ExecuteTrade">{"side":"buy","sizePct":5,"confidence":0.9,</action_call></response>`
          : holdReply(),
    );
    await t.run(`/model ${GPT}`);
    t.standIn.setFault(GPT, { kind: "schema" });
    t.standIn.setFault(CLAUDE, { kind: "malformed" });
    const reply = await decide();
    const record = await latest();
    expect(record.attempts!.map((a) => [a.model, a.failure])).toEqual([
      [GPT, "invalid-reply"],
      [CLAUDE, "invalid-reply"],
      [GEMINI, "invalid-reply"],
      [LLAMA, "invalid-reply"],
    ]);
    expect(record).toMatchObject({ model: "hold", action: "hold", outcome: "no-order", freeBecause: "all-failed" });
    expect(record.order).toBeUndefined();
    expect(reply.text).toMatch(/HOLD[\s\S]*No model decided[\s\S]*Order: none \(hold\)/);
    expect(await t.app.services.exchange.trades(10)).toEqual([]);
    expect(await t.app.services.portfolio.positions()).toEqual([]);
  });
});
