import { money, price, usdc } from "../src/chat/format.js";
import type { ChatHealth } from "../src/chat/types.js";
import { levelOf } from "../src/payments/balanceManager.js";
import { loadPortfolio } from "../src/orders/orderPath.js";
import { equity, exposure, exposureBySymbol, maxDrawdown, totalUnrealizedPnl, unrealizedPnl } from "../src/portfolio/valuation.js";
import { describeLimits } from "../src/risk/rules.js";
import { portfolioVar, returnSeries, VAR_LOOKBACK, type ReturnSeries } from "../src/risk/var.js";
import { openSessionLine } from "../src/payments/sessionText.js";
import { defineCommand, noArgs, type Needs } from "./types.js";

const ago = (ms: number) => (ms < 90_000 ? `${Math.round(ms / 1000)} s` : ms < 5_400_000 ? `${Math.round(ms / 60_000)} min` : `${(ms / 3_600_000).toFixed(1)} h`);

function chatLines(health: ChatHealth): string[] {
  const problems = Object.values(health).flatMap((h) => h.problems);
  return problems.length === 0 ? ["Chat: every platform works"] : ["Chat problems:", ...problems.map((p) => `  ${p}`)];
}

export const status = defineCommand<
  undefined,
  Needs<"schedule" | "mode" | "startedAt" | "reconciliations" | "chatHealth" | "sessions" | "control", "clock" | "state" | "balance" | "exchange" | "portfolio" | "market" | "quote" | "models" | "research" | "limits" | "openOrders" | "refreshLimits">
>({
  name: "status",
  summary: "Mode, market, model, pause state, schedule and limits",
  usage: "/status",
  minRole: "viewer",
  parse: noArgs("/status"),
  async run(_, { app }) {
    const s = app.services;
    const now = s.clock();
    await s.refreshLimits?.();
    const [pause, chosen, bal, portfolio, schedule, reconciled, sessions, entries, resting, chosenSchedule] = await Promise.all([
      s.state.pauseState(),
      s.state.chosenModel(),
      s.balance.getBalance(),
      loadPortfolio(s),
      app.schedule(),
      app.reconciliations.last(),
      app.sessions?.recent(3),
      s.state.entryStop(),
      s.openOrders.count(),
      app.control.source(),
    ]);
    // Which wins: a change from chat (kept in Redis) over the environment, which only seeds a first start.
    const from = (what: "chat" | "config", setting: string) =>
      what === "chat" ? `set from chat${chosenSchedule.by ? ` by ${chosenSchedule.by}` : ""}, kept in Redis; wins over ${setting}` : `from ${setting}; /symbols or /interval would override it`;
    const eq = equity(portfolio);
    const lines = [
      `Trading: ${pause.paused ? `PAUSED (${pause.reason}, by ${pause.by ?? "the agent"}, ${ago(now - (pause.since ?? now))} ago)` : "running"} · ${app.mode.trading === "paper" ? "PAPER (simulated)" : `LIVE on ${s.exchange.name}`}`,
      `Entries: ${entries.stopped ? `STOPPED (/stopentry by ${entries.by ?? "someone"}, ${ago(now - (entries.since ?? now))} ago): no new buys; exits, stops and take-profits keep working` : "allowed"} · open orders: ${resting}${resting ? " (/orders)" : ""}`,
      `Market: ${s.market.describe()}`,
      `Model: ${chosen ?? s.models.chain()[0]!.id}${chosen ? " (chosen)" : ""} · research: ${s.research.name}`,
      ...(sessions ? [openSessionLine(sessions, now)] : []),
      `USDC: ${usdc(bal, 2)} (${levelOf(bal, s.balance.rules)}) · equity ${money(eq, s.quote)} · exposure ${eq > 0 ? ((exposure(portfolio) / eq) * 100).toFixed(1) : "0"}% · ${portfolio.positions.length} position(s)`,
      `Reconciliation: ${reconciled ? `${ago(Math.max(0, now - reconciled.time))} ago, ${reconciled.drifts.length === 0 ? "books and exchange agree" : `${reconciled.drifts.length} difference(s): ${reconciled.drifts.map((d) => d.symbol).join(", ")}`}${reconciled.explained?.length ? `; ${reconciled.explained.map((e) => `${e.symbol}: ${e.why}`).join(", ")}` : ""}` : "not run yet"}`,
      `Uptime: ${ago(now - app.startedAt)}`,
      ...(app.chatHealth ? chatLines(app.chatHealth()) : []),
      `Symbols: ${app.control.symbols().join(", ")} (${from(chosenSchedule.symbols, "SYMBOLS")})`,
      `Decision interval: ${Math.round(app.control.intervalMs() / 1000)} s (${from(chosenSchedule.interval, "DECISION_INTERVAL_SECONDS")})`,
      "Schedule:",
      ...schedule.map((j) => `  ${j.name}: ${j.every}${j.next ? `, next in ${ago(Math.max(0, j.next - now))}` : ""}`),
      "Risk limits:",
      ...describeLimits(s.limits).map((l) => `  ${l}`),
    ];
    return { text: lines.join("\n") };
  },
});

