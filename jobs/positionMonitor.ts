import type { App } from "../src/app.js";
import { money, price } from "../src/chat/format.js";
import type { Notice } from "../src/chat/notifier.js";
import { enforceExits, type ExitEvent } from "../src/orders/exits.js";

/**
 * Enforces the stop loss, take profit and trailing stop of every open position, records the
 * equity curve, and alerts when the market itself breaks a limit (a gap through a stop, the day's
 * loss, exposure or VaR). It runs while trading is paused: a pause stops new decisions, never the
 * protection of what is already open.
 */
export async function runPositionMonitor(app: App): Promise<number> {
  const s = app.services;
  const events = await s.tradeLock.run(() => enforceExits(s, { breaches: true, equityEveryMs: 5 * 60_000 }));
  const tag = app.mode.trading === "paper" ? " [PAPER]" : "";
  for (const e of events) {
    const notice = noticeFor(e, s.quote, tag);
    if (notice) await app.notifier.notify(notice);
  }
  return events.filter((e) => e.kind === "exit").length;
}

function noticeFor(e: ExitEvent, quote: string, tag: string): Notice | undefined {
  const name = (hit: string) => (hit === "stop-loss" ? "Stop loss" : "Take profit");
  switch (e.kind) {
    case "exit": {
      const text = `${name(e.hit)} hit on ${e.symbol}${e.gapped ? " (the price gapped through the level)" : ""}: sold ${e.qty.toFixed(6)} @ ${price(e.fill)}, P&L ${money(e.pnl, quote)}${tag}`;
      if (!e.gapped) return { kind: "trade", text };
      const beyond = ((e.level - e.fill) / e.level) * 100;
      return {
        kind: "alert",
        text: `${text}\nRisk: the market broke through the stop at ${price(e.level)}; the exit filled ${beyond.toFixed(2)}% beyond it. Position closed; the loss counts toward today's limit.`,
      };
    }
    case "exit-rejected":
      return { kind: "error", text: `Could not close ${e.symbol} at its ${e.hit}: ${e.reason}. The monitor tries again on its next run.` };
    case "trail":
      return undefined;
    case "breach":
      return { kind: "alert", text: `Risk limit broken by the market (${e.breach.rule}): ${e.breach.message}` };
  }
}
