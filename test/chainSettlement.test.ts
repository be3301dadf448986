// Payments settled on a real local chain (Hardhat's EDR with Circle's FiatToken v2.2 at USDC's
// Base Sepolia address): the router stand-in's reference facilitator calls transferWithAuthorization,
// the agent's on-chain USDC really falls by what was booked, and the balance monitor alerts and
// pauses from the balance it reads back from the node.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { erc20Abi, parseEventLogs, type Address } from "viem";
import { privateKeyToAccount } from "viem/accounts";
import { startDevChain, type DevChain } from "../src/chain/devChain.js";
import { runBalanceMonitor } from "../jobs/balanceMonitor.js";
import { runChainReconciliation } from "../jobs/chainReconcile.js";
import { chainFacilitator } from "./support/chainFacilitator.js";
import { GPT, LLAMA, TEST_WALLET_KEY, startRouterApp } from "./support/routerApp.js";

let chain: DevChain;
const agent = privateKeyToAccount(TEST_WALLET_KEY).address;
const onChain = (a: Address) => chain.publicClient.readContract({ address: chain.usdc, abi: erc20Abi, functionName: "balanceOf", args: [a] });

beforeAll(async () => {
  chain = await startDevChain();
}, 60_000);
afterAll(async () => {
  await chain?.close();
});

describe("x402 payments settled on the local chain", () => {
  it("settles each payment with transferWithAuthorization: the on-chain balance falls by exactly what was booked", async () => {
    await chain.mint(agent, 5_000_000n);
    const before = await onChain(agent);
    const t = await startRouterApp(
      (c) => (c.router.rpcUrl = chain.url),
      { signer: chainFacilitator(chain.url, chain.account(3)) },
      {},
    );
    try {
      expect(t.app.mode.wallet).toMatch(/USDC on base-sepolia/);
      await t.run(`/model ${GPT}`);
      expect((await t.run("/decide BTC")).text).toMatch(/Model: openai\/gpt-4o · cost \$0\.0313/);
      await t.run(`/model ${LLAMA}`);
      await t.run("/decide BTC");

      const charges = await t.app.services.ledger.charges(0, Date.now() * 2);
      const booked = charges.reduce((s, c) => s + c.costMicro, 0);
      expect(booked).toBe(31_337 + 4_021);
      expect(await onChain(agent)).toBe(before - BigInt(booked));
      // What the wallet reports is the chain's own number, not a booked one.
      expect(await t.app.services.balance.getBalance()).toBe(Number(before) - booked);

      // Each receipt names a real transaction: mined, a USDC Transfer from the agent to the payee.
      for (const c of charges) {
        expect(c.receipt?.transaction).toMatch(/^0x[0-9a-f]{64}$/);
        const receipt = await chain.publicClient.getTransactionReceipt({ hash: c.receipt!.transaction as `0x${string}` });
        expect(receipt.status).toBe("success");
        const [transfer] = parseEventLogs({ abi: erc20Abi, eventName: "Transfer", logs: receipt.logs });
        expect(transfer!.args.from).toBe(agent);
        expect(transfer!.args.value).toBe(BigInt(c.costMicro));
      }
    } finally {
      await t.stop();
    }
  }, 60_000);

  it("the balance monitor alerts low, then critical, and pauses trading, from the balance the chain reports", async () => {
    // A wallet of its own for this test: account 4, with 1.02 USDC (min 1.00, critical 0.50).
    const payer = chain.account(4);
    await chain.mint(payer.address, 1_020_000n);
    const t = await startRouterApp(
      (c) => {
        c.router.rpcUrl = chain.url;
        c.router.privateKey = chain.privateKey(4);
      },
      { signer: chainFacilitator(chain.url, chain.account(3)) },
      {},
    );
    try {
      await t.run(`/model ${GPT}`);
      expect(await runBalanceMonitor(t.app)).toBe("ok");
      await t.run("/decide BTC"); // pays 0.031337 on chain: 0.988663 left, under MIN_BALANCE_USDC
      expect(await onChain(payer.address)).toBe(988_663n);
      expect(await runBalanceMonitor(t.app)).toBe("low");
      expect(t.notices.notices.map((n) => n.text).join("\n")).toMatch(/\$0\.99/);
      // Spent elsewhere (another process, a manual transfer): the monitor sees the chain, not the books.
      await chain.transfer(payer, chain.account(5).address, 500_000n);
      expect(await runBalanceMonitor(t.app)).toBe("critical");
      expect(t.notices.of("critical").length).toBe(1);
      expect(await t.app.services.state.isPaused()).toBe(true);
    } finally {
      await t.stop();
    }
  }, 60_000);
});


describe("reconciliation with the chain", () => {
  it("finds injected drift: a payment booked but never sent, USDC sent with no booking, a booked amount that differs", async () => {
    await chain.mint(chain.account(17).address, 2_000_000n);
    const t = await startRouterApp(
      (c) => {
        c.router.rpcUrl = chain.url;
        c.router.privateKey = chain.privateKey(17);
      },
      { signer: chainFacilitator(chain.url, chain.account(3)) },
      {},
    );
    try {
      await t.run(`/model ${GPT}`);
      await t.run("/decide BTC");
      const job = { ...t.app, chainWallet: t.app.chainWallet! };
      expect(t.app.chainWallet?.address).toBe(chain.account(17).address);
      expect(await runChainReconciliation(job)).toEqual([]);
      expect(t.notices.notices.filter((n) => /Chain reconciliation/.test(n.text))).toHaveLength(0);

      const [paid] = await t.app.services.ledger.charges(0, Date.now() * 2);
      const ledger = t.app.services.ledger;
      // Drift 1: a booking claiming a settlement that never happened.
      await ledger.charge({ decisionId: "forged", model: GPT, costMicro: 10_000, time: t.clock.now, receipt: { status: "settled", transaction: `0x${"ab".repeat(32)}` } });
      // Drift 2: USDC leaving the wallet with no booking.
      const stray = await chain.transfer(chain.account(17), chain.account(18).address, 123_456n);
      // Drift 3: the same settled transaction booked again, so the books say more than the chain moved.
      await ledger.charge({ decisionId: "double", model: GPT, costMicro: 1, time: t.clock.now, receipt: paid!.receipt! });

      const drifts = await runChainReconciliation(job);
      expect(drifts.map((d) => [d.kind, d.transaction]).sort()).toEqual(
        [["different", paid!.receipt!.transaction!.toLowerCase()], ["missing", `0x${"ab".repeat(32)}`], ["unknown", stray.toLowerCase()]].sort(),
      );
      const alerts = t.notices.notices.filter((n) => /Chain reconciliation on base-sepolia: 3 difference/.test(n.text));
      expect(alerts).toHaveLength(1);
      expect(alerts[0]!.kind).toBe("alert");
      expect(alerts[0]!.text).toMatch(/\$0\.123456 left the wallet/);
      // The same drift again is not alerted again.
      await runChainReconciliation(job);
      expect(t.notices.notices.filter((n) => /Chain reconciliation on/.test(n.text))).toHaveLength(1);
    } finally {
      await t.stop();
    }
  }, 60_000);
});
