// Refills that move real USDC on the local chain, from a funding wallet to the agent's wallet:
// confirmed in chat, capped per day, one transfer per request even across a crash, and a clear
// refusal (nothing booked) when the funding wallet is short, the RPC is down or the token reverts.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Redis } from "ioredis";
import { erc20Abi, type Address } from "viem";
import { startDevChain, type DevChain } from "../src/chain/devChain.js";
import { UsdcRefiller } from "../src/payments/usdcRefill.js";
import { runBalanceMonitor } from "../jobs/balanceMonitor.js";
import { runChainReconciliation } from "../jobs/chainReconcile.js";
import { freshRedisUrl } from "./support/app.js";
import { chainFacilitator } from "./support/chainFacilitator.js";
import { startRouterApp } from "./support/routerApp.js";

let chain: DevChain;
let redis: Redis;
const bal = (a: Address) => chain.publicClient.readContract({ address: chain.usdc, abi: erc20Abi, functionName: "balanceOf", args: [a] });
const incoming = async (a: Address) => (await chain.publicClient.getLogs({ address: chain.usdc, event: erc20Abi.find((x) => x.type === "event" && x.name === "Transfer") as never, args: { to: a } as never, fromBlock: 0n })).length;

beforeAll(async () => {
  chain = await startDevChain();
  redis = new Redis(await freshRedisUrl());
}, 60_000);
afterAll(async () => {
  await redis?.quit();
  await chain?.close();
});

const refiller = (funding: number, agent: Address, more: Partial<ConstructorParameters<typeof UsdcRefiller>[0]> = {}) =>
  new UsdcRefiller({ redis, network: "base-sepolia", rpcUrl: chain.url, fundingKey: chain.privateKey(funding), agent, maxPerDayMicro: 20_000_000, ...more });

/** The app paying from dev account `agent`, refilled from dev account `funding` (minted 50 USDC). */
async function refillApp(funding: number, agent: number) {
  await chain.mint(chain.account(funding).address, 50_000_000n);
  return startRouterApp(
    (c) => {
      c.router.rpcUrl = chain.url;
      c.router.privateKey = chain.privateKey(agent);
      c.balance.refillFromKey = chain.privateKey(funding);
    },
    { signer: chainFacilitator(chain.url, chain.account(3)) },
    {},
  );
}

