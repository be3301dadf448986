import type { Notifier } from "../src/chat/notifier.js";
import type { NoticeInput } from "../src/chat/notices.js";
import type { AgentMode } from "../src/domain/types.js";
import { enforceExits, type ExitEvent, type ExitServices } from "../src/orders/exits.js";
import { dayKey } from "../src/ledger/ledger.js";
import type { RedisLock } from "../src/redis/lock.js";

export interface PositionMonitorDeps {
  services: ExitServices & { tradeLock: RedisLock };
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
  const events = await s.tradeLock.run(() => enforceExits(s, { breaches: true, equityEveryMs: 5 * 60_000 }));
  const paper = app.mode.trading === "paper";
  for (const e of events) {
    // A refused exit is retried every run; the team hears of it once a day per position.
    if (e.kind === "exit-refused" && !(await s.portfolio.markBreach(`exit-refused:${e.symbol}`, dayKey(s.clock())))) continue;
    const notice = noticeFor(e, s.quote, paper);
    if (notice) await app.notifier.notify(notice);
  }
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
      return undefined;
    case "breach":
      return { type: "limit-breach", breach: e.breach };
  }
}
