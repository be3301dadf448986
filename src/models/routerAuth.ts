import type { Config } from "../config/config.js";

/**
 * How the agent pays the Dreams Router:
 *  - api-key: an account with the gateway, billed there (DREAMS_ROUTER_API_KEY);
 *  - x402: every call paid in USDC from the agent's own wallet, no login (X402_PRIVATE_KEY);
 *  - wallet-login: the wallet signs in (POST /auth/wallet-login) for a session, and still pays
 *    each call with x402.
 */
export type RouterAuth =
  | { kind: "api-key"; apiKey: string }
  | { kind: "x402"; privateKey: `0x${string}`; network: "base" | "base-sepolia" }
  | { kind: "wallet-login"; privateKey: `0x${string}`; network: "base" | "base-sepolia" };

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
      return wallet && { kind: "wallet-login", ...wallet };
    default:
      if (r.apiKey) return { kind: "api-key", apiKey: r.apiKey };
      return wallet && { kind: "x402", ...wallet };
  }
}
