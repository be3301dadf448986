import { Redis } from "ioredis";
import { afterEach, describe, expect, it } from "vitest";
import type { Config } from "../src/config/config.js";
import { buyReply, scriptedModels, sellReply, startTestApp, testConfig, type TestApp } from "./support/app.js";

let t: TestApp | undefined;
afterEach(async () => {
  await t?.app.stop();
  t = undefined;
});

/**
 * Each case sets the limits, plays a script of model replies through /decide (the real agent,
 * pipeline and paper exchange), and checks that the last decision was stopped by that rule, that
 * the reply says so, and that no order was placed for it.
 */
const cases: { rule: string; limits: (c: Config) => void; script: [string, string][]; resized?: boolean }[] = [
  { rule: "max-position", limits: (c) => (c.risk.maxPositionPct = 10), script: [["BTC", buyReply(25)]], resized: true },
  {
    rule: "max-exposure",
    limits: (c) => Object.assign(c.risk, { maxPositionPct: 10, maxExposurePct: 10 }),
    script: [["BTC", buyReply(10)], ["ETH", buyReply(10)]],
  },
  {
    rule: "max-leverage",
    limits: (c) => Object.assign(c.risk, { maxPositionPct: 10, maxExposurePct: 100, maxLeverage: 0.05 }),
    script: [["BTC", buyReply(5)], ["ETH", buyReply(5)]],
  },
  {
    rule: "max-open-positions",
    limits: (c) => (c.risk.maxOpenPositions = 1),
    script: [["BTC", buyReply(5)], ["ETH", buyReply(5)]],
  },
  {
    // The first buy's fee is a loss for the day; a limit of 0.0001% is then reached.
    rule: "daily-loss",
    limits: (c) => (c.risk.dailyLossLimitPct = 0.0001),
    script: [["BTC", buyReply(5)], ["ETH", buyReply(5)]],
  },
  { rule: "stop-loss", limits: (c) => (c.risk.maxStopLossPct = 10), script: [["BTC", buyReply(5, { stopLossPct: 50 })]] },
  { rule: "min-order", limits: (c) => (c.risk.minOrderNotional = 10), script: [["BTC", buyReply(0.01)]] },
  { rule: "no-position", limits: () => {}, script: [["BTC", sellReply(5)]] },
];

describe("risk rules on the decision path", () => {
  for (const c of cases) {
    it(`${c.resized ? "resizes" : "refuses"} by ${c.rule}`, async () => {
      const replies = c.script.map(([, r]) => r);
      let call = 0;
      t = await startTestApp(testConfig(c.limits), { models: scriptedModels(() => replies[Math.min(call++, replies.length - 1)]!, 0) });
      let text = "";
      for (const [symbol] of c.script) text = (await t.run(`/decide ${symbol}`)).text;
      const [last] = await t.app.services.ledger.recent(1);
      expect(last!.risk!.rules).toContain(c.rule);
      expect(text).toContain(last!.risk!.message);
      if (c.resized) {
        expect(last!.outcome).toBe("order");
        expect(last!.risk!.outcome).toBe("resized");
      } else {
        expect(last!.outcome).toBe("refused");
        expect(last!.order).toBeUndefined();
        expect(text).toContain("Order: none.");
      }
    });
  }
});

describe("a hold on the decision path", () => {
  const holdReply = `<response><action_call name="RiskManagement">${JSON.stringify({ stance: "hold", confidence: 0.6, reasons: ["scripted hold"] })}</action_call></response>`;

  it("is decided and recorded while another worker holds the trading lock, which a buy waits for", async () => {
    let reply = holdReply;
    t = await startTestApp(testConfig(), { models: scriptedModels(() => reply, 0) });
    const other = new Redis(t.url);
    try {
      // Another worker's order in flight: the lock is held for 2 s.
      await other.set("lock:trading", "another-worker", "PX", 2000);
      const hold = await t.app.decide({ decisionId: "hold-1", symbol: "BTC/USDT", trigger: "chat" });
      // Decided while the other worker still held the lock: a hold never waited for it.
      expect(await other.get("lock:trading")).toBe("another-worker");
      expect(hold).toMatchObject({ outcome: "no-order", action: "hold", risk: { outcome: "no-trade", message: "Hold: no order." } });
      expect(await t.app.services.ledger.get("hold-1")).toMatchObject({ outcome: "no-order", action: "hold" });

      reply = buyReply(5);
      // Another symbol: the decision cache would serve BTC's hold again for the same candle.
      const buy = await t.app.decide({ decisionId: "buy-1", symbol: "ETH/USDT", trigger: "chat" });
      expect(buy.outcome).toBe("order");
      // The buy went only once the other worker's lease ran out.
      expect(await other.pttl("lock:trading")).toBe(-2);
    } finally {
      await other.quit();
    }
  });
});
