import ccxt, { type Exchange as CcxtExchange } from "ccxt";

export interface CcxtClientOptions {
  id: string;
  apiKey?: string | undefined;
  secret?: string | undefined;
  /** The exchange's testnet, where it has one. */
  sandbox: boolean;
  /** Replaces the origin of every API address (a stand-in on 127.0.0.1, or a proxy). */
  apiUrl?: string | undefined;
}

/** A ccxt exchange instance from configuration. Throws a short message for an unknown id. */
export function createCcxtExchange(o: CcxtClientOptions): CcxtExchange {
  const Ctor = (ccxt as unknown as Record<string, new (cfg: object) => CcxtExchange>)[o.id];
  if (typeof Ctor !== "function" || !(ccxt.exchanges as string[]).includes(o.id)) {
    throw new Error(`EXCHANGE "${o.id}" is not an exchange ccxt knows (e.g. binance, kraken, coinbase)`);
  }
  const exchange = new Ctor({
    enableRateLimit: true,
    ...(o.apiKey ? { apiKey: o.apiKey } : {}),
    ...(o.secret ? { secret: o.secret } : {}),
    // Spot only: the agent is long-only spot, and futures markets would be loaded for nothing.
    options: { defaultType: "spot", fetchMarkets: { types: ["spot"] } },
  });
  if (o.sandbox && exchange.urls.test) exchange.setSandboxMode(true);
  if (o.apiUrl) rebase(exchange, o.apiUrl);
  return exchange;
}

/** Points every API address of the exchange at another origin, keeping each address's path. */
export function rebase(exchange: CcxtExchange, origin: string): void {
  const base = origin.replace(/\/+$/, "");
  const walk = (node: unknown): unknown => {
    if (typeof node === "string") return base + new URL(node).pathname.replace(/\/+$/, "");
    if (node && typeof node === "object") {
      for (const [k, v] of Object.entries(node)) (node as Record<string, unknown>)[k] = walk(v);
    }
    return node;
  };
  exchange.urls.api = walk(exchange.urls.api) as typeof exchange.urls.api;
}
