import type { Notifier } from "../src/chat/notifier.js";
import type { AgentMode, MarketSymbol, RiskLimits } from "../src/domain/types.js";
import type { Exchange } from "../src/exchange/types.js";
import type { MarketData } from "../src/market/types.js";
import { adoptOwnOrders, type Adopted } from "../src/orders/orderPath.js";
import type { PendingOrder, PendingOrders } from "../src/orders/pendingOrders.js";
import type { OpenOrders } from "../src/orders/openOrders.js";
import { reconcile, type Drift, type ReconcileReport, type ReconciliationLog } from "../src/portfolio/reconcile.js";
import type { PortfolioStore } from "../src/portfolio/store.js";
import type { RedisLock } from "../src/redis/lock.js";

export type { ReconcileReport } from "../src/portfolio/reconcile.js";

export interface ReconcileDeps {
  services: { portfolio: PortfolioStore; exchange: Exchange; market: MarketData; limits: RiskLimits; clock: () => number; pending: PendingOrders; tradeLock: RedisLock; quote: string; openOrders?: OpenOrders };
  reconciliations: ReconciliationLog;
  symbols: MarketSymbol[];
  notifier: Notifier;
  mode: Pick<AgentMode, "trading">;
}

/**
 * Compares the booked positions with the exchange's balances and open orders. A difference it
 * can prove, an order of ours (by its client order id) that filled and never reached the books,
 * is booked (with the default exits) and told. A difference on a symbol with an order in flight
 * or whose outcome is being looked up (the journal of pending orders) is explained, not alarming:
 * the lookups settle it. What is left cannot be explained: it is reported, never traded away, and
 * the team decides what the truth is. At startup the result is always told when there is drift;
 * on the schedule, only when it changed since the last run.
 */
export async function runReconciliation(app: ReconcileDeps, opts: { startup?: boolean } = {}): Promise<ReconcileReport> {
  const s = app.services;
  let { drifts, journal } = await compare(app);
  const inJournal = (symbol: string) => journal.some((p) => p.symbol === symbol);

  const provable = [...new Set(drifts.filter((d) => d.kind !== "unknown-order" && !inJournal(d.symbol)).map((d) => d.symbol))];
  if (provable.length > 0 && s.exchange.unbookedOwnOrders) {
    const adopted = await s.tradeLock.run(async () => {
      const out: { symbol: string; found: Adopted[] }[] = [];
      for (const symbol of provable) out.push({ symbol, found: await adoptOwnOrders(s, symbol) });
      return out;
    });
    const paper = app.mode.trading === "paper";
    for (const { symbol, found } of adopted) {
      for (const a of found) {
        const o = a.order;
        await app.notifier.notify({
          type: "order-resolved",
          outcome: "filled",
          via: "reconciliation",
          symbol,
          side: o.side,
          origin: `client order id ${o.clientOrderId}`,
          order: o,
          ...(a.exits ? { exits: a.exits } : {}),
          pnl: a.realizedPnl,
          quote: s.quote,
          paper,
        });
      }
    }
    if (adopted.some((a) => a.found.length > 0)) ({ drifts, journal } = await compare(app));
  }

  const unexplained = drifts.filter((d) => !inJournal(d.symbol));
  const explained = drifts
    .filter((d) => inJournal(d.symbol))
    .map((d) => ({ symbol: d.symbol, why: `an order is ${journal.find((p) => p.symbol === d.symbol)!.state === "sending" ? "in flight" : "being looked up (its outcome is not known yet)"}` }));
  const report: ReconcileReport = { time: s.clock(), drifts: unexplained, ...(explained.length ? { explained } : {}) };
  const signature = JSON.stringify(unexplained.map((d) => [d.symbol, d.kind, d.booked.toPrecision(6), d.held.toPrecision(6)]));
  const previous = await app.reconciliations.record(report, signature);
  const changed = previous !== signature;
  if (unexplained.length > 0 && (opts.startup || changed)) {
    await app.notifier.notify({ type: "reconciliation", exchange: s.exchange.name, startup: opts.startup === true, drifts: unexplained });
  } else if (unexplained.length === 0 && changed && previous !== null) {
    await app.notifier.notify({ type: "reconciled", exchange: s.exchange.name });
  }
  return report;
}

/** The books against the exchange, with the journal read first: an order sent after this read is not missed as drift. */
async function compare(app: ReconcileDeps): Promise<{ drifts: Drift[]; journal: PendingOrder[] }> {
  const s = app.services;
  const journal = await s.pending.all();
  const [positions, holdings, openOrders, recent, resting] = await Promise.all([
    s.portfolio.positions(),
    s.exchange.holdings ? s.exchange.holdings() : s.exchange.balances(),
    s.exchange.openOrders ? s.exchange.openOrders() : Promise.resolve([]),
    s.exchange.trades(1000),
    s.openOrders ? s.openOrders.all() : Promise.resolve([]),
  ]);
  // An order sent while the balances were read is in flight too.
  const after = await s.pending.all();
  const prices: Record<string, number> = {};
  for (const symbol of new Set([...app.symbols, ...positions.map((p) => p.symbol)])) {
    prices[symbol] = await s.market.lastPrice(symbol).catch(() => 0);
  }
  const both = [...journal, ...after.filter((a) => !journal.some((j) => j.clientOrderId === a.clientOrderId))];
  const drifts = reconcile({
    positions,
    holdings,
    openOrders,
    // Our resting limit orders are ours too, though nothing of them has traded yet.
    ownOrderIds: new Set([...recent.map((o) => o.clientOrderId), ...both.map((p) => p.clientOrderId), ...resting.map((o) => o.clientOrderId)]),
    symbols: app.symbols,
    prices,
    dustNotional: s.limits.minOrderNotional,
  });
  return { drifts, journal: both };
}
