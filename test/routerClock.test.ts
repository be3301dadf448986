// An agent whose clock is off: with its clock 10 minutes behind, every per-call x402 payment it signs
// is already expired for the gateway, which refuses it. Nothing may be booked for refused payments,
// the reply must say the payment was refused, and the team is told once to check the clock.
import { resolve } from "node:path";
import { privateKeyToAccount } from "viem/accounts";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startDevChain, type DevChain } from "../src/chain/devChain.js";
import { chainFacilitator } from "./support/chainFacilitator.js";
import { freshRedisUrl } from "./support/app.js";
import { runProduct } from "./support/product.js";
import { CLAUDE, GEMINI, GPT, LLAMA, STANDIN_PRICES, TEST_WALLET_KEY } from "./support/routerApp.js";
import { RouterStandIn } from "./support/routerStandIn.js";

let chain: DevChain;
let standIn: RouterStandIn;
beforeAll(async () => {
  chain = await startDevChain();
  await chain.mint(privateKeyToAccount(TEST_WALLET_KEY).address, 10_000_000n);
  standIn = await RouterStandIn.start({ prices: { ...STANDIN_PRICES }, x402: "v2", signer: chainFacilitator(chain.url, chain.account(3)) });
}, 60_000);
afterAll(async () => {
  await standIn?.close();
  await chain?.close();
});

describe("an agent whose clock is 10 minutes behind", () => {
  it("books nothing for the payments the gateway refuses, says they were refused, and alerts once to check the clock", async () => {
    const { code, out, err } = await runProduct("/decide BTC\n/report\n", {
      NODE_OPTIONS: `--import ${resolve("test/support/skewClock.mjs")}`,
      CLOCK_SKEW_MS: String(-10 * 60_000),
      REDIS_URL: await freshRedisUrl(),
      REDIS_AUTOSTART: "false",
      DECISION_MODEL: "router",
      DREAMS_ROUTER_URL: standIn.url,
      X402_PRIVATE_KEY: TEST_WALLET_KEY,
      ROUTER_AUTH: "x402",
      X402_NETWORK: "base-sepolia",
      SYMBOLS: "BTC/USDT",
      DECISION_CACHE_TTL_SECONDS: "0",
      PRIMARY_MODEL: GPT,
      FALLBACK_MODELS: [CLAUDE, GEMINI, LLAMA].join(","),
      BASE_RPC_URL: chain.url,
    });
    expect(code, err).toBe(0);
    expect(standIn.payments).toHaveLength(0);
    expect(standIn.refused.length).toBeGreaterThan(0);
    expect(standIn.refused.every((r) => /valid_before|valid_after|expired/i.test(r.reason))).toBe(true);
    expect(out).toMatch(/the gateway refused the payment \(invalid_exact_evm_payload_authorization_valid_before[^\n]*\); nothing was paid/);
    expect(out.match(/Check this machine's clock/g)).toHaveLength(1);
    expect(out).toMatch(/Spend: \$0\.0000 total/);
    expect(out).toMatch(/Refused payments: \d+ \(\$[\d.]+ not paid, not booked\)/);
  }, 120_000);
});
