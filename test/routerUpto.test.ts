// The x402 `upto` scheme end to end on the local chain: the agent signs a maximum (a Permit2
// witness transfer to x402's upto proxy, with a gas-sponsored EIP-2612 approval of Permit2), the
// router stand-in verifies it with the reference facilitator, answers, and settles on chain only
// what the reply used. Permit2 and the proxy are the real contracts at their canonical addresses
// (src/chain/permit2Contracts.json says where their bytecode comes from).
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { erc20Abi, parseEventLogs, type Address, type Hex } from "viem";
import { decodePaymentSignatureHeader } from "@x402/core/http";
import type { PaymentPayload, PaymentRequirements } from "@x402/core/types";
import { PERMIT2_ADDRESS as SDK_PERMIT2, x402UptoPermit2ProxyABI } from "@x402/evm";
import { UptoEvmScheme } from "@x402/evm/upto/facilitator";
import { startDevChain, type DevChain } from "../src/chain/devChain.js";
import { CallMeter } from "../src/payments/paymentMeter.js";
import { PERMIT2_ADDRESS, type SignedTerms } from "../src/payments/x402Payer.js";
import { chainFacilitator } from "./support/chainFacilitator.js";
import { CLAUDE, GPT, startRouterApp, type RouterTestApp } from "./support/routerApp.js";
import { STANDIN_PAYEE, type StandInOptions } from "./support/routerStandIn.js";

const MAX = 31_337n; // GPT's price at the stand-in: the most an `upto` call may settle
const PER_TOKEN = 3; // µUSDC per prompt and completion token

let chain: DevChain;
const usdcOf = (a: Address) => chain.publicClient.readContract({ address: chain.usdc, abi: erc20Abi, functionName: "balanceOf", args: [a] });
const permit2Allowance = (a: Address) => chain.publicClient.readContract({ address: chain.usdc, abi: erc20Abi, functionName: "allowance", args: [a, PERMIT2_ADDRESS] });

beforeAll(async () => {
  chain = await startDevChain({ x402Upto: true });
}, 60_000);
afterAll(async () => {
  await chain?.close();
});

/** The app paying from dev account `index` (1 USDC, no Permit2 allowance) at a v2 stand-in offering `upto`. */
async function uptoApp(index: number, upto: StandInOptions["upto"], edit: Parameters<typeof startRouterApp>[0] = () => {}): Promise<RouterTestApp> {
  await chain.mint(chain.account(index).address, 1_000_000n);
  return startRouterApp(
    (c) => {
      c.router.rpcUrl = chain.url;
      c.router.privateKey = chain.privateKey(index);
      edit(c);
    },
    { x402: "v2", upto, signer: chainFacilitator(chain.url, chain.account(3)) },
    {},
  );
}

