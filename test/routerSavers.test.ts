// Model selection by tier, the three cost savers (cache, batch, signal gate) and a retried job that
// must not pay twice, with the real provider paying the stand-in.
import { afterEach, describe, expect, it } from "vitest";
import { buildApp } from "../src/app.js";
import { formatDecision } from "../src/chat/format.js";
import type { DecisionRecord } from "../src/ledger/ledger.js";
import { CLAUDE, GEMINI, GPT, STANDIN_PRICES, startRouterApp, type RouterTestApp } from "./support/routerApp.js";
import { holdReply } from "./support/routerStandIn.js";
import { waitFor } from "./support/app.js";

let t: RouterTestApp | undefined;
afterEach(async () => {
  await t?.stop();
  t = undefined;
});

let n = 0;
const decide = (symbol: string, trigger: "schedule" | "chat" = "schedule"): Promise<DecisionRecord> => {
  t!.clock.advance(1);
  return t!.app.decide({ decisionId: `${trigger}:${symbol}:${++n}`, symbol, trigger });
};
const micro = (usdc: number) => Math.round(usdc * 1_000_000);

describe("model selection", () => {
  it("gives a routine scheduled decision a cheaper tier than a /decide from chat on the same market", async () => {
    t = await startRouterApp();
    // BTC at the test clock: neutral, weak score (+0.15): the indicators disagree.
    const scheduled = await decide("BTC/USDT", "schedule");
    const chat = await decide("BTC/USDT", "chat");
    expect([scheduled.tier, scheduled.model]).toEqual(["fast", GEMINI]);
    expect([chat.tier, chat.model]).toEqual(["standard", CLAUDE]);
    expect(t.standIn.payments.map((p) => p.model)).toEqual([GEMINI, CLAUDE]);
    // Pinned with /model, every decision starts with that model; /model policy goes back to policy.
    await t.run(`/model ${GPT}`);
    expect((await decide("BTC/USDT", "schedule")).model).toBe(GPT);
    await t.run("/model policy");
    expect((await decide("BTC/USDT", "schedule")).model).toBe(GEMINI);
  });
});

describe("the decision cache", () => {
  it("reuses a paid decision on the same closed candle, tier and position, and never one from an older candle", async () => {
    t = await startRouterApp((c) => (c.routing.cacheTtlMs = 300_000));
    const first = await decide("BTC/USDT");
    expect(first.saver).toBeUndefined();
    const again = await decide("BTC/USDT");
    expect(again).toMatchObject({ model: GEMINI, saver: "cache", savedMicro: micro(STANDIN_PRICES[GEMINI]), costMicro: 0, action: first.action });
    expect(t.standIn.payments).toHaveLength(1);
    expect(formatDecision(again, { paper: true })).toContain("Saver: answered by the decision cache (same closed candle), saving $0.0110.");

    // The replay closes a new candle every 30 s: the cached decision is now on an older one.
    t.clock.advance(30_000);
    const next = await decide("BTC/USDT");
    expect(next.saver).toBeUndefined();
    expect(next.indicators!.price).not.toBe(first.indicators!.price);
    expect(t.standIn.payments).toHaveLength(2);
    expect((await t.run("/report")).text).toMatch(/Saved: \$0\.0110 — cache 1 \(\$0\.0110\), batch 0 \(\$0\.0000\), signal gate 0 \(\$0\.0000\)/);
  });

  it("expires after its TTL, even on the same candle", async () => {
    t = await startRouterApp((c) => {
      c.routing.cacheTtlMs = 60_000;
      c.market.replayStepSeconds = 3600;
    });
    await decide("BTC/USDT");
    t.clock.advance(59_000);
    expect((await decide("BTC/USDT")).saver).toBe("cache");
    t.clock.advance(2_000);
    expect((await decide("BTC/USDT")).saver).toBeUndefined();
    expect(t.standIn.payments).toHaveLength(2);
  });
});

