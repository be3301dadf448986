import type { AppOptions } from "../../src/app.js";
import type { Config } from "../../src/config/config.js";
import { RouterStandIn, type StandInOptions } from "./routerStandIn.js";
import { startTestApp, testConfig, type TestApp } from "./app.js";

/** Anvil's well-known development account #1: a public throwaway key, never a real wallet. */
export const TEST_WALLET_KEY = "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d" as const;
export const TEST_API_KEY = "test-router-api-key-0001";

export const GPT = "openai/gpt-4o";
export const CLAUDE = "anthropic/claude-3-5-sonnet";
export const GEMINI = "google-vertex/gemini-2.5-flash";
export const LLAMA = "groq/llama-3.1-8b-instant";

/** What the stand-in charges per call: odd amounts, so a booked cost can only come from the payment. */
export const STANDIN_PRICES = { [GPT]: 0.031337, [CLAUDE]: 0.021113, [GEMINI]: 0.011017, [LLAMA]: 0.004021 };

export interface RouterTestApp extends TestApp {
  standIn: RouterStandIn;
  stop(): Promise<void>;
}

/** The app, configured for the router at a stand-in on 127.0.0.1, paying with x402 unless edited. */
export async function startRouterApp(
  edit: (c: Config) => void = () => {},
  standInOpts: Partial<StandInOptions> = {},
  appOpts: AppOptions = { paperWallet: true },
): Promise<RouterTestApp> {
  const standIn = await RouterStandIn.start({ prices: { ...STANDIN_PRICES }, apiKeys: [TEST_API_KEY], ...standInOpts });
  const config = testConfig((c) => {
    c.router.decisionModel = "router";
    c.router.url = standIn.url;
    c.router.privateKey = TEST_WALLET_KEY;
    c.router.auth = "x402";
    c.router.network = "base-sepolia";
    // The design's 2024 models at this per-call stand-in (the hosted router's own catalogue is test/support/xgateStandIn.ts).
    c.router.primaryModel = GPT;
    c.router.fallbackModels = [CLAUDE, GEMINI, LLAMA];
    c.router.timeoutMs = 10_000;
    c.market.symbols = ["BTC/USDT"];
    c.routing.cacheTtlMs = 0;
    edit(c);
  });
  const t = await startTestApp(config, appOpts);
  return {
    ...t,
    standIn,
    async stop() {
      await t.app.stop();
      await standIn.close();
    },
  };
}
