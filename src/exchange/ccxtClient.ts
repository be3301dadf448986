import { Agent } from "node:http";
import ccxt, { type Exchange as CcxtExchange } from "ccxt";

export interface CcxtClientOptions {
  id: string;
  apiKey?: string | undefined;
  secret?: string | undefined;
  /** The exchange's testnet, where it has one. */
  sandbox: boolean;
  /** Replaces the origin of every API address (a stand-in on 127.0.0.1, or a proxy). */
  apiUrl?: string | undefined;
  /** A ccxt.pro instance (REST plus websocket streams), where ccxt.pro has the exchange. */
  pro?: boolean;
}

/** A ccxt exchange instance from configuration. Throws a short message for an unknown id. */
export function createCcxtExchange(o: CcxtClientOptions): CcxtExchange {
  const rest = (ccxt as unknown as Record<string, new (cfg: object) => CcxtExchange>)[o.id];
  if (typeof rest !== "function" || !(ccxt.exchanges as string[]).includes(o.id)) {
    throw new Error(`EXCHANGE "${o.id}" is not an exchange ccxt knows (e.g. binance, kraken, coinbase)`);
  }
  const pro = (ccxt.pro as unknown as Record<string, new (cfg: object) => CcxtExchange>)[o.id];
  const Ctor = o.pro && typeof pro === "function" ? pro : rest;
  const exchange = new Ctor({
    enableRateLimit: true,
    ...(o.apiKey ? { apiKey: o.apiKey } : {}),
    ...(o.secret ? { secret: o.secret } : {}),
    // Spot only: the agent is long-only spot, and futures markets would be loaded for nothing.
    // Currencies come from a private wallet endpoint the agent never needs (precision and
    // minimums are in the markets).
    options: { defaultType: "spot", fetchMarkets: { types: ["spot"] }, fetchCurrencies: false },
  });
  if (o.sandbox && exchange.urls.test) exchange.setSandboxMode(true);
  if (o.apiUrl) {
    rebase(exchange, o.apiUrl);
    // ccxt.pro opens plain ws:// only with an http agent loaded (what loadHttpProxyAgent does).
    if (o.apiUrl.startsWith("http:")) (exchange as unknown as { httpAgent?: Agent }).httpAgent ??= new Agent();
  }
  return exchange;
}

/**
 * The ccxt instance for live trading. With `sandbox` it must really be the exchange's testnet: an
 * exchange without one is refused rather than silently trading real money.
 */
export function createLiveCcxtExchange(o: CcxtClientOptions): CcxtExchange {
  if (!o.apiKey || !o.secret) throw new Error("Live trading needs EXCHANGE_API_KEY and EXCHANGE_SECRET");
  const exchange = createCcxtExchange(o);
  if (o.sandbox && !exchange.urls.test) {
    throw new Error(
      `EXCHANGE_SANDBOX is true but ccxt knows no testnet for ${o.id}; nothing was sent. ` +
        `Pick an exchange with a testnet (e.g. binance), or set EXCHANGE_SANDBOX=false to trade real money on ${o.id}.`,
    );
  }
  return exchange;
}

/** Points every API address of the exchange at another origin, keeping each address's path. */
export function rebase(exchange: CcxtExchange, origin: string): void {
  const base = origin.replace(/\/+$/, "");
  // Websocket addresses keep their scheme family: https -> wss, http -> ws.
  const wsBase = base.replace(/^http/, "ws");
  const walk = (node: unknown): unknown => {
    if (typeof node === "string") {
      const url = new URL(node);
      return (url.protocol.startsWith("ws") ? wsBase : base) + url.pathname.replace(/\/+$/, "");
    }
    if (node && typeof node === "object") {
      for (const [k, v] of Object.entries(node)) (node as Record<string, unknown>)[k] = walk(v);
    }
    return node;
  };
  exchange.urls.api = walk(exchange.urls.api) as typeof exchange.urls.api;
}
