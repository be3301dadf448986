// Our limit orders resting on the exchange, as the order path placed them: what each one books
// when it fills (the exits a buy's position gets, whether a sell closes the position), who asked,
// and the short id the chat shows. The risk rules read it too: an open buy order reserves its
// notional (position size, exposure, open positions) until it fills or is cancelled, so two
// orders resting together can never break a limit that each alone keeps.
import { createHash } from "node:crypto";
import type { Redis } from "ioredis";
import type { OrderSide } from "../domain/types.js";
import type { Reservations } from "../risk/rules.js";
import type { PendingExits } from "./pendingOrders.js";

export interface OpenOrder {
  /** Short and stable (derived from the client order id): what /orders shows and /cancel_order takes. */
  id: string;
  clientOrderId: string;
  symbol: string;
  side: OrderSide;
  /** Base quantity asked for. */
  qty: number;
  limitPrice: number;
  /** What of it is booked so far (a partial fill). */
  filledQty: number;
  /** The exits a buy's position gets once its fill is booked (set from the limit price). */
  exits?: PendingExits;
  /** The sell closes its position (what dust is left goes). */
  closing: boolean;
  /** Who or what asked for it, in words for the chat, e.g. "/trade buy BTC 50 @ 95000 by @alice". */
  origin: string;
  decisionId?: string;
  placedAt: number;
}

/** Six hex characters of the client order id's hash: short to type, and the same on every retry. */
export function shortOrderId(clientOrderId: string): string {
  return createHash("sha256").update(clientOrderId).digest("hex").slice(0, 6);
}

/** What the open buy orders would add when they fill, at their limit prices. */
export function reservationsOf(orders: OpenOrder[]): Reservations {
  const bySymbol: Record<string, number> = {};
  let total = 0;
  for (const o of orders) {
    if (o.side !== "buy") continue;
    const notional = Math.max(0, o.qty - o.filledQty) * o.limitPrice;
    bySymbol[o.symbol] = (bySymbol[o.symbol] ?? 0) + notional;
    total += notional;
  }
  return { total, bySymbol };
}

export class OpenOrders {
  constructor(
    private readonly redis: Redis,
    private readonly key = "orders:open",
  ) {}

  async save(order: OpenOrder): Promise<void> {
    await this.redis.hset(this.key, order.clientOrderId, JSON.stringify(order));
  }

  async get(clientOrderId: string): Promise<OpenOrder | undefined> {
    const raw = await this.redis.hget(this.key, clientOrderId);
    return raw ? (JSON.parse(raw) as OpenOrder) : undefined;
  }

  /** Oldest first. */
  async all(): Promise<OpenOrder[]> {
    return (await this.redis.hvals(this.key)).map((r) => JSON.parse(r) as OpenOrder).sort((a, b) => a.placedAt - b.placedAt);
  }

  async byId(id: string): Promise<OpenOrder | undefined> {
    const wanted = id.toLowerCase();
    return (await this.all()).find((o) => o.id === wanted);
  }

  /** Filled in full, cancelled or refused: no longer resting. */
  async remove(clientOrderId: string): Promise<void> {
    await this.redis.hdel(this.key, clientOrderId);
  }

  async count(): Promise<number> {
    return this.redis.hlen(this.key);
  }
}
