import type { Config } from "../config/config.js";

/**
 * How the agent pays the Dreams Router:
 *  - api-key: an account with the gateway, billed there (DREAMS_ROUTER_API_KEY);
 *  - x402: from the agent's own wallet (X402_PRIVATE_KEY): a permit session when the router's
 *    /v1/config names one (the hosted router), else each call paid as its 402 asks.
 */
export type RouterAuth =
  | { kind: "api-key"; apiKey: string }
  | { kind: "x402"; privateKey: `0x${string}`; network: "base" | "base-sepolia" };

/** The authentication ROUTER_AUTH and the keys that are set give; undefined when the router is off. */
export function routerAuthFromConfig(r: Config["router"]): RouterAuth | undefined {
  if (r.decisionModel !== "router") return undefined;
  const wallet = r.privateKey ? { privateKey: r.privateKey, network: r.network } : undefined;
  switch (r.auth) {
    case "api-key":
      return r.apiKey ? { kind: "api-key", apiKey: r.apiKey } : undefined;
    case "x402":
      return wallet && { kind: "x402", ...wallet };
    case "wallet-login":
      // Refused by the configuration's checks: the router offers no wallet login any more.
      return undefined;
    default:
      if (r.apiKey) return { kind: "api-key", apiKey: r.apiKey };
      return wallet && { kind: "x402", ...wallet };
  }
}