describe("x402 upto on the local chain", () => {
  it("signs the maximum, settles what the reply used, and books exactly the settled amount", async () => {
    const agent = chain.account(6).address;
    const t = await uptoApp(6, { perTokenAtomic: PER_TOKEN });
    try {
      const before = await usdcOf(agent);
      const payeeBefore = await usdcOf(STANDIN_PAYEE);
      expect(await permit2Allowance(agent)).toBe(0n);
      await t.run(`/model ${GPT}`);
      await t.run("/decide BTC");

      // The stand-in took one `upto` payment: the maximum signed, less settled (per token used).
      expect(t.standIn.payments).toHaveLength(1);
      const paid = t.standIn.payments[0]!;
      expect(paid).toMatchObject({ scheme: "upto", maxValue: MAX, from: agent });
      const settled = paid.value;
      expect(settled % BigInt(PER_TOKEN)).toBe(0n);
      expect(settled).toBeGreaterThan(0n);
      expect(settled).toBeLessThan(MAX);

      // The chain moved exactly the settled amount, to the payee, in the transaction the receipt names.
      expect(await usdcOf(agent)).toBe(before - settled);
      expect(await usdcOf(STANDIN_PAYEE)).toBe(payeeBefore + settled);
      const tx = await chain.publicClient.getTransactionReceipt({ hash: paid.transaction as Hex });
      expect(tx.status).toBe("success");
      expect(tx.to?.toLowerCase()).toBe(chain.permit2!.uptoProxy.toLowerCase());
      const transfers = parseEventLogs({ abi: erc20Abi, eventName: "Transfer", logs: tx.logs });
      expect(transfers.map((l) => [l.args.from, l.args.to.toLowerCase(), l.args.value])).toEqual([[agent, STANDIN_PAYEE, settled]]);
      // The EIP-2612 approval the agent signed gave Permit2 the maximum, no more; the settlement used part of it.
      expect(await permit2Allowance(agent)).toBe(MAX - settled);

      // Booked: the settled amount, not the maximum that was signed and reserved.
      const charges = await t.app.services.ledger.charges(0, Date.now() * 2);
      expect(charges.map((c) => c.costMicro)).toEqual([Number(settled)]);
      expect(charges[0]!.receipt).toMatchObject({
        status: "settled",
        scheme: "upto",
        x402Version: 2,
        transaction: paid.transaction,
        network: "eip155:84532",
        payer: agent,
      });
      const [record] = await t.app.services.ledger.recent(1);
      expect(record!.costMicro).toBe(Number(settled));
      // The wallet the rules watch is the chain's own balance.
      expect(await t.app.services.balance.getBalance()).toBe(Number(before - settled));
      expect((await t.run("/report")).text).toMatch(/Payments: 1 settled, 0 pending, 0 failed[\s\S]*sepolia\.basescan\.org\/tx\/0x[0-9a-f]{64}/);
    } finally {
      await t.stop();
    }
  }, 60_000);

  it("a crash after an upto payment settled: the retry books the settled amount, not the signed maximum", async () => {
    const agent = chain.account(10).address;
    const t = await uptoApp(10, { perTokenAtomic: PER_TOKEN });
    let kill: (() => void) | undefined;
    try {
      const rt = t.app.services.models.runtime!;
      await t.app.services.state.chooseModel(GPT);
      const before = await usdcOf(agent);
      let reached!: () => void;
      const frozen = new Promise<void>((r) => (reached = r));
      // The process stops right after the payment came back settled, before anything was booked.
      rt.pauseAt = async (at) => {
        if (at !== "paid") return;
        reached();
        await new Promise<never>((_, reject) => (kill = () => reject(new Error("process killed"))));
      };
      const req = { decisionId: "upto:crash", symbol: "BTC/USDT" as const, trigger: "chat" as const };
      void t.app.decide(req).catch(() => {});
      await frozen;
      rt.pauseAt = undefined;
      await t.app.decide(req);

      expect(t.standIn.payments).toHaveLength(1);
      const settled = t.standIn.payments[0]!.value;
      expect(settled).toBeLessThan(MAX);
      expect(await usdcOf(agent)).toBe(before - settled);
      const charges = await t.app.services.ledger.charges(0, Date.now() * 2);
      expect(charges.map((c) => c.costMicro)).toEqual([Number(settled)]);
      expect((await rt.journal.read(req.decisionId))!.unsettled).toEqual([]);
    } finally {
      kill?.();
      await t.stop();
    }
  }, 60_000);

  it("a settlement above the signed maximum is refused and not booked; settled later on chain, the recovery books it", async () => {
    const agent = chain.account(7).address;
    const t = await uptoApp(7, { perTokenAtomic: PER_TOKEN, settleAtomic: (_used, max) => max + 1n }, (c) => (c.router.fallbackModels = []));
    try {
      const before = await usdcOf(agent);
      const payeeBefore = await usdcOf(STANDIN_PAYEE);
      await t.run(`/model ${GPT}`);
      await t.run("/decide BTC");
      expect(t.standIn.payments).toHaveLength(0);
      expect(t.standIn.refused.map((r) => r.reason)).toEqual(["settle: invalid_upto_evm_payload_settlement_exceeds_amount"]);
      expect(await usdcOf(agent)).toBe(before);
      expect(await usdcOf(STANDIN_PAYEE)).toBe(payeeBefore);

      // The gateway took nothing: nothing is booked, the refusal is kept; the signed maximum stays valid
      // until its deadline, so its reservation stays and the recovery watches the chain.
      const [record] = await t.app.services.ledger.recent(1);
      expect(record!.attempts!.filter((a) => a.model === GPT)).toEqual([expect.objectContaining({ ok: false, failure: "payment", costMicro: 0 })]);
      expect(await t.app.services.ledger.charges(0, Date.now() * 2)).toEqual([]);
      expect((await t.app.services.ledger.refusals(0, Date.now() * 2)).map((r) => r.micro)).toEqual([Number(MAX)]);
      const rt = t.app.services.models.runtime!;
      expect((await rt.budget.status(t.clock.now)).reservedTodayMicro).toBe(Number(MAX));
      expect(await t.app.recoverPayments()).toMatchObject({ booked: [], released: [], waiting: 1 });

      // The chain agrees on both counts: the proxy itself refuses more than the maximum, and still
      // settles the maximum later. So booking less than the maximum here could under-book.
      expect(t.standIn.refusedHeaders).toHaveLength(1);
      const payload = decodePaymentSignatureHeader(t.standIn.refusedHeaders[0]!);
      const facilitator = chain.account(3);
      const args = settleWithPermitArgs(payload, MAX + 1n);
      await expect(
        chain.publicClient.simulateContract({ account: facilitator, address: chain.permit2!.uptoProxy, abi: x402UptoPermit2ProxyABI, functionName: "settleWithPermit", args }),
      ).rejects.toThrow(/AmountExceedsPermitted/);
      const late = await new UptoEvmScheme(chainFacilitator(chain.url, facilitator)).settle(payload, { ...(payload.accepted as PaymentRequirements), amount: MAX.toString() });
      expect(late).toMatchObject({ success: true, amount: MAX.toString() });
      expect(await usdcOf(agent)).toBe(before - MAX);
      expect(await usdcOf(STANDIN_PAYEE)).toBe(payeeBefore + MAX);
      // The chain shows it used: the recovery books the maximum, once, and lets the reservation go.
      expect((await t.app.recoverPayments()).booked).toEqual([expect.objectContaining({ micro: Number(MAX), why: "used on chain after a refusal" })]);
      expect((await t.app.services.ledger.charges(0, Date.now() * 2)).map((c) => c.costMicro)).toEqual([Number(MAX)]);
      expect((await rt.budget.status(t.clock.now)).reservedTodayMicro).toBe(0);
      expect((await t.app.recoverPayments()).booked).toEqual([]);
    } finally {
      await t.stop();
    }
  }, 60_000);

  it("never signs the unlimited ERC-20 approval a server offers to sponsor; a wallet that approved Permit2 itself pays", async () => {
    const wallet = chain.account(9);
    const t = await uptoApp(9, { perTokenAtomic: PER_TOKEN, sponsors: "erc20ApprovalGasSponsoring" }, (c) => (c.router.fallbackModels = []));
    try {
      await t.run(`/model ${GPT}`);
      await t.run("/decide BTC");
      // The payment left without the approve(Permit2, 2^256 - 1) transaction the SDK would have
      // signed, so the facilitator finds no allowance and refuses it.
      expect(t.standIn.refused.map((r) => r.reason)).toEqual(["permit2_allowance_required"]);
      const refused = decodePaymentSignatureHeader(t.standIn.refusedHeaders[0]!);
      expect(refused.accepted.scheme).toBe("upto");
      expect((refused.extensions?.erc20ApprovalGasSponsoring as { info?: { signedTransaction?: string } } | undefined)?.info?.signedTransaction).toBeUndefined();
      expect(await permit2Allowance(wallet.address)).toBe(0n);
      // The reference resource server says so with 412, not 402: still a refused payment, not a
      // server error. Nothing is booked; the refusal is kept.
      expect(t.standIn.callsTo(GPT).map((c) => c.status)).toEqual([402, 412]);
      const [refusedCall] = await t.app.services.ledger.recent(1);
      expect(refusedCall!.attempts).toEqual([expect.objectContaining({ model: GPT, ok: false, failure: "payment", costMicro: 0 })]);
      expect(await t.app.services.ledger.charges(0, Date.now() * 2)).toEqual([]);
      expect((await t.app.services.ledger.refusals(0, Date.now() * 2)).map((r) => r.reason)).toEqual([expect.stringMatching(/permit2_allowance_required|412/)]);

      // The owner approves Permit2 on chain (a bounded allowance); from then on no extension is needed.
      await chain.approve(wallet, PERMIT2_ADDRESS, 100_000n);
      const before = await usdcOf(wallet.address);
      t.clock.advance(1);
      await t.run("/decide BTC");
      expect(t.standIn.payments).toHaveLength(1);
      const paid = t.standIn.payments[0]!;
      expect(Object.keys(decodePaymentSignatureHeader(paid.header).extensions ?? {})).toEqual(["payment-identifier"]);
      expect(await usdcOf(wallet.address)).toBe(before - paid.value);
      expect(await permit2Allowance(wallet.address)).toBe(100_000n - paid.value);
      const [record] = await t.app.services.ledger.recent(1);
      expect(record!.costMicro).toBe(Number(paid.value));
    } finally {
      await t.stop();
    }
  }, 60_000);

  it("refuses an upto maximum above MAX_PRICE_PER_CALL_USDC before signing; the next model's lower maximum is paid", async () => {
    const agent = chain.account(8).address;
    const t = await uptoApp(8, { perTokenAtomic: PER_TOKEN }, (c) => {
      c.routing.maxPricePerCall = 0.03;
      c.routing.modelPrices = { [GPT]: 0.02, [CLAUDE]: 0.021113 };
      c.router.fallbackModels = [CLAUDE];
    });
    try {
      const before = await usdcOf(agent);
      await t.run(`/model ${GPT}`);
      expect((await t.run("/decide BTC")).text).toMatch(/Model: anthropic\/claude-3-5-sonnet/);
      // GPT was asked once, unpaid: nothing was signed for its 0.031337 maximum.
      expect(t.standIn.callsTo(GPT).map((c) => [c.status, c.paid])).toEqual([[402, false]]);
      expect(t.notices.of("alert").map((n) => n.text).join("\n")).toMatch(/asked \$0\.0313, above MAX_PRICE_PER_CALL_USDC \$0\.0300/);
      const [record] = await t.app.services.ledger.recent(1);
      expect(record!.attempts![0]).toMatchObject({ model: GPT, ok: false, failure: "over-price", costMicro: 0 });
      // CLAUDE's maximum was under the cap: signed, settled for its usage, and that is what was booked and moved.
      expect(t.standIn.payments.map((p) => [p.model, p.scheme, p.maxValue])).toEqual([[CLAUDE, "upto", 21_113n]]);
      const settled = t.standIn.payments[0]!.value;
      expect(settled).toBeLessThan(21_113n);
      expect(await usdcOf(agent)).toBe(before - settled);
      expect((await t.app.services.ledger.charges(0, Date.now() * 2)).map((c) => [c.model, c.costMicro])).toEqual([[CLAUDE, Number(settled)]]);
    } finally {
      await t.stop();
    }
  }, 60_000);
});

