import type { Notifier } from "../src/chat/notifier.js";
import type { MarketSymbol } from "../src/domain/types.js";
import type { Exchange } from "../src/exchange/types.js";
import type { MarketData } from "../src/market/types.js";
import { reconcile, type ReconcileReport, type ReconciliationLog } from "../src/portfolio/reconcile.js";
import type { PortfolioStore } from "../src/portfolio/store.js";
import type { RiskLimits } from "../src/domain/types.js";

export type { ReconcileReport } from "../src/portfolio/reconcile.js";

export interface ReconcileDeps {
  services: { portfolio: PortfolioStore; exchange: Exchange; market: MarketData; limits: RiskLimits; clock: () => number };
  reconciliations: ReconciliationLog;
  symbols: MarketSymbol[];
  notifier: Notifier;
}

/**
 * Compares the booked positions with the exchange's balances and open orders. Drift is reported,
 * never traded away: the team decides what the truth is. At startup the result is always told
 * when there is drift; on the schedule, only when it changed since the last run.
 */
export async function runReconciliation(app: ReconcileDeps, opts: { startup?: boolean } = {}): Promise<ReconcileReport> {
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
  const previous = await app.reconciliations.record(report, signature);
  const changed = previous !== signature;
  if (drifts.length > 0 && (opts.startup || changed)) {
    await app.notifier.notify({ type: "reconciliation", exchange: s.exchange.name, startup: opts.startup === true, drifts });
  } else if (drifts.length === 0 && changed && previous !== null) {
    await app.notifier.notify({ type: "reconciled", exchange: s.exchange.name });
  }
  return report;
}
