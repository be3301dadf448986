// The stand-in for the hosted Dreams Router (permit sessions), driven by a small client written
// here from Daydreams' published router client (openclaw-x402-router src/agents/x402-payment.ts:
// read /v1/config, read nonces(owner) from the token, sign an ERC-2612 Permit for a cap, send it
// base64 in the config's payment header, reuse it), against the local chain with Circle's
// FiatToken. What settles is read back from the chain: Approval and Transfer events, balances.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createWalletClient, erc20Abi, http, parseEventLogs, parseSignature, type Address, type Hex } from "viem";
import { privateKeyToAccount, type PrivateKeyAccount } from "viem/accounts";
import { baseSepolia } from "viem/chains";
import { startDevChain, type DevChain } from "../src/chain/devChain.js";
import { chainFacilitator } from "./support/chainFacilitator.js";
import { XGATE_MODELS, XgateStandIn } from "./support/xgateStandIn.js";

const LLAMA = "meta:llama-3.3-70b";
const GEMINI = "google:gemini-2.5-flash";
const CLAUDE = "anthropic:claude-sonnet-4-6";
const GPT = "openai:gpt-5";
const API_KEY = "xgate-test-key-0001";

// ---- the client, as Daydreams' router client does it ----------------------------------------------

interface RouterConfig {
  networks: { network_id: string; name: string; chain_id: number; asset: { address: Address; symbol: string; decimals: number }; pay_to: Address; active: boolean }[];
  payment_required: boolean;
  payment_header: string;
  eip712_config: { domain_name: string; domain_version: string };
}
const NONCES_ABI = [{ type: "function", name: "nonces", stateMutability: "view", inputs: [{ name: "owner", type: "address" }], outputs: [{ name: "nonce", type: "uint256" }] }] as const;
const PERMIT_ABI = [
  {
    type: "function",
    name: "permit",
    stateMutability: "nonpayable",
    inputs: [
      { name: "owner", type: "address" },
      { name: "spender", type: "address" },
      { name: "value", type: "uint256" },
      { name: "deadline", type: "uint256" },
      { name: "v", type: "uint8" },
      { name: "r", type: "bytes32" },
      { name: "s", type: "bytes32" },
    ],
    outputs: [],
  },
] as const;
const PERMIT_TYPES = {
  Permit: [
    { name: "owner", type: "address" },
    { name: "spender", type: "address" },
    { name: "value", type: "uint256" },
    { name: "nonce", type: "uint256" },
    { name: "deadline", type: "uint256" },
  ],
} as const;

let chain: DevChain;
let standIn: XgateStandIn;
let mainConfig: RouterConfig;

interface PermitOptions {
  nonce?: bigint;
  deadline?: bigint;
  spender?: Address;
  signWith?: PrivateKeyAccount;
  /** Another router's /v1/config (default: the main stand-in's). */
  config?: RouterConfig;
}

async function signPermit(owner: PrivateKeyAccount, cap: bigint, o: PermitOptions = {}) {
  const cfg = o.config ?? mainConfig;
  const net = cfg.networks[0]!;
  const nonce = o.nonce ?? (await chain.publicClient.readContract({ address: net.asset.address, abi: NONCES_ABI, functionName: "nonces", args: [owner.address] }));
  const deadline = o.deadline ?? BigInt(Math.floor(Date.now() / 1000) + 3600);
  const spender = o.spender ?? net.pay_to;
  const domain = { name: cfg.eip712_config.domain_name, version: cfg.eip712_config.domain_version, chainId: net.chain_id, verifyingContract: net.asset.address };
  const signature = await (o.signWith ?? owner).signTypedData({ domain, types: PERMIT_TYPES, primaryType: "Permit", message: { owner: owner.address, spender, value: cap, nonce, deadline } });
  return { signature, nonce, deadline, spender, cap };
}

