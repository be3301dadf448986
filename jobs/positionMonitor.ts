import type { Notifier } from "../src/chat/notifier.js";
import type { NoticeInput } from "../src/chat/notices.js";
import type { AgentMode } from "../src/domain/types.js";
import { enforceExits, type ExitEvent, type ExitServices } from "../src/orders/exits.js";
import { dayKey } from "../src/ledger/ledger.js";
import { runPendingOrders, type PendingOrdersDeps } from "./pendingOrders.js";
import { runOpenOrders, type OpenOrdersDeps } from "./openOrders.js";

export interface PositionMonitorDeps {
  services: ExitServices & PendingOrdersDeps["services"] & OpenOrdersDeps["services"];
  notifier: Notifier;
  mode: Pick<AgentMode, "trading">;
}

/**
 * Enforces the stop loss, take profit and trailing stop of every open position, records the
 * equity curve, and alerts when the market itself breaks a limit (a gap through a stop, the day's
 * loss, exposure or VaR). It runs while trading is paused: a pause stops new decisions, never the
 * protection of what is already open.
 */
export async function runPositionMonitor(app: PositionMonitorDeps): Promise<number> {
  const s = app.services;
  // Orders sent and not confirmed are looked up first (those due after their backoff), so what
  // they bought is on the books, with its stop, before the stops are checked.
  // Its failure (Redis, the lock) must not keep the stops from being checked: it is raised after them.
  const lookups = await runPendingOrders(app).then(
    () => undefined,
    (err: unknown) => err,
  );
  // Resting limit orders the price crossed are filled and booked (with their exits) before the stops are checked.
  const limits = await runOpenOrders(app).then(
    () => undefined,
    (err: unknown) => err,
  );
  const events = await s.tradeLock.run(() => enforceExits(s, { breaches: true, equityEveryMs: 5 * 60_000 }));
  const paper = app.mode.trading === "paper";
  for (const e of events) {
    if (e.kind === "exit-pending") {
      await app.notifier.notify({ type: "order-pending", symbol: e.symbol, side: "sell", origin: `the ${e.hit === "stop-loss" ? "stop loss" : "take profit"} of ${e.symbol}`, reason: e.reason, exchange: s.exchange.name });
      continue;
    }
    // A refused exit is retried every run; the team hears of it once a day per position.
    if (e.kind === "exit-refused" && !(await s.portfolio.markBreach(`exit-refused:${e.symbol}`, dayKey(s.clock())))) continue;
    const notice = noticeFor(e, s.quote, paper);
    if (notice) await app.notifier.notify(notice);
  }
  if (lookups !== undefined) throw lookups;
  if (limits !== undefined) throw limits;
  return events.filter((e) => e.kind === "exit").length;
}

function noticeFor(e: ExitEvent, quote: string, paper: boolean): NoticeInput | undefined {
  switch (e.kind) {
    case "exit":
      return { type: "exit", symbol: e.symbol, hit: e.hit, level: e.level, fill: e.fill, qty: e.qty, pnl: e.pnl, gapped: e.gapped, quote, paper };
    case "exit-rejected":
      return { type: "exit-failed", symbol: e.symbol, hit: e.hit, reason: e.reason };
    case "exit-refused":
      return { type: "exit-refused", symbol: e.symbol, hit: e.hit, reason: e.reason, booked: e.booked, held: e.held };
    case "trail":
    case "fill-corrected":
    case "exit-pending":
      return undefined;
    case "breach":
      return { type: "limit-breach", breach: e.breach };
  }
}
