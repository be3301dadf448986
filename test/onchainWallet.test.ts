// The viem USDC reader against a stand-in for a Base Sepolia JSON-RPC node on 127.0.0.1.
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { decodeFunctionData, encodeFunctionResult, erc20Abi } from "viem";
import { generatePrivateKey, privateKeyToAccount } from "viem/accounts";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { USDC_ADDRESS, OnchainUsdcWallet } from "../src/payments/onchainWallet.js";
import { stateSnapshot, startTestApp, testConfig, type TestApp } from "./support/app.js";

const agentKey = generatePrivateKey();
const agent = privateKeyToAccount(agentKey);
const balances = new Map<string, bigint>([[agent.address.toLowerCase(), 1_234_567n]]);
const calls: { method: string; to?: string }[] = [];
let server: Server;
let rpcUrl = "";

/** Answers eth_chainId and eth_call balanceOf on the USDC contract, as a node would. */
function answer(req: { id: number; method: string; params?: unknown[] }): unknown {
  if (req.method === "eth_chainId") return { jsonrpc: "2.0", id: req.id, result: "0x14a34" }; // 84532, Base Sepolia
  if (req.method === "eth_call") {
    const call = req.params![0] as { to: string; data: `0x${string}` };
    calls.push({ method: req.method, to: call.to });
    if (call.to.toLowerCase() !== USDC_ADDRESS["base-sepolia"].toLowerCase()) return { jsonrpc: "2.0", id: req.id, result: "0x" };
    const { functionName, args } = decodeFunctionData({ abi: erc20Abi, data: call.data });
    if (functionName !== "balanceOf") return { jsonrpc: "2.0", id: req.id, error: { code: -32000, message: "execution reverted" } };
    const value = balances.get(String(args![0]).toLowerCase()) ?? 0n;
    return { jsonrpc: "2.0", id: req.id, result: encodeFunctionResult({ abi: erc20Abi, functionName: "balanceOf", result: value }) };
  }
  return { jsonrpc: "2.0", id: req.id, error: { code: -32601, message: "method not found" } };
}

beforeAll(async () => {
  server = createServer((req, res) => {
    let body = "";
    req.on("data", (d) => (body += d));
    req.on("end", () => {
      const parsed = JSON.parse(body) as Parameters<typeof answer>[0] | Parameters<typeof answer>[0][];
      const out = Array.isArray(parsed) ? parsed.map(answer) : answer(parsed);
      res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify(out));
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  rpcUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(() => new Promise<void>((r) => server.close(() => r())));

let t: TestApp | undefined;
afterEach(async () => {
  await t?.app.stop();
  t = undefined;
});

describe("USDC balance on Base Sepolia, read with viem", () => {
  it("reads balanceOf from the USDC contract, in micro-USDC", async () => {
    const wallet = new OnchainUsdcWallet(agent.address, "base-sepolia", rpcUrl);
    expect(await wallet.balance()).toBe(1_234_567);
    expect(calls.at(-1)).toEqual({ method: "eth_call", to: USDC_ADDRESS["base-sepolia"] });
    expect(wallet.describe()).not.toContain(agent.address); // shortened, for chat
  });

  it("says in one line, without the request, that the balance could not be read when the RPC is down", async () => {
    const down = new OnchainUsdcWallet(agent.address, "base-sepolia", "http://127.0.0.1:9/rpc?key=not-for-chat");
    const err = await down.balance().then(() => undefined, (e: Error) => e);
    expect(err?.message).toMatch(/^Could not read the wallet's USDC balance on base-sepolia \(BASE_RPC_URL 127\.0\.0\.1:9\): HTTP request failed/);
    expect(err?.message).not.toContain("\n");
    expect(err?.message).not.toContain("not-for-chat");
  });

  it("backs /balance when a wallet pays for the router, and /refill refuses with what to do instead", async () => {
    t = await startTestApp(
      testConfig((c) => {
        c.router.decisionModel = "router";
        c.router.privateKey = agentKey;
        c.router.rpcUrl = rpcUrl;
      }),
    );
    expect((await t.run("/balance")).text).toMatch(/USDC for model calls: \$1\.23 — OK\n {2}USDC on base-sepolia at 0x/);
    const before = await stateSnapshot(t.url);
    const refill = await t.run("/refill 10");
    expect(refill.error).toBe(true);
    expect(refill.text).toMatch(/Refill failed, nothing was booked: No funding wallet is set \(REFILL_FROM_PRIVATE_KEY\)\. Send USDC on base-sepolia to 0x/);
    expect(await stateSnapshot(t.url)).toEqual(before);
  });

  it("is not used with an API key, which bills an account instead of the wallet", async () => {
    t = await startTestApp(
      testConfig((c) => {
        c.router.decisionModel = "router";
        c.router.apiKey = "test-router-key";
        c.router.walletAddress = agent.address;
        c.router.rpcUrl = rpcUrl;
      }),
    );
    expect((await t.run("/balance")).text).toMatch(/USDC for model calls: \$10\.00 — OK\n {2}paper USDC wallet/);
  });
});
