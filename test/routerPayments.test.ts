// The real @daydreamsai/ai-sdk-provider paying the router stand-in over loopback: what is paid is
// what is booked, a replayed or forged payment is refused, and every authentication mode works.
import { afterEach, describe, expect, it } from "vitest";
import { privateKeyToAccount } from "viem/accounts";
import { buyReply } from "./support/app.js";
import { CLAUDE, GPT, STANDIN_PRICES, TEST_API_KEY, TEST_WALLET_KEY, startRouterApp, type RouterTestApp } from "./support/routerApp.js";
import { STANDIN_PAYEE, TRANSFER_WITH_AUTHORIZATION, holdReply } from "./support/routerStandIn.js";
import { CallMeter } from "../src/payments/paymentMeter.js";
import { runDailyReport } from "../jobs/dailyReport.js";

let t: RouterTestApp | undefined;
afterEach(async () => {
  await t?.stop();
  t = undefined;
});

const micro = (usdc: number) => Math.round(usdc * 1_000_000);

describe("a paid decision, end to end", () => {
  it("pays the gateway's price with x402 and books exactly the signed amount", async () => {
    t = await startRouterApp();
    t.standIn.setReply(() => buyReply(5));
    expect((await t.run(`/model ${GPT}`)).text).toMatch(/Decisions now use openai\/gpt-4o first/);
    const walletBefore = await t.app.services.balance.getBalance();

    const reply = await t.run("/decide BTC");
    expect(reply.text).toMatch(/BTC\/USDT: BUY 5\.0% of equity[\s\S]*Model: openai\/gpt-4o · cost \$0\.0313[\s\S]*Order: BUY/);

    // The provider asked unpaid, got 402 with the requirement header, signed, and paid once.
    expect(t.standIn.callsTo(GPT).map((c) => [c.status, c.paid])).toEqual([[402, false], [200, true]]);
    expect(t.standIn.payments).toHaveLength(1);
    const paid = t.standIn.payments[0]!;
    expect(paid.value).toBe(BigInt(micro(STANDIN_PRICES[GPT])));
    expect(paid.from.toLowerCase()).toBe(privateKeyToAccount(TEST_WALLET_KEY).address.toLowerCase());
    expect(paid.to.toLowerCase()).toBe(STANDIN_PAYEE);

    // Booked: the signed amount, not COST_PER_DECISION_USDC nor the list price.
    const [record] = await t.app.services.ledger.recent(1);
    expect(record!.costMicro).toBe(31_337);
    expect(record!.attempts).toEqual([expect.objectContaining({ model: GPT, ok: true, costMicro: 31_337 })]);
    const charges = await t.app.services.ledger.charges(0, Date.now() * 2);
    expect(charges.map((c) => [c.model, c.costMicro])).toEqual([[GPT, 31_337]]);
    expect(await t.app.services.balance.getBalance()).toBe(walletBefore - 31_337);
    expect((await t.run("/report")).text).toMatch(/Spend: \$0\.0313 total[\s\S]*openai\/gpt-4o: 1 decisions, 1 calls, \$0\.0313, 100\.0% ok, p50 \d+ ms/);
    // The daily report carries the same router monitoring, to every chat.
    await runDailyReport(t.app);
    expect(t.notices.of("report")[0]!.text).toMatch(/^Daily cost report[\s\S]*Today: \$0\.0313 of \$5\.00 \(0\.6%\)[\s\S]*openai\/gpt-4o: 1 decisions, 1 calls, \$0\.0313, 100\.0% ok, p50 \d+ ms, p95 \d+ ms/);
  });

  it("reserves the estimate, then pays what the gateway quotes (remembered as the next estimate)", async () => {
    t = await startRouterApp((c) => (c.routing.modelPrices = { [GPT]: 0.01 }));
    await t.run(`/model ${GPT}`);
    await t.run("/decide BTC");
    expect(t.standIn.paidAtomic()).toBe(31_337n);
    expect((await t.app.services.models.runtime!.stats.lastPrices())[GPT]).toBe(31_337);
    expect((await t.run("/model")).text).toMatch(/openai\/gpt-4o \[chosen\] — economy, ~\$0\.0100 per call \(MODEL_PRICES; last asked \$0\.0313\), healthy; last 1 calls 100% ok/);
  });

  it("refuses to pay a quote above MAX_PRICE_PER_CALL_USDC, before signing, and the next model answers", async () => {
    t = await startRouterApp((c) => {
      c.routing.maxPricePerCall = 0.03;
      c.routing.modelPrices = { [GPT]: 0.02, [CLAUDE]: 0.021113 };
      c.router.fallbackModels = [CLAUDE];
    });
    await t.run(`/model ${GPT}`);
    const reply = await t.run("/decide BTC");
    expect(reply.text).toMatch(/Model: anthropic\/claude-3-5-sonnet/);
    expect(t.standIn.callsTo(GPT).map((c) => c.paid)).toEqual([false]);
    expect(t.standIn.payments.map((p) => p.model)).toEqual([CLAUDE]);
    const [record] = await t.app.services.ledger.recent(1);
    expect(record!.attempts![0]).toMatchObject({ model: GPT, ok: false, failure: "over-price", costMicro: 0 });
    const alerts = t.notices.of("alert");
    expect(alerts).toHaveLength(1);
    expect(alerts[0]!.text).toMatch(/asked \$0\.0313, above MAX_PRICE_PER_CALL_USDC \$0\.0300/);
  });
});

