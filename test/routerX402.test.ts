// The x402 client (reference SDK at the metered fetch) against the stand-in speaking each version,
// verified and settled by the reference facilitator over an in-memory USDC chain.
import { afterEach, describe, expect, it } from "vitest";
import { privateKeyToAccount } from "viem/accounts";
import { CallMeter, meteredFetch, PaymentRefusedError } from "../src/payments/paymentMeter.js";
import { X402Payer, paymentIdFor, type SignedPayment } from "../src/payments/x402Payer.js";
import { GPT, TEST_WALLET_KEY, startRouterApp, type RouterTestApp } from "./support/routerApp.js";
import { RouterStandIn, STANDIN_PAYEE } from "./support/routerStandIn.js";

let t: RouterTestApp | undefined;
let standIn: RouterStandIn | undefined;
afterEach(async () => {
  await t?.stop();
  await standIn?.close();
  t = undefined;
  standIn = undefined;
});

const account = privateKeyToAccount(TEST_WALLET_KEY);
const body = JSON.stringify({ model: GPT, stream: false, messages: [{ role: "user", content: "Decide now on BTC/USDT." }] });

describe("a paid decision against each x402 version", () => {
  for (const mode of ["v2", "v1", "dreams"] as const) {
    it(`${mode}: pays once, books the signed amount and stores the settlement receipt`, async () => {
      t = await startRouterApp(() => {}, { x402: mode });
      await t.app.services.state.chooseModel(GPT);
      const record = await t.app.decide({ decisionId: `x402:${mode}`, symbol: "BTC/USDT", trigger: "chat" });
      expect(record.model).toBe(GPT);
      expect(t.standIn.payments).toHaveLength(1);
      expect(t.standIn.chain.transfers).toHaveLength(1);
      const [charge] = await t.app.services.ledger.charges(0, Date.now() * 2);
      expect(charge!.costMicro).toBe(31_337);
      expect(charge!.receipt).toMatchObject({
        status: "settled",
        transaction: t.standIn.chain.transfers[0]!.hash,
        payer: account.address,
        x402Version: mode === "v2" ? 2 : 1,
        scheme: "exact",
        network: mode === "v2" ? "eip155:84532" : "base-sepolia",
      });
      if (mode === "v2") expect(charge!.receipt!.paymentId).toBe(paymentIdFor(`x402:${mode}:${GPT}`));
      expect((await t.run("/report")).text).toMatch(/Payments: 1 settled, 0 pending, 0 failed[\s\S]*sepolia\.basescan\.org\/tx\/0x[0-9a-f]{64}/);
    });
  }
});

describe("offers", () => {
  const meterFor = (chargeId: string, payees: string[] = []) =>
    new CallMeter({ approve: async () => ({ ok: true }), beforeSend: async () => {} }, { network: "base-sepolia", payer: account.address, payees, chargeId });
  const pay = (meter: CallMeter) => meteredFetch(meter, new X402Payer(account))(`${standIn!.url}/chat/completions`, { method: "POST", headers: { "content-type": "application/json" }, body });

  it("takes the cheapest acceptable one and names why each other was refused", async () => {
    const other = "0x000000000000000000000000000000000000b0b0";
    standIn = await RouterStandIn.start({
      prices: { [GPT]: 0.031337 },
      x402: "v2",
      extraOffers: [
        { asset: "0x0000000000000000000000000000000000000bad", priceFactor: 0.1 },
        { network: "eip155:8453", priceFactor: 0.2 },
        { payTo: other, priceFactor: 0.3 },
        { scheme: "stream", priceFactor: 0.4 },
        { priceFactor: 2 },
      ],
    });
    const meter = meterFor("offers:1", [STANDIN_PAYEE]);
    const res = await pay(meter);
    expect(res.status).toBe(200);
    expect(meter.sentMicro).toBe(31_337);
    expect(standIn.payments).toHaveLength(1);
    expect(meter.refusedOffers.map((r) => r.reason)).toEqual([
      "asset 0x0000000000000000000000000000000000000bad is not USDC on base-sepolia (0x036CbD53842c5426634e7929541eC2318f3dCF7e)",
      "network eip155:8453 is not X402_NETWORK base-sepolia (eip155:84532)",
      `payee ${other} is not in X402_PAYEES`,
      'scheme "stream" is not spoken (only exact and upto)',
      "dearer than the 31337 µUSDC offer taken",
    ]);
  });

  it("refuses to pay when no offer is acceptable, before signing anything", async () => {
    standIn = await RouterStandIn.start({ prices: { [GPT]: 0.031337 }, x402: "v1" });
    const meter = meterFor("offers:2", ["0x000000000000000000000000000000000000b0b0"]);
    await expect(pay(meter)).rejects.toThrow(PaymentRefusedError);
    await expect(pay(meterFor("offers:3", ["0x000000000000000000000000000000000000b0b0"]))).rejects.toThrow(/no offer could be paid: payee 0x00000000000000000000000000000000000a11ce is not in X402_PAYEES/);
    expect(meter.sentMicro).toBe(0);
    expect(standIn.payments).toHaveLength(0);
  });

  it("signs an authorization valid no longer than the offer's maxTimeoutSeconds", async () => {
    standIn = await RouterStandIn.start({ prices: { [GPT]: 0.031337 }, x402: "v2" });
    const before = Math.floor(Date.now() / 1000);
    await pay(meterFor("offers:4"));
    const a = JSON.parse(Buffer.from(standIn.payments[0]!.header, "base64").toString()).payload.authorization;
    expect(Number(a.validBefore) - before).toBeLessThanOrEqual(301);
  });
});

describe("the payment-identifier", () => {
  it("is the same for a retried attempt: the same payment sent again is not charged twice, a fresh one under its id is a conflict", async () => {
    standIn = await RouterStandIn.start({ prices: { [GPT]: 0.031337 }, x402: "v2" });
    const payer = new X402Payer(account);
    let first: SignedPayment | undefined;
    const attempt = (resend?: SignedPayment) => {
      const meter = new CallMeter(
        { approve: async () => ({ ok: true }), beforeSend: async (_micro, signed) => void (first ??= signed) },
        { network: "base-sepolia", chargeId: "job-7:openai/gpt-4o", ...(resend ? { resend } : {}) },
      );
      return meteredFetch(meter, payer)(`${standIn!.url}/chat/completions`, { method: "POST", headers: { "content-type": "application/json" }, body });
    };
    expect((await attempt()).status).toBe(200);
    expect(first).toBeDefined();
    // The retry sends what it signed before: answered from the server's cache.
    expect((await attempt(first)).status).toBe(200);
    expect(standIn.duplicates).toEqual([paymentIdFor("job-7:openai/gpt-4o")]);
    // A new signature under the same identifier is another payment: refused, as the extension says.
    expect((await attempt()).status).toBe(409);
    expect(standIn.conflicts).toEqual([paymentIdFor("job-7:openai/gpt-4o")]);
    expect(standIn.payments).toHaveLength(1);
    expect(standIn.chain.transfers).toHaveLength(1);
  });
});
