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
let cfg: RouterConfig;

async function signPermit(owner: PrivateKeyAccount, cap: bigint, o: { nonce?: bigint; deadline?: bigint; spender?: Address; signWith?: PrivateKeyAccount } = {}) {
  const net = cfg.networks[0]!;
  const nonce = o.nonce ?? (await chain.publicClient.readContract({ address: net.asset.address, abi: NONCES_ABI, functionName: "nonces", args: [owner.address] }));
  const deadline = o.deadline ?? BigInt(Math.floor(Date.now() / 1000) + 3600);
  const spender = o.spender ?? net.pay_to;
  const domain = { name: cfg.eip712_config.domain_name, version: cfg.eip712_config.domain_version, chainId: net.chain_id, verifyingContract: net.asset.address };
  const signature = await (o.signWith ?? owner).signTypedData({ domain, types: PERMIT_TYPES, primaryType: "Permit", message: { owner: owner.address, spender, value: cap, nonce, deadline } });
  return { signature, nonce, deadline, spender, cap };
}

async function permitHeader(owner: PrivateKeyAccount, cap: bigint, o: Parameters<typeof signPermit>[2] = {}): Promise<string> {
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
  if (header) headers[o.headerName ?? cfg.payment_header] = header;
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
  cfg = (await (await fetch(`${standIn.url}/v1/config`)).json()) as RouterConfig;
}, 60_000);
afterAll(async () => {
  await standIn?.close();
  await chain?.close();
});

describe("the hosted router's surface", () => {
  it("serves /v1/config with the facilitator as pay_to, and answers 402 with PAYMENT-REQUIRED when no permit is sent", async () => {
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
});