describe("non-streamed completions", () => {
  it("pay and report their cost through doGenerate as well", async () => {
    t = await startRouterApp((c) => {
      c.router.auth = "api-key";
      c.router.apiKey = TEST_API_KEY;
    });
    const meter = new CallMeter({ approve: async () => ({ ok: true }), beforeSend: async () => {} });
    const model = t.app.services.models.routerModel(GPT, fetch, meter);
    const prompt = [{ role: "user" as const, content: [{ type: "text" as const, text: "Decide now on BTC/USDT." }] }];
    const out = await model.doGenerate({ prompt } as Parameters<typeof model.doGenerate>[0]);
    expect(out.content).toEqual([{ type: "text", text: holdReply() }]);
    expect(t.standIn.callsTo(GPT)).toEqual([expect.objectContaining({ stream: false, status: 200, auth: "api-key" })]);
    expect(meter.reportedMicro).toBe(31_337);
  });
});

describe("payments the stand-in must refuse", () => {
  const chat = (url: string, headers: Record<string, string>) =>
    fetch(`${url}/chat/completions`, {
      method: "POST",
      headers: { "content-type": "application/json", ...headers },
      body: JSON.stringify({ model: GPT, stream: false, messages: [{ role: "user", content: "Decide now on BTC/USDT." }] }),
    });
  const encode = (p: unknown) => Buffer.from(JSON.stringify(p)).toString("base64");

  it("refuses a replayed payment, and forged, underpaid, misdirected or expired ones, with 402 again", async () => {
    t = await startRouterApp();
    await t.run(`/model ${GPT}`);
    await t.run("/decide BTC");
    const original = t.standIn.payments[0]!;

    const replay = await chat(t.standIn.url, { "x-payment": original.header });
    expect(replay.status).toBe(402);
    expect(((await replay.json()) as { error: string }).error).toMatch(/nonce_already_used/);
    expect(replay.headers.get("x-payment-required")).toContain('"scheme":"exact"');

    const account = privateKeyToAccount(TEST_WALLET_KEY);
    const now = Math.floor(Date.now() / 1000);
    const sign = async (over: Partial<{ to: `0x${string}`; value: bigint; validAfter: bigint; validBefore: bigint; network: string }>) => {
      const message = {
        from: account.address,
        to: over.to ?? STANDIN_PAYEE,
        value: over.value ?? 31_337n,
        validAfter: over.validAfter ?? BigInt(now - 60),
        validBefore: over.validBefore ?? BigInt(now + 600),
        nonce: `0x${crypto.randomUUID().replace(/-/g, "").padEnd(64, "0")}` as `0x${string}`,
      };
      const signature = await account.signTypedData({
        domain: { name: "USDC", version: "2", chainId: 84532, verifyingContract: "0x036CbD53842c5426634e7929541eC2318f3dCF7e" },
        types: TRANSFER_WITH_AUTHORIZATION,
        primaryType: "TransferWithAuthorization",
        message,
      });
      const auth = Object.fromEntries(Object.entries(message).map(([k, v]) => [k, String(v)]));
      return { x402Version: 1, scheme: "exact", network: over.network ?? "base-sepolia", payload: { signature, authorization: auth } };
    };

    const valid = await sign({});
    const tampered = { ...valid, payload: { ...valid.payload, authorization: { ...valid.payload.authorization, value: "1" } } };
    const cases: [string, unknown, RegExp][] = [
      // The reasons are the x402 reference verifier's (@x402/evm ExactEvmSchemeV1).
      ["signature over other terms", tampered, /signature/i],
      ["underpaid", await sign({ value: 1n }), /value|amount/i],
      ["to someone else", await sign({ to: "0x000000000000000000000000000000000000dEaD" }), /recipient|payee|to_mismatch/i],
      ["expired", await sign({ validBefore: BigInt(now - 1) }), /valid_before|expired/i],
      ["not yet valid", await sign({ validAfter: BigInt(now + 3600) }), /valid_after|not_yet/i],
      ["another chain", await sign({ network: "base" }), /network/i],
      ["not base64 JSON", "%%%", /base64|invalid/i],
    ];
    for (const [name, payment, why] of cases) {
      const res = await chat(t.standIn.url, { "x-payment": typeof payment === "string" ? payment : encode(payment) });
      expect(res.status, name).toBe(402);
      expect(((await res.json()) as { error: string }).error, name).toMatch(why);
    }
    // The honest one is taken once: its nonce then stays spent.
    expect((await chat(t.standIn.url, { "x-payment": encode(valid) })).status).toBe(200);
    expect((await chat(t.standIn.url, { "x-payment": encode(valid) })).status).toBe(402);
    expect(t.standIn.payments).toHaveLength(2);
  });
});

describe("the three ways to authenticate", () => {
  it("API key: no x402, and the cost booked is the gateway's reported usage.cost", async () => {
    t = await startRouterApp((c) => {
      c.router.auth = "api-key";
      c.router.apiKey = TEST_API_KEY;
      c.router.privateKey = undefined;
    });
    await t.run(`/model ${GPT}`);
    expect((await t.run("/decide BTC")).text).toMatch(/Model: openai\/gpt-4o · cost \$0\.0313/);
    expect(t.standIn.payments).toHaveLength(0);
    expect(t.standIn.callsTo(GPT)).toEqual([expect.objectContaining({ auth: "api-key", status: 200, paid: false })]);
    const [record] = await t.app.services.ledger.recent(1);
    expect(record!.costMicro).toBe(31_337);
  });

  it("an API key the gateway refuses stops paid calls for the decision; the offline engine decides", async () => {
    t = await startRouterApp((c) => {
      c.router.auth = "api-key";
      c.router.apiKey = "wrong-key";
      c.router.privateKey = undefined;
    });
    const reply = await t.run("/decide BTC");
    expect(reply.text).toMatch(/Model: offline-engine/);
    // One refused call, not one per model.
    expect(t.standIn.calls).toHaveLength(1);
    expect(t.standIn.calls[0]!.status).toBe(401);
    expect(reply.text).not.toContain("wrong-key");
  });
});