async function permitHeader(owner: PrivateKeyAccount, cap: bigint, o: PermitOptions = {}): Promise<string> {
  const cfg = o.config ?? mainConfig;
  const net = cfg.networks[0]!;
  const p = await signPermit(owner, cap, o);
  const payload = {
    x402Version: 2,
    accepted: { scheme: "upto", network: net.network_id, asset: net.asset.address, payTo: net.pay_to, extra: { name: cfg.eip712_config.domain_name, version: cfg.eip712_config.domain_version } },
    payload: { authorization: { from: owner.address, to: p.spender, value: p.cap.toString(), validBefore: p.deadline.toString(), nonce: p.nonce.toString() }, signature: p.signature },
  };
  return Buffer.from(JSON.stringify(payload)).toString("base64");
}

async function chat(model: string, header?: string, o: { stream?: boolean; headerName?: string; bearer?: string; signal?: AbortSignal } = {}) {
  const headers: Record<string, string> = { "content-type": "application/json" };
  if (header) headers[o.headerName ?? mainConfig.payment_header] = header;
  if (o.bearer) headers.authorization = `Bearer ${o.bearer}`;
  const res = await fetch(`${standIn.url}/v1/chat/completions`, {
    method: "POST",
    headers,
    body: JSON.stringify({ model, stream: o.stream ?? false, messages: [{ role: "user", content: "Decide now on BTC/USDT" }] }),
    ...(o.signal ? { signal: o.signal } : {}),
  });
  const text = await res.text();
  let json: any;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status: res.status, headers: res.headers, text, json };
}

const routerConfig = async (origin: string) => (await (await fetch(`${origin}/v1/config`)).json()) as RouterConfig;
const usdc = (a: Address) => chain.publicClient.readContract({ address: chain.usdc, abi: erc20Abi, functionName: "balanceOf", args: [a] });
const allowance = (owner: Address, spender: Address) => chain.publicClient.readContract({ address: chain.usdc, abi: erc20Abi, functionName: "allowance", args: [owner, spender] });
const price = (model: string) => standIn.priceAtomic(model);

beforeAll(async () => {
  chain = await startDevChain();
  standIn = await XgateStandIn.start({
    signer: chainFacilitator(chain.url, chain.account(10), "base-sepolia", { pollingIntervalMs: 50 }),
    apiKeys: [API_KEY],
    // Sweeps only when a test asks, and then every open session with spend settles.
    sweeper: { intervalMs: 0, idleSettleMs: 0 },
  });
  mainConfig = await routerConfig(standIn.url);
}, 60_000);
afterAll(async () => {
  await standIn?.close();
  await chain?.close();
});

describe("the hosted router's surface", () => {
  it("serves /v1/config with the facilitator as pay_to, and answers 402 with PAYMENT-REQUIRED when no permit is sent", async () => {
    const cfg = mainConfig;
    expect(cfg.payment_header).toBe("PAYMENT-SIGNATURE");
    expect(cfg.networks[0]).toMatchObject({ network_id: "eip155:84532", chain_id: 84532, asset: { address: chain.usdc, symbol: "USDC", decimals: 6 }, pay_to: chain.account(10).address, active: true });
    expect(cfg.eip712_config).toEqual({ domain_name: "USDC", domain_version: "2" });

    const r = await chat(CLAUDE);
    expect(r.status).toBe(402);
    const required = JSON.parse(Buffer.from(r.headers.get("payment-required")!, "base64").toString("utf8"));
    expect(required.x402Version).toBe(2);
    expect(required.accepts).toEqual([
      { scheme: "upto", network: "eip155:84532", asset: chain.usdc, amount: "12041", payTo: chain.account(10).address, maxTimeoutSeconds: 3600, extra: { name: "USDC", version: "2" } },
    ]);
    expect(r.json.error.code).toBe("payment_required");
  });
});

