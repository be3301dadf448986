import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { decodeFunctionData, encodeFunctionResult, erc20Abi } from "viem";
import { privateKeyToAccount } from "viem/accounts";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { freshRedisUrl } from "./support/app.js";
import { runProduct } from "./support/product.js";
import { CLAUDE, GEMINI, GPT, LLAMA, STANDIN_PRICES, TEST_WALLET_KEY } from "./support/routerApp.js";
import { RouterStandIn } from "./support/routerStandIn.js";

let standIn: RouterStandIn;
let rpc: Server;
let rpcUrl = "";

/** A JSON-RPC node for the wallet's balance, answered from the stand-in chain the router settles on. */
function answer(req: { id: number; method: string; params?: unknown[] }): Promise<unknown> | unknown {
  if (req.method === "eth_chainId") return { jsonrpc: "2.0", id: req.id, result: "0x14a34" }; // 84532, Base Sepolia
  if (req.method === "eth_call") {
    const call = req.params![0] as { to: `0x${string}`; data: `0x${string}` };
    const { functionName, args } = decodeFunctionData({ abi: erc20Abi, data: call.data });
    return standIn.chain.signer
      .readContract({ address: call.to, abi: erc20Abi, functionName, args: args ?? [] })
      .then((result) => ({ jsonrpc: "2.0", id: req.id, result: encodeFunctionResult({ abi: erc20Abi, functionName, result } as never) }));
  }
  return { jsonrpc: "2.0", id: req.id, error: { code: -32601, message: "the method does not exist/is not available" } };
}

beforeAll(async () => {
  standIn = await RouterStandIn.start({ prices: { ...STANDIN_PRICES }, x402: "v2" });
  rpc = createServer((req, res) => {
    let body = "";
    req.on("data", (d) => (body += d));
    req.on("end", async () => {
      const parsed = JSON.parse(body) as Parameters<typeof answer>[0] | Parameters<typeof answer>[0][];
      const out = Array.isArray(parsed) ? await Promise.all(parsed.map(answer)) : await answer(parsed);
      res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify(out));
    });
  });
  await new Promise<void>((r) => rpc.listen(0, "127.0.0.1", r));
  rpcUrl = `http://127.0.0.1:${(rpc.address() as AddressInfo).port}`;
});
afterAll(async () => {
  await standIn.close();
  await new Promise<void>((r) => rpc.close(() => r()));
});

describe("npm start paying the router with x402 v2, as a user runs it", () => {
  it("pays for /decide BTC, is decided by the router model, and shows the payment in /report", async () => {
    const payer = privateKeyToAccount(TEST_WALLET_KEY).address;
    const { code, out, err } = await runProduct("/decide BTC\n/report\n/balance\n", {
      REDIS_URL: await freshRedisUrl(),
      REDIS_AUTOSTART: "false",
      DECISION_MODEL: "router",
      DREAMS_ROUTER_URL: standIn.url,
      X402_PRIVATE_KEY: TEST_WALLET_KEY,
      ROUTER_AUTH: "x402",
      X402_NETWORK: "base-sepolia",
      BASE_RPC_URL: rpcUrl,
      SYMBOLS: "BTC/USDT",
      // The scheduled decision at start is counted below.
      FIRST_DECISION: "now",
      DECISION_CACHE_TTL_SECONDS: "0",
      // This per-call v2 stand-in serves the design's 2024 models (the hosted router's own is xgateStandIn).
      PRIMARY_MODEL: GPT,
      FALLBACK_MODELS: [CLAUDE, GEMINI, LLAMA].join(","),
    });
    expect(code, err).toBe(0);
    // One payment, in the v2 headers, verified and settled by the reference facilitator.
    // The scheduled decision at start and the one asked in chat: one payment each, in the v2
    // headers, verified and settled by the reference facilitator.
    expect(standIn.payments).toHaveLength(2);
    const paid = standIn.payments.reduce((sum, p) => sum + p.value, 0n);
    expect(out).toMatch(/\[DECISION\] Scheduled decision\n  BTC\/USDT: HOLD/);
    expect(out).toMatch(/\nBTC\/USDT: HOLD \(confidence 60%\) \[PAPER\]\nModel: anthropic\/claude-3-5-sonnet · cost \$0\.0211/);
    expect(out).toMatch(/Payments: 2 settled, 0 pending, 0 failed — latest: https:\/\/sepolia\.basescan\.org\/tx\/0x[0-9a-f]{64}/);
    expect(out).toContain(`Spend: $${(Number(paid) / 1e6).toFixed(4)} total`);
    // The balance is the wallet's, on the chain the payments settled on: 1,000 USDC less the calls.
    expect(out).toContain(`USDC for model calls: $${(1000 - Number(paid) / 1e6).toFixed(2)} — OK`);
    expect(standIn.chain.transfers.map((t) => t.from.toLowerCase())).toEqual([payer.toLowerCase(), payer.toLowerCase()]);
    expect(err).not.toContain(TEST_WALLET_KEY.slice(2));
  }, 90_000);
});