describe("on-chain refills", () => {
  it("/refill 5, confirmed by an admin, moves 5 USDC from the funding wallet and shows the transaction", async () => {
    const funding = chain.account(6);
    const t = await refillApp(6, 7);
    try {
      const agent = chain.account(7).address;
      const ask = await t.run("/refill 5");
      expect(ask.text).toMatch(/move \$5\.00 of real USDC from the funding wallet/);
      const done = await t.run("/confirm LAST".replace("LAST", ask.confirmationId!));
      expect(done.text).toMatch(/Refilled \$5\.00 on chain: 0x[0-9a-f]{64}\nUSDC balance now \$5\.00/);
      expect(await bal(agent)).toBe(5_000_000n);
      expect(await bal(funding.address)).toBe(45_000_000n);
    } finally {
      await t.stop();
    }
  }, 60_000);

  it("the chain reconciliation matches logged refills with the USDC that came in from the funding wallet", async () => {
    const funding = chain.account(17);
    const t = await refillApp(17, 18);
    try {
      const agent = chain.account(18).address;
      expect(t.app.chainWallet).toMatchObject({ address: agent, funder: funding.address });
      const job = { ...t.app, chainWallet: t.app.chainWallet! };
      const ask = await t.run("/refill 3");
      await t.run(`/confirm ${ask.confirmationId!}`);
      expect(await bal(agent)).toBe(3_000_000n);
      expect(await runChainReconciliation(job)).toEqual([]);

      // USDC sent from the funding wallet by hand: no refill logged for it.
      const byHand = await chain.transfer(funding, agent, 250_000n);
      // A deposit from anyone else is not a refill, and not a difference.
      await chain.mint(chain.account(5).address, 1_000_000n);
      await chain.transfer(chain.account(5), agent, 100_000n);
      // A refill logged whose transfer never happened (a corrupted or forged log).
      const forged = `0x${"cd".repeat(32)}`;
      await t.app.redis.lpush("refill:log", JSON.stringify({ hash: forged, amountMicro: 1_000_000, at: t.clock.now }));

      const drifts = await runChainReconciliation(job);
      expect(drifts.map((d) => [d.of, d.kind, d.transaction]).sort()).toEqual([["refill", "missing", forged], ["refill", "unknown", byHand.toLowerCase()]].sort());
      const alert = t.notices.notices.find((n) => /Chain reconciliation on base-sepolia: 2 difference/.test(n.text));
      expect(alert?.text).toMatch(/refill unknown: \$0\.250000 came in from the funding wallet/);
      expect(alert?.text).toMatch(/refill missing: a refill of \$1\.000000 is logged as confirmed/);
    } finally {
      await t.stop();
    }
  }, 60_000);

  it("a crash after sending, then a retry of the same request: the USDC moves once", async () => {
    const agent = chain.account(8).address;
    await chain.mint(chain.account(9).address, 10_000_000n);
    const crashing = refiller(9, agent, { crashAt: (step) => { if (step === "sent") throw new Error("crash: process died"); } });
    await expect(crashing.refill("req-crash", 2_000_000)).rejects.toThrow(/crash/);
    await redis.del("refill:intent:req-crash:lock"); // the dead process's lock, as its expiry would
    const again = await refiller(9, agent).refill("req-crash", 2_000_000);
    expect(again).toMatchObject({ ok: true, balanceMicro: 2_000_000 });
    expect(await refiller(9, agent).refill("req-crash", 2_000_000)).toMatchObject({ ok: true, again: true });
    expect(await bal(agent)).toBe(2_000_000n);
    expect(await incoming(agent)).toBe(1);
  }, 60_000);

  it("a crash after signing, before sending: the retry sends the same signed transaction, once", async () => {
    const agent = chain.account(10).address;
    await chain.mint(chain.account(11).address, 10_000_000n);
    const crashing = refiller(11, agent, { crashAt: (step) => { if (step === "signed") throw new Error("crash: process died"); } });
    await expect(crashing.refill("req-signed", 1_500_000)).rejects.toThrow(/crash/);
    await redis.del("refill:intent:req-signed:lock");
    const hash = await redis.hget("refill:intent:req-signed", "hash");
    const r = await refiller(11, agent).refill("req-signed", 1_500_000);
    expect(r).toMatchObject({ ok: true, hash });
    expect(await bal(agent)).toBe(1_500_000n);
  }, 60_000);

  it("refuses, moving and booking nothing: a short funding wallet, the daily cap, a down RPC, a reverted transfer", async () => {
    const agent = chain.account(12).address;
    const funder = chain.account(13);
    await chain.mint(funder.address, 3_000_000n);
    const short = await refiller(13, agent).refill("short", 5_000_000);
    expect(short).toMatchObject({ ok: false, reason: expect.stringMatching(/funding wallet .* holds \$3\.00 USDC, less than the \$5\.00 asked/) });

    const capped = refiller(13, agent, { maxPerDayMicro: 2_000_000, clock: () => Date.UTC(2030, 0, 1) });
    expect(await capped.refill("cap-1", 1_500_000)).toMatchObject({ ok: true });
    expect(await capped.refill("cap-2", 1_000_000)).toMatchObject({ ok: false, reason: expect.stringMatching(/REFILL_MAX_PER_DAY_USDC is \$2\.00 and \$1\.50 was refilled today/) });
    // Concurrent requests near the cap: the reservation is atomic, so at most one fits.
    const both = await Promise.all([capped.refill("cap-3", 400_000), capped.refill("cap-4", 400_000)]);
    expect(both.filter((b) => b.ok)).toHaveLength(1);

    const down = new UsdcRefiller({ redis, network: "base-sepolia", rpcUrl: "http://127.0.0.1:9", fundingKey: chain.privateKey(13), agent, maxPerDayMicro: 20_000_000 });
    expect(await down.refill("down", 100_000)).toMatchObject({ ok: false, reason: expect.stringMatching(/RPC could not be reached.*nothing was sent/) });

    await chain.admin("blacklist", [agent]);
    expect(await refiller(13, agent).refill("reverted", 100_000)).toMatchObject({ ok: false, reason: expect.stringMatching(/would revert|reverted/) });
    // Failed requests gave their reservation back: only the one refill of 1.50 counts today.
    expect(await bal(agent)).toBe(1_900_000n);
    expect(await incoming(agent)).toBe(2);
    const okOnes = (await redis.lrange("refill:log", 0, -1)).map((l) => JSON.parse(l) as { amountMicro: number }).filter((l) => [1_500_000, 400_000].includes(l.amountMicro));
    expect(okOnes.length).toBeGreaterThanOrEqual(2);
  }, 60_000);

  it("auto-refill asks an admin once per crossing of REFILL_THRESHOLD_USDC", async () => {
    await chain.mint(chain.account(14).address, 50_000_000n);
    await chain.mint(chain.account(15).address, 1_000_000n); // under the 2.00 threshold
    const t = await startRouterApp(
      (c) => {
        c.router.rpcUrl = chain.url;
        c.router.privateKey = chain.privateKey(15);
        c.balance.refillFromKey = chain.privateKey(14);
        c.balance.autoRefill = true;
        c.balance.refillAmount = 3;
      },
      { signer: chainFacilitator(chain.url, chain.account(3)) },
      {},
    );
    try {
      await runBalanceMonitor(t.app);
      await runBalanceMonitor(t.app);
      const asks = t.notices.notices.filter((n) => /Auto-refill: the USDC balance is under \$2\.00/.test(n.text));
      expect(asks).toHaveLength(1);
      const done = await t.run(`/confirm ${asks[0]!.confirmationId}`);
      expect(done.text).toMatch(/Refilled \$3\.00 on chain/);
      expect(await bal(chain.account(15).address)).toBe(4_000_000n);
      await runBalanceMonitor(t.app); // above the threshold again: the next crossing may ask again
      await chain.transfer(chain.account(15), chain.account(16).address, 3_000_000n);
      await runBalanceMonitor(t.app);
      expect(t.notices.notices.filter((n) => /Auto-refill: the USDC balance is under/.test(n.text))).toHaveLength(2);
    } finally {
      await t.stop();
    }
  }, 60_000);
});

