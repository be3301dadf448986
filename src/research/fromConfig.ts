import { createRequire } from "node:module";
import type { Redis } from "ioredis";
import type * as ViemAccounts from "viem/accounts";
import type { Config } from "../config/config.js";
import { USDC, type MarketSymbol } from "../domain/types.js";
import type { PaymentServices } from "../payments/paidRequest.js";
import { X402Payer } from "../payments/x402Payer.js";
import { PaidResearch } from "./paidResearch.js";
import { NoResearch, type ResearchProvider } from "./types.js";

// Loaded only when research is paid from a key: viem costs a process without a wallet about 70 MB.
const viemAccounts = () => createRequire(import.meta.url)("viem/accounts") as typeof ViemAccounts;

/** RESEARCH_URL set: paid research from the agent's wallet, under the model calls' budget. Else none. */
export function researchFromConfig(
  config: Config,
  deps: { redis: Redis; payments: PaymentServices; clock: () => number; symbols: MarketSymbol[]; fetch?: typeof fetch },
): ResearchProvider {
  const r = config.research;
  if (!r.url) return new NoResearch();
  return new PaidResearch({
    url: r.url,
    redis: deps.redis,
    symbols: deps.symbols,
    ttlMs: r.ttlMs,
    timeoutMs: r.timeoutMs,
    maxPriceMicro: USDC(r.maxPrice),
    payments: deps.payments,
    clock: deps.clock,
    ...(config.router.privateKey ? { payer: new X402Payer(viemAccounts().privateKeyToAccount(config.router.privateKey), { network: config.router.network, ...(config.router.rpcUrl ? { rpcUrl: config.router.rpcUrl } : {}) }) } : {}),
    network: config.router.network,
    payees: config.routing.payees,
    ...(deps.fetch ? { fetch: deps.fetch } : {}),
  });
}