export const positions = defineCommand<undefined, Needs<"mode", "exchange" | "portfolio" | "market" | "quote" | "clock" | "openOrders">>({
  name: "positions",
  summary: "Open positions with P&L, stop loss and take profit",
  usage: "/positions",
  minRole: "viewer",
  parse: noArgs("/positions"),
  async run(_, { app }) {
    const s = app.services;
    const portfolio = await loadPortfolio(s);
    const tag = app.mode.trading === "paper" ? " [PAPER]" : "";
    const realized = await s.portfolio.realizedPnl();
    if (portfolio.positions.length === 0) {
      return { text: `No open positions${tag}. Realized P&L so far: ${money(realized, s.quote)}.` };
    }
    const eq = equity(portfolio);
    const bySymbol = exposureBySymbol(portfolio);
    const lines = [`Open positions${tag}:`];
    for (const p of portfolio.positions) {
      const last = portfolio.prices[p.symbol] ?? p.entryPrice;
      const pnl = unrealizedPnl(p, last);
      const pnlPct = ((last - p.entryPrice) / p.entryPrice) * 100;
      const share = eq > 0 ? ((bySymbol[p.symbol] ?? 0) / eq) * 100 : 0;
      const trailing = p.trailingStopPct ? ` (trailing ${p.trailingStopPct}%)` : "";
      lines.push(
        `  ${p.symbol}: ${p.qty.toFixed(6)} @ ${price(p.entryPrice)} → ${price(last)} · P&L ${money(pnl, s.quote)} (${pnlPct >= 0 ? "+" : ""}${pnlPct.toFixed(2)}%) · ${share.toFixed(1)}% of equity · stop ${price(p.stopLoss)}${trailing} · target ${price(p.takeProfit)}`,
      );
    }
    const returns: Record<string, ReturnSeries> = {};
    for (const p of portfolio.positions) returns[p.symbol] = returnSeries(await s.market.closedCandles(p.symbol, VAR_LOOKBACK + 1));
    const var95 = portfolioVar(bySymbol, returns);
    const curve = (await s.portfolio.equityCurve()).map((pt) => pt.equity);
    lines.push(
      `Unrealized P&L: ${money(totalUnrealizedPnl(portfolio), s.quote)} · realized: ${money(realized, s.quote)} · equity ${money(eq, s.quote)}`,
      `Exposure: ${money(exposure(portfolio), s.quote)} (${eq > 0 ? ((exposure(portfolio) / eq) * 100).toFixed(1) : "0"}% of equity) · VaR 95% (one candle, historical): ${money(var95, s.quote)} (${eq > 0 ? ((var95 / eq) * 100).toFixed(2) : "0"}%)`,
    );
    if (curve.length > 1) lines.push(`Equity curve: ${curve.length} points, max drawdown ${(maxDrawdown(curve) * 100).toFixed(2)}%`);
    return { text: lines.join("\n") };
  },
});
