import type { Notifier } from "../src/chat/notifier.js";
import type { AgentMode } from "../src/domain/types.js";
import { settleOpenOrders, type OpenOrderEvent, type OpenOrderServices } from "../src/orders/orderPath.js";
import type { RedisLock } from "../src/redis/lock.js";

export interface OpenOrdersDeps {
  services: OpenOrderServices & { tradeLock: RedisLock; quote: string };
  notifier: Notifier;
  mode: Pick<AgentMode, "trading">;
}

/**
 * Looks at our resting limit orders (the paper exchange fills those the price crossed first),
 * books what filled with its exits, and tells the team like any fill. Runs with the position
 * monitor, before the stops are checked, so a position a limit order opened is protected in the
 * same run.
 */
export async function runOpenOrders(app: OpenOrdersDeps): Promise<OpenOrderEvent[]> {
  const s = app.services;
  // The common case is no resting order: one round trip, no lock.
  if ((await s.openOrders.count()) === 0) return [];
  const events = await s.tradeLock.run(() => settleOpenOrders(s));
  await tellOpenOrderEvents(app, events);
  return events;
}

export async function tellOpenOrderEvents(app: Pick<OpenOrdersDeps, "notifier" | "mode" | "services">, events: OpenOrderEvent[]): Promise<void> {
  const paper = app.mode.trading === "paper";
  for (const e of events) {
    const { entry } = e;
    const common = { type: "limit-order" as const, id: entry.id, symbol: entry.symbol, side: entry.side, limitPrice: entry.limitPrice, origin: entry.origin, quote: app.services.quote, paper };
    if (e.kind === "filled") {
      const o = e.order;
      await app.notifier.notify({
        ...common,
        outcome: "filled",
        order: { filledQty: o.filledQty, avgPrice: o.avgPrice, fee: o.fee, status: o.status, ...(o.reason ? { reason: o.reason } : {}) },
        newQty: e.newQty,
        pnl: e.realizedPnl,
        ...(entry.side === "buy" && entry.exits ? { exits: entry.exits } : {}),
      });
    } else {
      await app.notifier.notify({ ...common, outcome: "gone", ...(e.order ? { order: { filledQty: e.order.filledQty, avgPrice: e.order.avgPrice, fee: e.order.fee, status: e.order.status, ...(e.order.reason ? { reason: e.order.reason } : {}) } } : {}) });
    }
  }
}