describe("permit sessions, settled on the chain", () => {
  it("one signature serves many calls; a sweep settles the batch with permit + transferFrom, exactly the sum of the calls", async () => {
    const payer = chain.account(1);
    const payTo = standIn.payTo;
    await chain.mint(payer.address, 1_000_000n);
    const cap = 500_000n;
    const header = await permitHeader(payer, cap);
    const payerBefore = await usdc(payer.address);
    const payeeBefore = await usdc(payTo);

    const first = [
      await chat(LLAMA, header),
      await chat(GEMINI, header, { stream: true }),
      await chat(CLAUDE, header),
      await chat("auto", header),
      await chat(GPT, header, { headerName: "x-payment" }), // the alias the published middleware accepts
    ];
    const firstSum = price(LLAMA) + price(GEMINI) + price(CLAUDE) + price(LLAMA) + price(GPT);
    for (const r of first) expect(r.status).toBe(200);
    const ids = new Set(first.map((r) => r.headers.get("x-upto-session-id")));
    expect(ids.size).toBe(1);
    const sessionId = [...ids][0]!;
    expect(sessionId).toMatch(/^[0-9a-f]{64}$/);
    // No per-call receipt, no cost in the reply (reportCost is off).
    expect(first[0]!.headers.get("payment-response")).toBeNull();
    expect(first[0]!.headers.get("x-token-cost")).toBeNull();
    expect(first[0]!.json.usage.cost).toBeUndefined();
    expect(first[0]!.json.choices[0].message.content).toContain("RiskManagement");
    expect(first[1]!.text).toContain("data: [DONE]");
    expect(first[3]!.json.model).toBe(LLAMA);
    expect(standIn.session(sessionId)).toMatchObject({ status: "open", cap: cap.toString(), pendingSpent: firstSum.toString(), settledTotal: "0", owner: payer.address });
    // Nothing has moved yet.
    expect(await usdc(payer.address)).toBe(payerBefore);

    await standIn.sweep();
    const batch1 = standIn.settlements.filter((s) => s.sessionId === sessionId);
    expect(batch1).toEqual([expect.objectContaining({ reason: "idle_timeout", amount: firstSum, success: true })]);
    const receipt1 = await chain.publicClient.getTransactionReceipt({ hash: batch1[0]!.transaction as Hex });
    const [transfer1] = parseEventLogs({ abi: erc20Abi, eventName: "Transfer", logs: receipt1.logs });
    expect(transfer1!.args).toEqual({ from: payer.address, to: payTo, value: firstSum });
    // The permit was applied on chain: the payer's nonce moved and the facilitator was approved for the cap.
    const approvals = await chain.publicClient.getContractEvents({ address: chain.usdc, abi: erc20Abi, eventName: "Approval", args: { owner: payer.address }, fromBlock: 0n });
    expect(approvals.map((a) => a.args)).toEqual([{ owner: payer.address, spender: payTo, value: cap }]);
    expect(await chain.publicClient.readContract({ address: chain.usdc, abi: NONCES_ABI, functionName: "nonces", args: [payer.address] })).toBe(1n);
    expect(await usdc(payer.address)).toBe(payerBefore - firstSum);
    expect(await usdc(payTo)).toBe(payeeBefore + firstSum);
    expect(await allowance(payer.address, payTo)).toBe(cap - firstSum);
    expect(standIn.session(sessionId)).toMatchObject({ status: "open", pendingSpent: "0", settledTotal: firstSum.toString() });

    // The same signature again: a second batch. The permit cannot be applied twice (its nonce is
    // used), so the facilitator falls back on the allowance it left: transferFrom only.
    expect((await chat(GPT, header)).status).toBe(200);
    expect((await chat(GPT, header, { stream: true })).status).toBe(200);
    await standIn.sweep();
    const batch2 = standIn.settlements.filter((s) => s.sessionId === sessionId)[1]!;
    expect(batch2).toMatchObject({ amount: 2n * price(GPT), success: true });
    const [transfer2] = parseEventLogs({ abi: erc20Abi, eventName: "Transfer", logs: (await chain.publicClient.getTransactionReceipt({ hash: batch2.transaction as Hex })).logs });
    expect(transfer2!.args.value).toBe(2n * price(GPT));
    expect(await usdc(payer.address)).toBe(payerBefore - firstSum - 2n * price(GPT));
    expect(await allowance(payer.address, payTo)).toBe(cap - firstSum - 2n * price(GPT));
    expect(standIn.session(sessionId)!.settledTotal).toBe((firstSum + 2n * price(GPT)).toString());
    expect(standIn.calls.filter((c) => c.sessionId === sessionId).map((c) => c.status)).toEqual([200, 200, 200, 200, 200, 200, 200]);
  });

  it("cap_exhausted: a call that would take the session past its cap is refused, and nothing more is booked", async () => {
    const payer = chain.account(2);
    await chain.mint(payer.address, 1_000_000n);
    const header = await permitHeader(payer, 2n * price(GPT) + 1n);
    expect((await chat(GPT, header)).status).toBe(200);
    const second = await chat(GPT, header);
    expect(second.status).toBe(200);
    const id = second.headers.get("x-upto-session-id")!;
    const third = await chat(GPT, header);
    expect(third.status).toBe(402);
    // The published middleware's tracking-error body.
    expect(third.json).toEqual({ error: "cap_exhausted", message: "Upto cap exhausted, reauthorize with higher max", sessionId: id });
    expect(third.headers.get("payment-required")).toBeNull();
    expect(standIn.session(id)!.pendingSpent).toBe((2n * price(GPT)).toString());
    // A cheaper call still fits under the cap? 1 atomic unit left: no.
    expect((await chat(LLAMA, header)).json.error).toBe("cap_exhausted");
  });

  it("session_closed: closing sessions settles what they owe on chain (several at once, from one facilitator key), then refuses the permit", async () => {
    const payer = chain.account(3);
    const second = chain.account(20); // signs only: needs no ETH
    await chain.mint(payer.address, 1_000_000n);
    await chain.mint(second.address, 1_000_000n);
    const header = await permitHeader(payer, 100_000n);
    const ok = await chat(CLAUDE, header);
    expect(ok.status).toBe(200);
    const id = ok.headers.get("x-upto-session-id")!;
    const otherId = (await chat(GEMINI, await permitHeader(second, 100_000n))).headers.get("x-upto-session-id")!;
    const before = await usdc(payer.address);
    const secondBefore = await usdc(second.address);

    await standIn.closeSessions();
    const closing = standIn.settlements.find((s) => s.sessionId === id)!;
    expect(closing).toMatchObject({ reason: "manual_close", amount: price(CLAUDE), success: true });
    expect(standIn.settlements.find((s) => s.sessionId === otherId)).toMatchObject({ reason: "manual_close", amount: price(GEMINI), success: true });
    expect(standIn.settlements.filter((s) => s.reason === "manual_close").every((s) => s.success)).toBe(true);
    expect(await usdc(payer.address)).toBe(before - price(CLAUDE));
    expect(await usdc(second.address)).toBe(secondBefore - price(GEMINI));
    expect(standIn.session(id)).toMatchObject({ status: "closed", pendingSpent: "0", settledTotal: price(CLAUDE).toString() });

    const refused = await chat(CLAUDE, header);
    expect(refused.status).toBe(402);
    expect(refused.json).toEqual({ error: "session_closed", message: "Session closed. Reauthorize a new upto cap", sessionId: id });
    // A new permit (the wallet's next nonce) opens a new session.
    const fresh = await chat(CLAUDE, await permitHeader(payer, 100_000n));
    expect(fresh.status).toBe(200);
    expect(fresh.headers.get("x-upto-session-id")).not.toBe(id);
  });

  it("settlement_blocked: the wallet's nonce moved on chain, the facilitator's permit reverts, and the session is refused after", async () => {
    const payer = chain.account(4);
    await chain.mint(payer.address, 1_000_000n);
    const header = await permitHeader(payer, 200_000n);
    const ok = await chat(GEMINI, header);
    expect(ok.status).toBe(200);
    const id = ok.headers.get("x-upto-session-id")!;

    // The same wallet signs another permit at that nonce (to someone else), and it is submitted first.
    const other = chain.account(12);
    const p = await signPermit(payer, 1n, { spender: other.address });
    const sig = parseSignature(p.signature);
    const submitter = createWalletClient({ account: other, chain: baseSepolia, transport: http(chain.url) });
    const tx = await submitter.writeContract({ address: chain.usdc, abi: PERMIT_ABI, functionName: "permit", args: [payer.address, other.address, 1n, p.deadline, Number(sig.v), sig.r, sig.s] });
    expect((await chain.publicClient.waitForTransactionReceipt({ hash: tx })).status).toBe("success");
    const before = await usdc(payer.address);

    await standIn.settle(id);
    expect(standIn.settlements.find((s) => s.sessionId === id)).toMatchObject({ success: false, errorReason: "insufficient_allowance", transaction: "", amount: price(GEMINI) });
    expect(await usdc(payer.address)).toBe(before);
    expect(standIn.session(id)).toMatchObject({ status: "open", pendingSpent: price(GEMINI).toString() });

    const refused = await chat(GEMINI, header);
    expect(refused.status).toBe(402);
    expect(refused.json.error).toEqual({ code: "settlement_blocked", message: expect.stringContaining("insufficient_allowance") });
    // A permit at the wallet's current nonce works.
    expect((await chat(GEMINI, await permitHeader(payer, 200_000n))).status).toBe(200);
  });

  it("session_permit_mismatch: a second permit from the wallet at a nonce another open session holds", async () => {
    const payer = chain.account(5);
    await chain.mint(payer.address, 1_000_000n);
    const nonce = await chain.publicClient.readContract({ address: chain.usdc, abi: NONCES_ABI, functionName: "nonces", args: [payer.address] });
    const workerA = await permitHeader(payer, 300_000n, { nonce });
    const workerB = await permitHeader(payer, 400_000n, { nonce });
    const a = await chat(LLAMA, workerA);
    expect(a.status).toBe(200);
    const b = await chat(LLAMA, workerB);
    expect(b.status).toBe(402);
    expect(b.json.error).toEqual({ code: "session_permit_mismatch", message: expect.stringContaining(`nonce ${nonce}`) });
    expect(standIn.sessions().filter((s) => s.owner === payer.address)).toHaveLength(1);
    // Worker A's permit keeps working.
    expect((await chat(LLAMA, workerA)).status).toBe(200);
  });

  it("insufficient_token_balance: a wallet emptied on chain is refused before any session opens", async () => {
    const payer = chain.account(6);
    await chain.mint(payer.address, 5_000n);
    await chain.transfer(payer, chain.account(13).address, 5_000n);
    expect(await usdc(payer.address)).toBe(0n);
    const sessionsBefore = standIn.sessions().length;
    const r = await chat(LLAMA, await permitHeader(payer, 100_000n));
    expect(r.status).toBe(402);
    expect(r.json.error.code).toBe("insufficient_token_balance");
    expect(r.json.error.message.toLowerCase()).toContain("insufficient token balance");
    expect(standIn.sessions()).toHaveLength(sessionsBefore);
  });

  it("settling_in_progress (409) while a settlement's receipt never comes; it completes once blocks are mined again", async () => {
    const payer = chain.account(7);
    await chain.mint(payer.address, 1_000_000n);
    const header = await permitHeader(payer, 200_000n);
    const ok = await chat(GPT, header);
    const id = ok.headers.get("x-upto-session-id")!;
    await chain.rpc("evm_setAutomine", [false]);
    let settling: Promise<void>;
    try {
      settling = standIn.settle(id);
      expect(standIn.session(id)!.status).toBe("settling");
      const refused = await chat(GPT, header);
      expect(refused.status).toBe(409);
      expect(refused.json).toEqual({ error: "settling_in_progress", message: "Session is settling a batch, retry shortly", sessionId: id });
      // Wait until the facilitator's permit transaction is in the node's pool (bounded).
      for (let i = 0; i < 400; i++) {
        const pending = (await chain.rpc("eth_getBlockByNumber", ["pending", false])) as { transactions: unknown[] };
        if (pending.transactions.length > 0) break;
        await new Promise((r) => setTimeout(r, 25));
      }
    } finally {
      await chain.rpc("evm_setAutomine", [true]);
    }
    await chain.rpc("evm_mine", []);
    await settling!;
    expect(standIn.settlements.find((s) => s.sessionId === id)).toMatchObject({ success: true, amount: price(GPT) });
    expect((await chat(GPT, header)).status).toBe(200);
  });

  it("refuses a forged permit and one whose spender is not the facilitator, with the facilitator's reason", async () => {
    const payer = chain.account(8);
    await chain.mint(payer.address, 1_000_000n);
    const forged = await chat(LLAMA, await permitHeader(payer, 100_000n, { signWith: chain.account(14) }));
    expect(forged.status).toBe(402);
    expect(JSON.parse(Buffer.from(forged.headers.get("payment-required")!, "base64").toString("utf8")).error).toBe("invalid_permit_signature");
    expect(forged.json.error.code).toBe("invalid_permit_signature");
    const elsewhere = await chat(LLAMA, await permitHeader(payer, 100_000n, { spender: chain.account(14).address }));
    expect(elsewhere.json.error.code).toBe("spender_not_facilitator");
    const short = await chat(GPT, await permitHeader(payer, price(GPT) - 1n));
    expect(short.json.error.code).toBe("cap_too_low");
    expect(standIn.sessions().filter((s) => s.owner === payer.address)).toHaveLength(0);
  });
});

