// Paying the hosted Dreams Router as it runs today: permit sessions, against the stand-in built from
// Daydreams' published facilitator (test/support/xgateStandIn.ts), settling on the local chain with
// Circle's FiatToken. What the agent booked is held against what the chain moved.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { main as backtestMain } from "../src/backtest/cli.js";
import { createWalletClient, erc20Abi, http, parseAbi, parseSignature, type Address } from "viem";
import { baseSepolia } from "viem/chains";
import { startDevChain, type DevChain } from "../src/chain/devChain.js";
import type { AppOptions } from "../src/app.js";
import type { Config } from "../src/config/config.js";
import { chainFacilitator } from "./support/chainFacilitator.js";
import { freshRedisUrl, startTestApp, testConfig, waitFor, type TestApp } from "./support/app.js";
import { XGATE_MODELS, XgateStandIn, type XgateStandInOptions } from "./support/xgateStandIn.js";

const CLAUDE = "anthropic:claude-sonnet-4-6";
const CLAUDE_PRICE = 12_041;
const FACILITATOR = 12;

let chain: DevChain;
beforeAll(async () => {
  chain = await startDevChain();
}, 60_000);
afterAll(async () => {
  await chain?.close();
});

const usdcOf = (a: Address) => chain.publicClient.readContract({ address: chain.usdc, abi: erc20Abi, functionName: "balanceOf", args: [a] });
const allowanceOf = (owner: Address, spender: Address) => chain.publicClient.readContract({ address: chain.usdc, abi: erc20Abi, functionName: "allowance", args: [owner, spender] });
const nonceOf = (owner: Address) => chain.publicClient.readContract({ address: chain.usdc, abi: parseAbi(["function nonces(address) view returns (uint256)"]), functionName: "nonces", args: [owner] });

interface SessionTest extends TestApp {
  standIn: XgateStandIn;
  agent: Address;
  stop(): Promise<void>;
}

/** An agent paying the hosted-router stand-in from wallet `index` (minted `usdc` µUSDC), by permit session. */
async function sessionApp(index: number, o: { standIn?: Partial<XgateStandInOptions>; existing?: XgateStandIn; url?: string; usdc?: bigint; edit?: (c: Config) => void; app?: AppOptions } = {}): Promise<SessionTest> {
  const agent = chain.account(index).address;
  if (o.usdc !== 0n) await chain.mint(agent, o.usdc ?? 20_000_000n);
  const standIn =
    o.existing ??
    (await XgateStandIn.start({
      signer: chainFacilitator(chain.url, chain.account(FACILITATOR), "base-sepolia", { pollingIntervalMs: 50 }),
      // Batches settle when a test sweeps.
      sweeper: { intervalMs: 0, idleSettleMs: 0 },
      ...o.standIn,
    }));
  const config = testConfig((c) => {
    c.router.decisionModel = "router";
    c.router.url = standIn.url;
    c.router.privateKey = chain.privateKey(index);
    c.router.auth = "x402";
    c.router.network = "base-sepolia";
    c.router.rpcUrl = chain.url;
    c.router.timeoutMs = 10_000;
    c.market.symbols = ["BTC/USDT"];
    c.routing.cacheTtlMs = 0;
    o.edit?.(c);
  });
  const t = await startTestApp(config, { ...(o.url ? { url: o.url } : {}), ...(o.app ?? {}) });
  await t.app.services.state.chooseModel(CLAUDE);
  return {
    ...t,
    standIn,
    agent,
    async stop() {
      await t.app.stop();
      if (!o.existing) await standIn.close();
    },
  };
}

const decideN = async (t: SessionTest, n: number) => {
  for (let i = 0; i < n; i++) {
    t.clock.advance(1);
    await t.run("/decide BTC");
  }
};
const permitCalls = (s: XgateStandIn) => s.calls.filter((c) => c.auth === "permit");

