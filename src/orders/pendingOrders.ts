// The journal of orders whose outcome is not known: written before an order is sent, removed once
// its fill is booked (or it is known it was refused or never placed). An order the exchange
// accepted but did not confirm (an error page after the order was placed, a lost answer, a crash
// mid-send) stays here, and is looked up by its client order id until it is found or proven
// absent: with backoff, across restarts, and never sent again meanwhile (Binance refuses a
// duplicate client id only while the first order is open). The reconciliation reads it too: a
// difference on a symbol with an order in here is explained, not alarming.
import type { Redis } from "ioredis";
import type { OrderSide } from "../domain/types.js";

export interface PendingExits {
  stopLoss: number;
  takeProfit: number;
  trailingStopPct?: number;
}

export interface PendingOrder {
  clientOrderId: string;
  symbol: string;
  side: OrderSide;
  /** Base quantity asked for. */
  qty: number;
  /** entry: a risk-checked order (a decision, /trade); reduce: an exit or the full stop. */
  kind: "entry" | "reduce";
  /** The sell closes its position (what dust is left goes). */
  closing: boolean;
  /** The exits a buy's position gets once its fill is booked. */
  exits?: PendingExits;
  /** Who or what asked for it, in words for the chat, e.g. "/trade by @alice" or "the stop loss". */
  origin: string;
  /** The decision record it belongs to, brought up to date once the outcome is known. */
  decisionId?: string;
  /** A limit order's price: found resting, it moves to the open orders (src/orders/openOrders.ts). */
  limitPrice?: number;
  /** sending: the order is on its way (placeOrder has not returned; a crash leaves it so); unknown: sent, not confirmed. */
  state: "sending" | "unknown";
  sentAt: number;
  /** Lookups made so far, and how many of them found no such order. */
  lookups: number;
  notFound: number;
  nextLookupAt: number;
  /** Why the outcome is not known, or what the last lookup said, in short words. */
  reason?: string;
  /** The team was told it is still unknown after a long time (once). */
  overdueTold?: boolean;
}

/** 5 s, 10 s, 20 s ... then every 10 minutes: quick for a blip, patient for an outage. */
export const lookupBackoffMs = (lookups: number): number => Math.min(10 * 60_000, 5_000 * 2 ** Math.max(0, lookups - 1));

export interface PendingOrdersOptions {
  /** "No such order" proves the order absent only this long after it was sent (an exchange may list it late). */
  absentAfterMs?: number;
  /** A "sending" entry older than this was left by a process that stopped mid-send. */
  orphanAfterMs?: number;
}

export class PendingOrders {
  readonly absentAfterMs: number;
  readonly orphanAfterMs: number;

  constructor(
    private readonly redis: Redis,
    opts: PendingOrdersOptions = {},
    private readonly key = "orders:pending",
  ) {
    this.absentAfterMs = opts.absentAfterMs ?? 120_000;
    this.orphanAfterMs = opts.orphanAfterMs ?? 30_000;
  }

  /** Written before the order is sent. */
  async begin(o: Omit<PendingOrder, "state" | "lookups" | "notFound" | "nextLookupAt">): Promise<PendingOrder> {
    const entry: PendingOrder = { ...o, state: "sending", lookups: 0, notFound: 0, nextLookupAt: o.sentAt };
    await this.redis.hset(this.key, o.clientOrderId, JSON.stringify(entry));
    return entry;
  }

  /** placeOrder returned without an outcome (it looked once itself): the first lookup of ours is due after the backoff. */
  async unknown(entry: PendingOrder, reason: string, now: number): Promise<PendingOrder> {
    const next: PendingOrder = { ...entry, state: "unknown", reason, lookups: 1, nextLookupAt: now + lookupBackoffMs(1) };
    await this.save(next);
    return next;
  }

  /** A lookup that settled nothing: the next is due after the backoff. */
  async looked(entry: PendingOrder, now: number, what: { reason: string; notFound?: boolean }): Promise<PendingOrder> {
    const lookups = entry.lookups + 1;
    const next: PendingOrder = { ...entry, state: "unknown", reason: what.reason, lookups, notFound: entry.notFound + (what.notFound ? 1 : 0), nextLookupAt: now + lookupBackoffMs(lookups) };
    await this.save(next);
    return next;
  }

  async save(entry: PendingOrder): Promise<void> {
    await this.redis.hset(this.key, entry.clientOrderId, JSON.stringify(entry));
  }

  /** The outcome is known and booked (or it was refused, or never placed). */
  async done(clientOrderId: string): Promise<void> {
    await this.redis.hdel(this.key, clientOrderId);
  }

  async get(clientOrderId: string): Promise<PendingOrder | undefined> {
    const raw = await this.redis.hget(this.key, clientOrderId);
    return raw ? (JSON.parse(raw) as PendingOrder) : undefined;
  }

  async all(): Promise<PendingOrder[]> {
    return (await this.redis.hvals(this.key)).map((r) => JSON.parse(r) as PendingOrder).sort((a, b) => a.sentAt - b.sentAt);
  }

  async count(): Promise<number> {
    return this.redis.hlen(this.key);
  }

  /**
   * Whether a lookup is due now. A "sending" entry is someone's order on its way until it is
   * older than a send can take; `force` (at startup, or the reconciliation) skips the backoff.
   */
  due(entry: PendingOrder, now: number, force = false): boolean {
    if (entry.state === "sending") return now - entry.sentAt >= this.orphanAfterMs;
    return force || now >= entry.nextLookupAt;
  }
}
