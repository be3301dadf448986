import type { App } from "../src/app.js";
import { reconcile, type Drift } from "../src/portfolio/reconcile.js";

export interface ReconcileReport {
  time: number;
  drifts: Drift[];
}

const LAST = "monitor:reconcile";

/**
 * Compares the booked positions with the exchange's balances and open orders. Drift is reported,
 * never traded away: the team decides what the truth is. At startup the result is always told
 * when there is drift; on the schedule, only when it changed since the last run.
 */
export async function runReconciliation(app: App, opts: { startup?: boolean } = {}): Promise<ReconcileReport> {
  const s = app.services;
  const [positions, holdings, openOrders, recent] = await Promise.all([
    s.portfolio.positions(),
    s.exchange.holdings ? s.exchange.holdings() : s.exchange.balances(),
    s.exchange.openOrders ? s.exchange.openOrders() : Promise.resolve([]),
    s.exchange.trades(1000),
  ]);
  const prices: Record<string, number> = {};
  for (const symbol of new Set([...app.symbols, ...positions.map((p) => p.symbol)])) {
    prices[symbol] = await s.market.lastPrice(symbol).catch(() => 0);
  }
  const drifts = reconcile({
    positions,
    holdings,
    openOrders,
    ownOrderIds: new Set(recent.map((o) => o.clientOrderId)),
    symbols: app.symbols,
    prices,
    dustNotional: s.limits.minOrderNotional,
  });
  const report: ReconcileReport = { time: s.clock(), drifts };
  const signature = JSON.stringify(drifts.map((d) => [d.symbol, d.kind, d.booked.toPrecision(6), d.held.toPrecision(6)]));
  const previous = await app.redis.getset(`${LAST}:signature`, signature);
  await app.redis.set(LAST, JSON.stringify(report));
  const changed = previous !== signature;
  if (drifts.length > 0 && (opts.startup || changed)) {
    await app.notifier.notify({
      kind: "alert",
      text: [`Reconciliation${opts.startup ? " at startup" : ""} with ${s.exchange.name}: ${drifts.length} difference(s) between the books and the exchange. Nothing was traded; check and correct:`, ...drifts.map((d) => `  • ${d.message}`)].join("\n"),
    });
  } else if (drifts.length === 0 && changed && previous !== null) {
    await app.notifier.notify({ kind: "info", text: `Reconciliation with ${s.exchange.name}: the books and the exchange agree again.` });
  }
  return report;
}

export async function lastReconciliation(app: App): Promise<ReconcileReport | undefined> {
  const raw = await app.redis.get(LAST);
  return raw ? (JSON.parse(raw) as ReconcileReport) : undefined;
}