describe("permit sessions with the hosted router", () => {
  it("pays many calls on one signed permit, books each at the catalogue price, and a batch settles exactly what was booked", async () => {
    const t = await sessionApp(13);
    try {
      const before = await usdcOf(t.agent);
      await decideN(t, 4);
      const calls = permitCalls(t.standIn);
      expect(calls.map((c) => c.status)).toEqual([200, 200, 200, 200]);
      // One signature for all of them: one session at the router, one permit in our books.
      expect(new Set(calls.map((c) => c.sessionId)).size).toBe(1);
      expect(t.standIn.sessions()).toHaveLength(1);
      const [view] = await t.app.sessions!.recent(5);
      expect(view).toMatchObject({ calls: 4, bookedMicro: 4 * CLAUDE_PRICE, settledMicro: 0, status: "open", spender: t.standIn.payTo });
      const charges = await t.app.services.ledger.charges(0, Date.now() * 2);
      expect(charges.map((c) => [c.costMicro, c.receipt?.scheme, c.receipt?.status])).toEqual(Array(4).fill([CLAUDE_PRICE, "permit-session", "pending"]));
      expect((await t.run("/balance")).text).toMatch(/Permit session: [0-9a-f]{8}: cap \$2\.00 · 4 call\(s\) booked \$0\.0482 · settled \$0\.0000 in 0 batch\(es\) · \$0\.0482 not yet settled · open, ends in/);
      // The permit is an allowance: its cap is reserved in the budget until the deadline.
      expect((await t.app.services.models.runtime!.budget.status(t.clock.now)).reservedTodayMicro).toBe(2_000_000 - 4 * CLAUDE_PRICE);

      // The facilitator settles the batch with permit + transferFrom; the reconciliation matches it to the µUSDC.
      await t.standIn.sweep();
      const [batch] = t.standIn.settlements;
      expect(batch).toMatchObject({ success: true, amount: BigInt(4 * CLAUDE_PRICE) });
      expect(await usdcOf(t.agent)).toBe(before - BigInt(4 * CLAUDE_PRICE));
      expect(await t.app.reconcileChain()).toEqual([]);
      const [after] = await t.app.sessions!.recent(1);
      expect(after).toMatchObject({ settledMicro: 4 * CLAUDE_PRICE, batches: 1 });
      const report = (await t.run("/report")).text;
      expect(report).toContain(`batch ${batch!.transaction}: $0.0482 for 4 call(s)`);
      // Two more calls on the same permit (no new signature), and their batch matches too.
      await decideN(t, 2);
      expect(t.standIn.sessions()).toHaveLength(1);
      await t.standIn.sweep();
      expect(await t.app.reconcileChain()).toEqual([]);
      expect((await t.app.sessions!.recent(1))[0]).toMatchObject({ calls: 6, settledMicro: 6 * CLAUDE_PRICE, batches: 2 });
      expect(await usdcOf(t.agent)).toBe(before - BigInt(6 * CLAUDE_PRICE));
    } finally {
      await t.stop();
    }
  }, 90_000);

  it("alerts on a batch that does not match what was booked", async () => {
    const t = await sessionApp(14, { standIn: { overcharge: (p) => p + 1n } });
    try {
      await decideN(t, 2);
      await t.standIn.sweep();
      const drifts = await t.app.reconcileChain();
      expect(drifts).toEqual([expect.objectContaining({ of: "session", kind: "batch-larger" })]);
      expect(t.notices.of("alert").map((n) => n.text).join("\n")).toMatch(/session batch-larger: the router drew \$0\.024084 in 0x[0-9a-f]{64}, more than the \$0\.024082 booked/);
    } finally {
      await t.stop();
    }
  }, 90_000);

  it("two workers on one wallet share one session: one signature, never the same nonce twice", async () => {
    const url = await freshRedisUrl();
    const a = await sessionApp(15, { url });
    const b = await sessionApp(15, { url, existing: a.standIn, usdc: 0n });
    try {
      await Promise.all([0, 1, 2].flatMap((i) => [a.app.decide({ decisionId: `a:${i}`, symbol: "BTC/USDT", trigger: "chat" }), b.app.decide({ decisionId: `b:${i}`, symbol: "BTC/USDT", trigger: "chat" })]));
      const calls = permitCalls(a.standIn);
      expect(calls.map((c) => c.status)).toEqual(Array(6).fill(200));
      expect(a.standIn.sessions()).toHaveLength(1);
      expect(await a.app.sessions!.recent(5)).toHaveLength(1);
    } finally {
      await b.stop();
      await a.stop();
    }
  }, 90_000);

  it("session_closed in the middle of a run: a new permit is signed, at the next nonce, and the run goes on", async () => {
    const t = await sessionApp(16);
    try {
      await decideN(t, 2);
      const nonce = await nonceOf(t.agent);
      await t.standIn.closeSessions();
      // The router settled and closed it: its permit was applied, so the nonce moved.
      expect(await nonceOf(t.agent)).toBe(nonce + 1n);
      await decideN(t, 1);
      expect(permitCalls(t.standIn).map((c) => c.code ?? c.status)).toEqual([200, 200, "session_closed", 200]);
      const [now, old] = await t.app.sessions!.recent(2);
      expect(old).toMatchObject({ status: "replaced", calls: 2 });
      expect(now).toMatchObject({ status: "open", calls: 1, nonce: String(nonce + 1n) });
      // What the refused attempt took went back: booked is three calls, nothing for the refusal.
      expect((await t.app.services.ledger.charges(0, Date.now() * 2)).map((c) => c.costMicro)).toEqual([CLAUDE_PRICE, CLAUDE_PRICE, CLAUDE_PRICE]);
    } finally {
      await t.stop();
    }
  }, 90_000);

  it("settlement_blocked after the nonce moved: the permit is replaced, and the calls it never settled are flagged", async () => {
    const t = await sessionApp(17);
    try {
      await decideN(t, 2);
      const [first] = await t.app.sessions!.recent(1);
      // Someone uses the wallet's nonce (the key signs another permit and submits it): the router can never apply ours.
      const owner = chain.account(17);
      const nonce = await nonceOf(t.agent);
      const deadline = BigInt(Math.floor(Date.now() / 1000) + 600);
      const signature = await owner.signTypedData({
        domain: { name: "USDC", version: "2", chainId: chain.chainId, verifyingContract: chain.usdc },
        types: { Permit: [{ name: "owner", type: "address" }, { name: "spender", type: "address" }, { name: "value", type: "uint256" }, { name: "nonce", type: "uint256" }, { name: "deadline", type: "uint256" }] },
        primaryType: "Permit",
        message: { owner: owner.address, spender: chain.account(18).address, value: 1n, nonce, deadline },
      });
      const sig = parseSignature(signature);
      await createWalletClient({ account: owner, chain: baseSepolia, transport: http(chain.url) }).writeContract({ address: chain.usdc, abi: parseAbi(["function permit(address,address,uint256,uint256,uint8,bytes32,bytes32)"]), functionName: "permit", args: [owner.address, chain.account(18).address, 1n, deadline, Number(sig.v), sig.r, sig.s] });
      await t.standIn.sweep();
      expect(t.standIn.settlements.at(-1)).toMatchObject({ success: false });
      await decideN(t, 1);
      expect(permitCalls(t.standIn).map((c) => c.code ?? c.status)).toEqual([200, 200, "settlement_blocked", 200]);
      const [now] = await t.app.sessions!.recent(1);
      expect(now!.id).not.toBe(first!.id);
      // The first permit's two calls will never be drawn: after its deadline the reconciliation says so.
      const later = () => Date.now() + 2 * 3_600_000;
      const drifts = await t.app.reconcileChain(later);
      expect(drifts).toEqual(expect.arrayContaining([expect.objectContaining({ of: "session", kind: "never-settled", transaction: first!.id })]));
    } finally {
      await t.stop();
    }
  }, 90_000);

  it("session_permit_mismatch (another agent signed the same nonce): tried once more, then the call is refused and nothing is booked", async () => {
    const url = await freshRedisUrl();
    const first = await sessionApp(19, { url });
    // A second agent with its own keys and the same wallet (a copy of .env elsewhere): it cannot know the first one's permit.
    const second = await sessionApp(19, {
      url,
      existing: first.standIn,
      usdc: 0n,
      edit: (c) => {
        c.redis.keyPrefix = "other-agent:";
        c.router.sessionCap = 1.5;
      },
    });
    try {
      await decideN(first, 1);
      const reply = await second.run("/decide BTC");
      expect(reply.text).toMatch(/Model: offline-engine/);
      expect(reply.text).toMatch(/session-wait, the router refused a fresh permit too \(session_permit_mismatch/);
      expect(permitCalls(first.standIn).map((c) => c.code ?? c.status)).toEqual([200, "session_permit_mismatch", "session_permit_mismatch"]);
      expect(await second.app.services.ledger.charges(0, Date.now() * 2)).toEqual([]);
      expect((await second.app.services.ledger.refusals(0, Date.now() * 2)).map((r) => r.reason)).toEqual([expect.stringMatching(/session_permit_mismatch/)]);
    } finally {
      await second.stop();
      await first.stop();
    }
  }, 90_000);

  it("insufficient_token_balance: the low-balance alert, paid calls stop, no retry loop", async () => {
    // The rules watch a simulated wallet here, so only the router sees the empty wallet on chain.
    const t = await sessionApp(20, { usdc: 0n, app: { paperWallet: true } });
    try {
      await decideN(t, 3);
      expect(permitCalls(t.standIn).map((c) => c.code ?? c.status)).toEqual(["insufficient_token_balance"]);
      const alerts = t.notices.of("alert").map((n) => n.text);
      expect(alerts.filter((a) => /holds too little USDC/.test(a))).toHaveLength(1);
      const [record] = await t.app.services.ledger.recent(1);
      expect(record).toMatchObject({ model: "offline-engine" });
      expect(await t.app.services.ledger.charges(0, Date.now() * 2)).toEqual([]);
    } finally {
      await t.stop();
    }
  }, 90_000);

  it("a permit's cap is what the budget still allows: never crossed, counting what the open permit still allows", async () => {
    const t = await sessionApp(21, {
      edit: (c) => {
        c.balance.dailyBudget = 0.05;
        c.routing.maxSpendPerDecision = 0.05;
      },
    });
    try {
      await Promise.all(Array.from({ length: 8 }, (_, i) => t.app.decide({ decisionId: `cap:${i}`, symbol: "BTC/USDT", trigger: "chat" })));
      // The permit was signed for the day's budget, not SESSION_CAP_USDC ($2).
      expect(t.standIn.sessions().map((s) => s.cap)).toEqual(["50000"]);
      const booked = (await t.app.services.ledger.charges(0, Date.now() * 2)).reduce((s, c) => s + c.costMicro, 0);
      expect(booked).toBe(4 * CLAUDE_PRICE);
      const status = await t.app.services.models.runtime!.budget.status(t.clock.now);
      expect(status.spentTodayMicro + status.reservedTodayMicro).toBeLessThanOrEqual(50_000);
      expect(permitCalls(t.standIn).filter((c) => c.status === 200)).toHaveLength(4);
      await t.standIn.sweep();
      expect(t.standIn.settlements.reduce((s, x) => s + x.amount, 0n)).toBe(BigInt(booked));
    } finally {
      await t.stop();
    }
  }, 90_000);

  it("revocation uses up the permit's nonce and leaves an allowance of 0; the old permit can never be submitted again", async () => {
    const t = await sessionApp(22);
    try {
      await decideN(t, 1);
      // Without ETH for gas the wallet cannot submit anything: the revocation says the deadline is the bound.
      const noGas = await t.run(`/confirm ${(await t.run("/session revoke")).confirmationId!}`);
      expect(noGas.text).toMatch(/could not revoke on chain \([^)]*\): the permit stays usable by the router until its deadline, \d\d:\d\d UTC/);
      expect((await t.run("/session")).text).toMatch(/revoked here; on chain usable until \d\d:\d\d UTC \(the deadline is the bound/);
      await chain.fund(t.agent);
      const [p] = await t.app.sessions!.recent(1);
      expect(await allowanceOf(t.agent, t.standIn.payTo)).toBe(0n);
      const ask = await t.run("/session revoke");
      expect(ask.text).toMatch(/Revoke the router's permit/);
      const done = await t.run(`/confirm ${ask.confirmationId!}`);
      expect(done.text).toMatch(/revoked: its nonce was used \(0x[0-9a-f]{64}\) and the allowance set to 0 \(0x[0-9a-f]{64}\)/);
      expect(await allowanceOf(t.agent, t.standIn.payTo)).toBe(0n);
      expect(await nonceOf(t.agent)).toBe(BigInt(p!.nonce) + 1n);
      // The facilitator tries to submit the old permit: the nonce is spent.
      const sig = parseSignature(p!.signature);
      await expect(
        chain.publicClient.simulateContract({
          account: chain.account(FACILITATOR),
          address: chain.usdc,
          abi: parseAbi(["function permit(address,address,uint256,uint256,uint8,bytes32,bytes32)"]),
          functionName: "permit",
          args: [t.agent, t.standIn.payTo, BigInt(p!.capMicro), BigInt(p!.deadline), Number(sig.v), sig.r, sig.s],
        }),
      ).rejects.toThrow(/invalid signature/i);
      expect((await t.run("/status")).text).toMatch(/revoked on chain \(nonce used, allowance 0\)/);
    } finally {
      await t.stop();
    }
  }, 90_000);
});

describe("a process killed after a call was sent and before it was booked", () => {
  it("after the restart, the recovery books it once: paid == booked", async () => {
    const url = await freshRedisUrl();
    const t = await sessionApp(23, { url });
    const frozen = new Promise<void>(() => {});
    t.app.services.models.runtime!.pauseAt = (step) => (step === "paid" ? frozen : Promise.resolve());
    void t.app.decide({ decisionId: "killed:1", symbol: "BTC/USDT", trigger: "chat" });
    await waitFor("the router's answer", async () => permitCalls(t.standIn).some((c) => c.status === 200));
    // As kill -9 would: the process's payer heartbeat stops, and nothing more runs in it.
    await t.app.payer!.stop();
    const restarted = await sessionApp(23, { url, existing: t.standIn, usdc: 0n });
    try {
      const recovered = await restarted.app.recoverPayments();
      expect(recovered.booked).toEqual([expect.objectContaining({ micro: CLAUDE_PRICE })]);
      expect((await restarted.app.recoverPayments()).booked).toEqual([]);
      const charges = await restarted.app.services.ledger.charges(0, Date.now() * 2);
      expect(charges.map((c) => c.costMicro)).toEqual([CLAUDE_PRICE]);
      // The router charged the session exactly that.
      await t.standIn.sweep();
      expect(t.standIn.settlements.map((s) => s.amount)).toEqual([BigInt(CLAUDE_PRICE)]);
      expect((await restarted.app.sessions!.recent(1))[0]).toMatchObject({ calls: 1, bookedMicro: CLAUDE_PRICE });
    } finally {
      await restarted.stop();
      await t.standIn.close();
    }
  }, 90_000);
});

describe("a backtest with --real-calls", () => {
  it("pays through the same permit session and books as live decisions", async () => {
    const index = 24;
    await chain.mint(chain.account(index).address, 5_000_000n);
    const standIn = await XgateStandIn.start({ signer: chainFacilitator(chain.url, chain.account(FACILITATOR), "base-sepolia", { pollingIntervalMs: 50 }), sweeper: { intervalMs: 0, idleSettleMs: 0 } });
    const out = mkdtempSync(join(tmpdir(), "backtest-paid-"));
    const captured: string[] = [];
    const outWrite = process.stdout.write.bind(process.stdout);
    const errWrite = process.stderr.write.bind(process.stderr);
    process.stdout.write = ((s: string) => (captured.push(String(s)), true)) as typeof process.stdout.write;
    process.stderr.write = ((s: string) => (captured.push(String(s)), true)) as typeof process.stderr.write;
    try {
      const env = { X402_PRIVATE_KEY: chain.privateKey(index), ROUTER_AUTH: "x402", X402_NETWORK: "base-sepolia", BASE_RPC_URL: chain.url };
      const code = await backtestMain(["--from", "2022-06-01", "--to", "2022-06-01", "--model", CLAUDE, "--real-calls", "--yes", "--router-url", standIn.url, "--every", "3", "--out", out, "--record", join(out, "rec.jsonl")], env);
      expect(code, captured.join("")).toBe(0);
    } finally {
      process.stdout.write = outWrite;
      process.stderr.write = errWrite;
    }
    try {
      // Four decisions, each a call on one permit: no per-call payment, no 402 round trip.
      const calls = standIn.calls.filter((c) => c.path.endsWith("/chat/completions"));
      expect(calls.map((c) => [c.auth, c.status])).toEqual(Array(4).fill(["permit", 200]));
      expect(new Set(calls.map((c) => c.sessionId)).size).toBe(1);
      await standIn.sweep();
      expect(standIn.settlements.map((s) => s.amount)).toEqual([BigInt(4 * CLAUDE_PRICE)]);
    } finally {
      await standIn.close();
      rmSync(out, { recursive: true, force: true });
    }
  }, 120_000);
});

describe("the router's live catalogue", () => {
  it("prices the models from /v1/models, skips one it no longer lists (and /model says so), and offers auto", async () => {
    const t = await sessionApp(25, { standIn: { models: XGATE_MODELS.filter((m) => m.id !== "openai:gpt-5") } });
    try {
      const list = (await t.run("/model")).text;
      expect(list).toMatch(/anthropic:claude-sonnet-4-6 \[chosen\] — [a-z]+, ~\$0\.0120 per call \(router's catalogue\)/);
      expect(list).toMatch(/openai:gpt-5 — not in the router's catalogue now: skipped until it is listed again/);
      expect(list).toMatch(/auto — the router picks per call/);
      expect((await t.run("/model openai:gpt-5")).text).toMatch(/the router's catalogue does not list openai:gpt-5 now; it is skipped/);
      await decideN(t, 1);
      const [record] = await t.app.services.ledger.recent(1);
      expect(record!.attempts![0]).toMatchObject({ model: "openai:gpt-5", skipped: true, failure: "not in the router's catalogue now" });
      expect(record!.model).not.toBe("openai:gpt-5");
      expect(t.standIn.calls.some((c) => c.model === "openai:gpt-5")).toBe(false);
      // The router's own smart routing, chosen like any model.
      expect((await t.run("/model auto")).text).toMatch(/Decisions now use auto first[\s\S]*The router picks the model for each call/);
      await decideN(t, 1);
      expect((await t.app.services.ledger.recent(1))[0]!.model).toBe("auto");
      expect(t.standIn.calls.at(-1)).toMatchObject({ model: "auto", auth: "permit", status: 200 });
      expect((await t.run("/model policy")).text).toMatch(/Model choice reset/);
    } finally {
      await t.stop();
    }
  }, 90_000);
});