describe("catalogue, accounts and faults", () => {
  it("lists the catalogue in OpenRouter's shape with auto; /auth/wallet-login is not a route", async () => {
    const list = (await (await fetch(`${standIn.url}/v1/models`)).json()) as { object: string; data: { id: string; object: string; pricing: Record<string, string> }[] };
    expect(list.object).toBe("list");
    expect(list.data.map((m) => m.id)).toEqual([...XGATE_MODELS.map((m) => m.id), "auto"]);
    expect(list.data.find((m) => m.id === GPT)).toMatchObject({ object: "model", owned_by: "openai", pricing: { prompt: "0", completion: "0", request: "0.020063" } });
    expect(list.data.find((m) => m.id === "auto")!.pricing.request).toBe("0.001013");
    for (const path of ["/auth/wallet-login", "/v1/auth/wallet-login"]) {
      const r = await fetch(`${standIn.url}${path}`, { method: "POST", body: "{}" });
      expect(r.status).toBe(404);
    }
    expect((await chat("openai/gpt-4o")).status).toBe(404);
  });

  it("bills an API key's account and reports usage.cost; an unknown key is 401", async () => {
    const r = await chat(CLAUDE, undefined, { bearer: API_KEY });
    expect(r.status).toBe(200);
    expect(r.json.usage.cost).toBe(0.012041);
    expect(r.headers.get("x-upto-session-id")).toBeNull();
    expect(standIn.accountSpentAtomic(API_KEY)).toBe(price(CLAUDE));
    const bad = await chat(CLAUDE, undefined, { bearer: "not-a-key" });
    expect(bad.status).toBe(401);
    expect(bad.json.error.code).toBe("invalid_api_key");
  });

  it("gateway faults: 429 with Retry-After and 500 charge nothing; malformed and schema-breaking replies are charged; slow answers; a hang", async () => {
    const payer = chain.account(9);
    await chain.mint(payer.address, 1_000_000n);
    const header = await permitHeader(payer, 500_000n);
    const id = (await chat(LLAMA, header)).headers.get("x-upto-session-id")!;
    const pending = () => BigInt(standIn.session(id)!.pendingSpent);
    expect(pending()).toBe(price(LLAMA));

    standIn.setFault(GEMINI, { kind: "http-429", retryAfterSeconds: 7 }, 1);
    const limited = await chat(GEMINI, header);
    expect(limited.status).toBe(429);
    expect(limited.headers.get("retry-after")).toBe("7");
    standIn.setFault(GEMINI, { kind: "http-500" }, 1);
    expect((await chat(GEMINI, header)).status).toBe(500);
    expect(pending()).toBe(price(LLAMA));

    standIn.setFault(GEMINI, { kind: "malformed" }, 1);
    const broken = await chat(GEMINI, header, { stream: true });
    expect(broken.status).toBe(200);
    expect(broken.text).not.toContain("[DONE]");
    standIn.setFault(GEMINI, { kind: "schema" }, 1);
    expect((await chat(GEMINI, header)).json.choices[0].message.content).toContain("ExecuteTrade");
    expect(pending()).toBe(price(LLAMA) + 2n * price(GEMINI));

    standIn.setDelay(150);
    const t0 = Date.now();
    expect((await chat(GEMINI, header)).status).toBe(200);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(140);
    standIn.setDelay(0);

    standIn.setFault(GEMINI, { kind: "hang", afterPayment: true }, 1);
    const abort = new AbortController();
    const hung = chat(GEMINI, header, { signal: abort.signal });
    // The call is charged, then never answered: wait for the charge, then give up as a client would.
    for (let i = 0; i < 400 && pending() < price(LLAMA) + 4n * price(GEMINI); i++) await new Promise((r) => setTimeout(r, 10));
    abort.abort();
    await expect(hung).rejects.toThrow();
    expect(pending()).toBe(price(LLAMA) + 4n * price(GEMINI));
    expect(standIn.callsTo(GEMINI).slice(-6).map((c) => c.fault ?? c.status)).toEqual(["http-429", "http-500", "malformed", "schema", 200, "hang"]);
  });

  it("overcharge: the session is charged more than the catalogue says, and that is what settles on chain", async () => {
    const payer = chain.account(15);
    await chain.mint(payer.address, 1_000_000n);
    const header = await permitHeader(payer, 500_000n);
    standIn.setOvercharge((p) => p * 3n);
    try {
      const r = await chat(CLAUDE, header);
      expect(r.status).toBe(200);
      const id = r.headers.get("x-upto-session-id")!;
      expect(standIn.session(id)!.pendingSpent).toBe((3n * price(CLAUDE)).toString());
      const before = await usdc(payer.address);
      await standIn.settle(id);
      expect(await usdc(payer.address)).toBe(before - 3n * price(CLAUDE));
    } finally {
      standIn.setOvercharge(undefined);
    }
  });
});

