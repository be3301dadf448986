// The x402 client (reference SDK at the metered fetch) against the stand-in speaking each version,
// verified and settled by the reference facilitator over an in-memory USDC chain.
import { afterEach, describe, expect, it } from "vitest";
import { privateKeyToAccount } from "viem/accounts";
import { decodePaymentRequiredHeader, decodePaymentSignatureHeader } from "@x402/core/http";
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

describe("v2 refusals and faults, at the reference resource server", () => {
  const meter = (chargeId: string) => new CallMeter({ approve: async () => ({ ok: true }), beforeSend: async () => {} }, { network: "base-sepolia", payer: account.address, chargeId });
  const pay = (m: CallMeter, init: RequestInit = {}) =>
    meteredFetch(m, new X402Payer(account))(`${standIn!.url}/chat/completions`, { method: "POST", headers: { "content-type": "application/json" }, body, ...init });
  const send = (header: string) => fetch(`${standIn!.url}/chat/completions`, { method: "POST", headers: { "content-type": "application/json", "payment-signature": header }, body });
  const requiredError = (res: Response) => decodePaymentRequiredHeader(res.headers.get("payment-required")!).error;
  const reencode = (p: unknown) => Buffer.from(JSON.stringify(p)).toString("base64");

  it("refuses a payment to an offer it only shows (another payee), with a 402 that offers again", async () => {
    const other = "0x000000000000000000000000000000000000b0b0";
    standIn = await RouterStandIn.start({ prices: { [GPT]: 0.031337 }, x402: "v2", extraOffers: [{ payTo: other, priceFactor: 0.5 }] });
    // No payee list: the client takes the cheaper offer, which the stand-in does not settle.
    const res = await pay(meter("decoy:1"));
    expect(res.status).toBe(402);
    expect(requiredError(res)).toBe("pays an offer the stand-in cannot settle");
    expect(decodePaymentRequiredHeader(res.headers.get("payment-required")!).accepts.map((a) => a.payTo)).toEqual([other, STANDIN_PAYEE]);
    expect(standIn.refused).toEqual([{ model: GPT, reason: "pays an offer the stand-in cannot settle" }]);
    expect(decodePaymentSignatureHeader(standIn.refusedHeaders[0]!).accepted.payTo).toBe(other);
    expect(standIn.payments).toHaveLength(0);
    expect(standIn.chain.transfers).toHaveLength(0);
  });

  it("402-repeat: a valid payment refused once, nothing settled; then taken", async () => {
    standIn = await RouterStandIn.start({ prices: { [GPT]: 0.031337 }, x402: "v2" });
    standIn.setFault(GPT, { kind: "402-repeat" }, 1);
    const refused = meter("repeat:1");
    const res = await pay(refused);
    expect(res.status).toBe(402);
    expect(requiredError(res)).toBe("payment could not be settled");
    expect(refused.paymentRefused).toBe(true);
    expect(standIn.refused.map((r) => r.reason)).toEqual(["gateway refused the payment (injected)"]);
    expect(standIn.chain.transfers).toHaveLength(0);
    expect((await pay(meter("repeat:2"))).status).toBe(200);
    expect(standIn.payments).toHaveLength(1);
    expect(standIn.chain.transfers).toHaveLength(1);
  });

  it("hang after payment: settled before the reply that never comes", async () => {
    standIn = await RouterStandIn.start({ prices: { [GPT]: 0.031337 }, x402: "v2" });
    standIn.setFault(GPT, { kind: "hang", afterPayment: true }, 1);
    await expect(pay(meter("hang:1"), { signal: AbortSignal.timeout(1_000) })).rejects.toThrow();
    expect(standIn.payments).toHaveLength(1);
    expect(standIn.chain.transfers).toHaveLength(1);
  });

  it("a replayed or tampered payment (no payment-identifier to dedupe it) is refused by the reference verifier", async () => {
    standIn = await RouterStandIn.start({ prices: { [GPT]: 0.031337 }, x402: "v2" });
    expect((await pay(meter("replay:1"))).status).toBe(200);
    const { extensions: _ids, ...payload } = decodePaymentSignatureHeader(standIn.payments[0]!.header);
    const replay = await send(reencode(payload));
    expect(replay.status).toBe(402);
    expect(requiredError(replay)).toMatch(/nonce/i);
    const inner = payload.payload as { authorization: Record<string, string> };
    const tampered = await send(reencode({ ...payload, payload: { ...inner, authorization: { ...inner.authorization, nonce: `0x${"11".repeat(32)}` } } }));
    expect(tampered.status).toBe(402);
    expect(requiredError(tampered)).toMatch(/signature/i);
    const garbage = await send("%%%");
    expect(garbage.status).toBe(402);
    expect(standIn.refused.map((r) => r.reason)).toEqual([expect.stringMatching(/nonce/i), expect.stringMatching(/signature/i), "payment header is not base64 JSON"]);
    expect(standIn.refusedHeaders).toHaveLength(2);
    expect(standIn.payments).toHaveLength(1);
    expect(standIn.chain.transfers).toHaveLength(1);
  });
});