describe("the guards on what an upto payment carries", () => {
  const offer = { scheme: "upto", network: "eip155:84532", asset: "0x036CbD53842c5426634e7929541eC2318f3dCF7e", payTo: STANDIN_PAYEE, maxTimeoutSeconds: 300 };
  const payer = "0x9965507D1a55bcC2695C58ba16FB37d819B0A4dc";
  const approved = async (): Promise<CallMeter> => {
    const meter = new CallMeter({ approve: async () => ({ ok: true }), beforeSend: async () => {} }, { network: "base-sepolia", payer });
    await meter.approve([{ x402Version: 2, dialect: "v2", ...offer, amountMicro: 31_337, raw: offer as never, paymentRequired: {} as never }]);
    return meter;
  };
  const terms = (change: Partial<SignedTerms> = {}): SignedTerms => ({
    from: payer,
    to: STANDIN_PAYEE,
    valueMicro: 31_337,
    validForSeconds: 300,
    approval: { from: payer, spender: PERMIT2_ADDRESS, asset: offer.asset, amountMicro: 31_337, validForSeconds: 300 },
    signedApproveTx: false,
    ...change,
  });

  it("lets an EIP-2612 approval of Permit2 for at most the approved price and the offer's time leave, and nothing wider", async () => {
    expect(PERMIT2_ADDRESS).toBe(SDK_PERMIT2);
    const ok = await approved();
    await ok.beforeSend(terms());
    expect(ok.sentMicro).toBe(31_337);

    const refusals: [Partial<SignedTerms>, RegExp][] = [
      [{ approval: { from: payer, spender: "0x000000000000000000000000000000000000dEaD", asset: offer.asset, amountMicro: 31_337, validForSeconds: 300 } }, /signed approval is for 0x0+dEaD, not Permit2/],
      [{ approval: { from: payer, spender: PERMIT2_ADDRESS, asset: offer.asset, amountMicro: 31_338, validForSeconds: 300 } }, /signed approval 31338 exceeds the approved 31337/],
      [{ approval: { from: payer, spender: PERMIT2_ADDRESS, asset: "0x0000000000000000000000000000000000000bad", amountMicro: 31_337, validForSeconds: 300 } }, /another token/],
      [{ approval: { from: payer, spender: PERMIT2_ADDRESS, asset: offer.asset, amountMicro: 31_337, validForSeconds: 3600 } }, /signed approval is valid for 3600 s, more than the 300 s/],
      [{ signedApproveTx: true }, /signed token approval transaction/],
    ];
    for (const [change, reason] of refusals) {
      const meter = await approved();
      await expect(meter.beforeSend(terms(change))).rejects.toThrow(reason);
      expect(meter.sentMicro).toBe(0);
    }
  });
});

/** The upto proxy's settleWithPermit arguments for a signed payload, settling `amount`. */
function settleWithPermitArgs(payload: PaymentPayload, amount: bigint) {
  const a = (payload.payload as { permit2Authorization: { from: Address; permitted: { token: Address; amount: string }; nonce: string; deadline: string; witness: { to: Address; facilitator: Address; validAfter: string } } }).permit2Authorization;
  const signature = (payload.payload as { signature: Hex }).signature;
  const permit = (payload.extensions!.eip2612GasSponsoring as { info: { amount: string; deadline: string; signature: Hex } }).info;
  const sig = permit.signature.slice(2);
  return [
    { value: BigInt(permit.amount), deadline: BigInt(permit.deadline), r: `0x${sig.slice(0, 64)}` as Hex, s: `0x${sig.slice(64, 128)}` as Hex, v: parseInt(sig.slice(128, 130), 16) },
    { permitted: { token: a.permitted.token, amount: BigInt(a.permitted.amount) }, nonce: BigInt(a.nonce), deadline: BigInt(a.deadline) },
    amount,
    a.from,
    { to: a.witness.to, facilitator: a.witness.facilitator, validAfter: BigInt(a.witness.validAfter) },
    signature,
  ] as const;
}