describe("the sweeper on its own clock, with the published defaults", () => {
  it("settles at 90% of the cap (default thresholds) and reports each call's cost when asked", async () => {
    const other = await XgateStandIn.start({
      signer: chainFacilitator(chain.url, chain.account(11), "base-sepolia", { pollingIntervalMs: 50 }),
      reportCost: true,
      sweeper: { intervalMs: 0 },
    });
    try {
      const payer = chain.account(16);
      await chain.mint(payer.address, 1_000_000n);
      const header = await permitHeader(payer, 10n * price(GPT), { config: await routerConfig(other.url) });
      const call = () =>
        fetch(`${other.url}/v1/chat/completions`, {
          method: "POST",
          headers: { "content-type": "application/json", "payment-signature": header },
          body: JSON.stringify({ model: GPT, messages: [{ role: "user", content: "hi" }] }),
        });
      const first = await call();
      expect(first.headers.get("x-token-cost")).toBe(price(GPT).toString());
      for (let i = 0; i < 7; i++) expect((await call()).status).toBe(200);
      await other.sweep(); // 80%: not idle 2 minutes, not at 90% of the cap
      expect(other.settlements).toHaveLength(0);
      expect((await call()).status).toBe(200);
      await other.sweep();
      expect(other.settlements).toEqual([expect.objectContaining({ reason: "cap_threshold", amount: 9n * price(GPT), success: true })]);
    } finally {
      await other.close();
    }
  });

  it("sweeps by itself every intervalMs: a test waits for the settlement event, not the clock", async () => {
    const other = await XgateStandIn.start({
      signer: chainFacilitator(chain.url, chain.account(17), "base-sepolia", { pollingIntervalMs: 50 }),
      sweeper: { intervalMs: 25, idleSettleMs: 0 },
    });
    try {
      const payer = chain.account(18);
      await chain.mint(payer.address, 1_000_000n);
      const header = await permitHeader(payer, 100_000n, { config: await routerConfig(other.url) });
      const next = other.nextSettlement();
      const r = await fetch(`${other.url}/v1/chat/completions`, {
        method: "POST",
        headers: { "content-type": "application/json", "payment-signature": header },
        body: JSON.stringify({ model: LLAMA, messages: [{ role: "user", content: "hi" }] }),
      });
      expect(r.status).toBe(200);
      expect(await next).toMatchObject({ sessionId: r.headers.get("x-upto-session-id"), reason: "idle_timeout", amount: price(LLAMA), success: true });
    } finally {
      await other.close();
    }
  });
});
