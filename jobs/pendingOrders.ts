import type { Notifier } from "../src/chat/notifier.js";
import type { NoticeInput } from "../src/chat/notices.js";
import type { AgentMode } from "../src/domain/types.js";
import type { Exchange } from "../src/exchange/types.js";
import type { Ledger } from "../src/ledger/ledger.js";
import { resolvePendingOrders, type Resolution } from "../src/orders/orderPath.js";
import type { PendingOrders } from "../src/orders/pendingOrders.js";
import type { PortfolioStore } from "../src/portfolio/store.js";
import type { RedisLock } from "../src/redis/lock.js";

export interface PendingOrdersDeps {
  services: { exchange: Exchange; portfolio: PortfolioStore; pending: PendingOrders; ledger: Ledger; tradeLock: RedisLock; quote: string; clock: () => number };
  notifier: Notifier;
  mode: Pick<AgentMode, "trading">;
}

/** After this many lookups (about 5 minutes of backoff) the team is asked to look at the exchange, once. */
const OVERDUE_AFTER_LOOKUPS = 7;

/**
 * Looks up the orders whose outcome is not known (sent, not confirmed): those due after their
 * backoff, or all of them with `force` (at startup: a restart resumes them at once). What is found
 * is booked with its exits by the order path; the team is told what became of each order, and
 * the decision it belongs to is brought up to date. Runs with the position monitor, under the
 * trading lock.
 */
export async function runPendingOrders(app: PendingOrdersDeps, opts: { force?: boolean } = {}): Promise<Resolution[]> {
  const s = app.services;
  // The common case is an empty journal: one round trip, no lock.
  if ((await s.pending.count()) === 0) return [];
  const resolutions = await s.tradeLock.run(() => resolvePendingOrders(s, opts));
  for (const r of resolutions) await tell(app, r);
  return resolutions;
}

async function tell(app: PendingOrdersDeps, r: Resolution): Promise<void> {
  const s = app.services;
  const { entry } = r;
  if (r.kind === "waiting") {
    if (entry.lookups < OVERDUE_AFTER_LOOKUPS || entry.overdueTold) return;
    await s.pending.save({ ...entry, overdueTold: true });
    await app.notifier.notify({ type: "order-overdue", symbol: entry.symbol, side: entry.side, origin: entry.origin, lookups: entry.lookups, sentAt: entry.sentAt, reason: entry.reason ?? "not known" });
    return;
  }
  if (r.kind === "resting") {
    const base = entry.symbol.split("/")[0];
    const filled = r.order.filledQty > 0 ? ` ${r.order.filledQty.toFixed(6)} ${base} of it had filled and is booked.` : "";
    await app.notifier.notify({
      kind: "info",
      text: `Order found: the limit ${entry.side.toUpperCase()} ${r.open.qty.toFixed(6)} ${base} @ ${r.open.limitPrice} (${entry.origin}), whose outcome was not known, is open on ${s.exchange.name} as order ${r.open.id}.${filled} It is booked when it fills; /orders lists it.`,
    });
    return;
  }
  // Booked already by the call that sent it (it stopped before clearing the journal): that call told its story.
  if (r.kind === "filled" && !r.applied && entry.state === "sending") return;
  const notice: NoticeInput = {
    type: "order-resolved",
    outcome: r.kind,
    via: "lookup",
    symbol: entry.symbol,
    side: entry.side,
    origin: entry.origin,
    lookups: entry.lookups + 1,
    quote: s.quote,
    paper: app.mode.trading === "paper",
    ...(r.kind === "filled" || r.kind === "rejected" ? { order: r.order } : {}),
    ...(r.kind === "filled" && entry.side === "buy" && entry.exits ? { exits: entry.exits } : {}),
    ...(r.kind === "filled" ? { pnl: r.realizedPnl } : {}),
  };
  await app.notifier.notify(notice);
  if (entry.decisionId) await updateDecision(s.ledger, entry.decisionId, r);
}

/** The decision whose order was pending now says what became of it. */
async function updateDecision(ledger: Ledger, decisionId: string, r: Exclude<Resolution, { kind: "waiting" }>): Promise<void> {
  const record = await ledger.get(decisionId);
  if (!record || record.outcome !== "pending") return;
  const { pendingOrder: _sent, ...rest } = record;
  if (r.kind === "absent") {
    await ledger.put({ ...rest, outcome: "no-order", error: [record.error, "the order was never placed (the exchange has no such order)"].filter(Boolean).join(" | ") });
    return;
  }
  const o = r.order;
  await ledger.put({
    ...rest,
    outcome: r.kind === "rejected" ? "refused" : "order",
    order: { id: o.id, side: o.side, qty: o.filledQty, avgPrice: o.avgPrice, fee: o.fee, status: o.status, ...(o.reason ? { reason: o.reason } : {}) },
  });
}
