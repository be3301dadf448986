import type { Order, OrderRequest } from "../domain/types.js";

/** An order as the agent asks for it: a market order unless a limit price is given. */
export interface PlaceOrderRequest extends OrderRequest {
  type?: "market" | "limit";
  /** Limit price (quote per base); required for a limit order. */
  price?: number;
}

/**
 * An order as an exchange adapter reports it: the domain order plus what the books need to get a
 * fill right. Extra fields travel with the order (JSON) and are optional, so a plain Order is one.
 */
export interface ExchangeOrder extends Order {
  /**
   * The order's trades were not (all) listed yet when it was read: `filledQty` and `fee` are a
   * worst-case estimate (the highest fee, taken from the asset received), never more than the
   * account got. A later read corrects them (`settleFills`).
   */
  feesPending?: boolean;
  /** The part of `fee` (in the quote) paid in a third asset such as BNB: it leaves neither balance of the pair. */
  feeOther?: number;
}

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
   * Places an order (market unless a limit price is given). Idempotent on `clientOrderId`: a
   * second call with the same id returns the first order instead of placing another. A refusal
   * comes back as status "rejected" with the exchange's reason, not as an exception.
   * OrderOutcomeUnknown means it may have been placed (the answer failed after it was sent, and
   * the lookup too): the order path journals it and looks it up, never re-sends it. Any other
   * exception means nothing was placed.
   */
  placeOrder(req: PlaceOrderRequest): Promise<Order>;
  /** The order placed under this client id, if any (its latest state: a partial fill can grow). */
  findOrder(clientOrderId: string, symbol?: string): Promise<Order | undefined>;
  /** The most recent orders, newest first. */
  trades(limit: number): Promise<Order[]>;
  /** Balances including what open orders lock (free + locked), for reconciliation. */
  holdings?(): Promise<Record<string, number>>;
  /** Orders still open on the exchange. */
  openOrders?(): Promise<Order[]>;
  /**
   * A simulated exchange only: fills the resting limit orders the price has crossed, and returns
   * those filled now. A real exchange fills them itself; the order path calls this before it looks
   * its open orders up.
   */
  matchOpenOrders?(): Promise<Order[]>;
  /** Cancels an open order; returns its final state (it may have filled in part). */
  cancelOrder?(clientOrderId: string, symbol?: string): Promise<Order | undefined>;
  /**
   * Orders reported with `feesPending` whose trades are now listed, re-read in full: each is to be
   * booked again (applyFill corrects the earlier estimate). Each is returned once.
   */
  settleFills?(): Promise<ExchangeOrder[]>;
  /**
   * Orders this agent placed (known by their client order ids) that traded on `symbol` recently
   * and whose exchange order id `isBooked` does not know, read in full, oldest first: what the
   * reconciliation can prove is ours and take onto the books. Orders of anyone else are left out.
   */
  unbookedOwnOrders?(symbol: string, isBooked: (orderId: string) => Promise<boolean>): Promise<ExchangeOrder[]>;
}

/**
 * placeOrder could not tell whether the order reached the exchange: the request may have been
 * placed (and filled) before the answer failed, and looking it up failed too. Nothing may be sent
 * again for it: the order path keeps it pending and looks it up by its client order id until it
 * is found or proven absent. `reason` is short and fit for a chat.
 */
export class OrderOutcomeUnknown extends Error {
  override readonly name = "OrderOutcomeUnknown";
  constructor(
    readonly clientOrderId: string,
    readonly symbol: string,
    readonly reason: string,
    options?: { cause?: unknown },
  ) {
    super(`The order for ${symbol} was sent but not confirmed (${reason}): its outcome is not known yet`, options);
  }
}

/**
 * A call to the exchange failed (it was down, refused the key, answered something unreadable).
 * The message is short and fit for a chat, never the exchange's raw answer; the raw error is the
 * cause, for the log.
 */
export class ExchangeCallFailed extends Error {
  override readonly name = "ExchangeCallFailed";
}

/** "BTC/USDT" -> ["BTC", "USDT"] */
export function splitSymbol(symbol: string): [string, string] {
  const [base, quote] = symbol.split("/");
  if (!base || !quote) throw new Error(`not a BASE/QUOTE symbol: "${symbol}"`);
  return [base, quote];
}
