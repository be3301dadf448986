import type { Order, OrderRequest } from "../domain/types.js";

/**
 * What the agent needs from an exchange. The paper exchange implements it in Redis; a live ccxt
 * exchange implements the same calls, so nothing above this line knows which one it talks to.
 */
export interface Exchange {
  readonly kind: "paper" | "live";
  /** e.g. "paper" or "Binance (sandbox)"; never a key. */
  readonly name: string;
  /** Free balances by asset, e.g. { USDT: 9500, BTC: 0.01 }. */
  balances(): Promise<Record<string, number>>;
  /**
   * Places a market order. Idempotent on `clientOrderId`: a second call with the same id returns
   * the first order instead of placing another. A refusal comes back as status "rejected" with the
   * exchange's reason, not as an exception.
   */
  placeOrder(req: OrderRequest): Promise<Order>;
  /** The order placed under this client id, if any. */
  findOrder(clientOrderId: string): Promise<Order | undefined>;
  /** The most recent orders, newest first. */
  trades(limit: number): Promise<Order[]>;
}

/** "BTC/USDT" -> ["BTC", "USDT"] */
export function splitSymbol(symbol: string): [string, string] {
  const [base, quote] = symbol.split("/");
  if (!base || !quote) throw new Error(`not a BASE/QUOTE symbol: "${symbol}"`);
  return [base, quote];
}