describe("batched decisions", () => {
  const batchReply = (bad: string[]) => (req: { symbols: string[] }) =>
    req.symbols.length > 1
      ? `<response>${req.symbols
          .map((s) =>
            bad.includes(s)
              ? `<action_call name="ExecuteTrade">${JSON.stringify({ symbol: s, side: "buy", sizePct: 500, confidence: 2, reasons: [] })}</action_call>`
              : holdReply(s).replace(/<\/?response>/g, ""),
          )
          .join("")}</response>`
      : holdReply();

  it("decides every due symbol in one paid call, validates each answer on its own, and a bad one asks alone", async () => {
    t = await startRouterApp((c) => {
      c.market.symbols = ["BTC/USDT", "ETH/USDT", "DOGE/USDT"];
      c.routing.cacheTtlMs = 300_000;
      c.routing.batch = true;
    });
    t.standIn.setReply(batchReply(["DOGE/USDT"]));
    await t.run(`/model ${GPT}`);
    // The three scheduled jobs of one tick, at once, as BullMQ runs them.
    const [btc, eth, doge] = await Promise.all(["BTC/USDT", "ETH/USDT", "DOGE/USDT"].map((s) => decide(s)));

    const paid = t.standIn.payments.map((p) => p.value);
    const single = t.standIn.priceAtomic(GPT, 1);
    const batch = t.standIn.priceAtomic(GPT, 3); // 1.4 single calls for 3 symbols
    expect(paid.sort()).toEqual([single, batch].sort());
    for (const r of [btc!, eth!]) {
      expect(r).toMatchObject({ model: GPT, action: "hold", saver: "batch" });
      expect(r.costMicro).toBe(Math.round(Number(batch) / 3));
    }
    // DOGE's batched answer broke the schema: it never became a decision; DOGE asked on its own.
    expect(doge).toMatchObject({ model: GPT, action: "hold", costMicro: micro(STANDIN_PRICES[GPT]) });
    expect(doge!.saver).toBeUndefined();
    expect(await t.app.services.exchange.trades(10)).toEqual([]);
    const report = (await t.run("/report")).text;
    expect(report).toMatch(/Saved: \$0\.\d{4} — cache 0 \(\$0\.0000\), batch 2 \(\$0\.\d{4}\)/);
  });
});

describe("the signal gate", () => {
  it("pays for no model on a scheduled decision with nothing to decide; a chat decision always asks", async () => {
    t = await startRouterApp((c) => {
      c.routing.signalGate = true;
      c.routing.signalGateMinScore = 0.3;
    });
    const gated = await decide("BTC/USDT", "schedule");
    expect(gated).toMatchObject({ model: "offline-engine", saver: "gate", savedMicro: micro(0.02), costMicro: 0 });
    expect(t.standIn.calls).toHaveLength(0);
    const chat = await decide("BTC/USDT", "chat");
    expect(chat.model).toBe(CLAUDE);
    expect(t.standIn.payments).toHaveLength(1);
    expect((await t.run("/report")).text).toMatch(/signal gate 1 \(\$0\.0200\)/);
  });
});

describe("a retried job", () => {
  it("never asks or pays again for a decision whose first run is still paying, and books its payment once", async () => {
    t = await startRouterApp((c) => (c.routing.modelTimeouts = { [GPT]: 3000 }));
    await t.run(`/model ${GPT}`);
    t.standIn.setFault(GPT, { kind: "hang", afterPayment: true });
    const id = "sched:BTC/USDT:job-7";
    const firstRun = t.app.decide({ decisionId: id, symbol: "BTC/USDT", trigger: "schedule" });
    await waitFor("the payment", async () => t!.standIn.payments.length === 1);

    // BullMQ hands the stalled job to another worker, which runs the same decision id.
    const worker2 = await buildApp(t.app.config, t.url, { clock: () => t!.clock.now, queuePrefix: "bull-test-2", paperWallet: true });
    try {
      const callsBefore = t.standIn.calls.length;
      const retried = await worker2.decide({ decisionId: id, symbol: "BTC/USDT", trigger: "schedule" });
      expect(retried).toMatchObject({ model: "offline-engine", freeBecause: "interrupted" });
      expect(t.standIn.calls.length).toBe(callsBefore);
      // The payment the first run made is booked by whoever sees it first, and only once.
      const booked = async () => (await t!.app.services.ledger.charges(0, Date.now() * 2)).filter((c) => c.decisionId.startsWith(id));
      expect((await booked()).map((c) => [c.model, c.costMicro])).toEqual([[GPT, micro(STANDIN_PRICES[GPT])]]);
      // The first run goes on down its own chain after the timeout (Claude answers); nothing is booked twice.
      await firstRun;
      expect((await booked()).map((c) => [c.model, c.costMicro]).sort()).toEqual([[CLAUDE, micro(STANDIN_PRICES[CLAUDE])], [GPT, micro(STANDIN_PRICES[GPT])]].sort());
      expect(t.standIn.paidAtomic()).toBe(BigInt(micro(STANDIN_PRICES[GPT]) + micro(STANDIN_PRICES[CLAUDE])));
    } finally {
      await worker2.stop();
    }
  });
});
