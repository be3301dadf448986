import { money, price, usdc } from "../src/chat/format.js";
import { levelOf } from "../src/balance/balanceManager.js";
import { loadPortfolio } from "../src/pipeline/decide.js";
import { equity, exposure, unrealizedPnl } from "../src/portfolio/valuation.js";
import { describeLimits } from "../src/risk/rules.js";
import { defineCommand, noArgs } from "./types.js";

const ago = (ms: number) => (ms < 90_000 ? `${Math.round(ms / 1000)} s` : ms < 5_400_000 ? `${Math.round(ms / 60_000)} min` : `${(ms / 3_600_000).toFixed(1)} h`);

export const status = defineCommand<undefined>({
  name: "status",
  summary: "Mode, market, model, pause state, schedule and limits",
  usage: "/status",
  minRole: "viewer",
  parse: noArgs("/status"),
  async run(_, { app }) {
    const s = app.services;
    const now = s.clock();
    const [pause, chosen, bal, portfolio, schedule] = await Promise.all([
      s.state.pauseState(),
      s.state.chosenModel(),
      s.balance.getBalance(),
      loadPortfolio(s),
      app.schedule(),
    ]);
    const eq = equity(portfolio);
    const lines = [
      `Trading: ${pause.paused ? `PAUSED (${pause.reason}, by ${pause.by ?? "the agent"}, ${ago(now - (pause.since ?? now))} ago)` : "running"} · ${app.mode.trading === "paper" ? "PAPER (simulated)" : `LIVE on ${s.exchange.name}`}`,
      `Market: ${s.market.describe()}`,
      `Model: ${chosen ?? s.models.chain()[0]!.id}${chosen ? " (chosen)" : ""} · research: ${s.research.name}`,
      `USDC: ${usdc(bal, 2)} (${levelOf(bal, s.balance.rules)}) · equity ${money(eq, s.quote)} · exposure ${eq > 0 ? ((exposure(portfolio) / eq) * 100).toFixed(1) : "0"}% · ${portfolio.positions.length} position(s)`,
      `Uptime: ${ago(now - app.startedAt)}`,
      "Schedule:",
      ...schedule.map((j) => `  ${j.name}: ${j.every}${j.next ? `, next in ${ago(Math.max(0, j.next - now))}` : ""}`),
      "Risk limits:",
      ...describeLimits(s.limits).map((l) => `  ${l}`),
    ];
    return { text: lines.join("\n") };
  },
});

export const positions = defineCommand<undefined>({
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
    const lines = [`Open positions${tag}:`];
    for (const p of portfolio.positions) {
      const last = portfolio.prices[p.symbol] ?? p.entryPrice;
      const pnl = unrealizedPnl(p, last);
      const pnlPct = ((last - p.entryPrice) / p.entryPrice) * 100;
      lines.push(
        `  ${p.symbol}: ${p.qty.toFixed(6)} @ ${price(p.entryPrice)} → ${price(last)} · P&L ${money(pnl, s.quote)} (${pnlPct >= 0 ? "+" : ""}${pnlPct.toFixed(2)}%) · stop ${price(p.stopLoss)} · target ${price(p.takeProfit)}`,
      );
    }
    lines.push(`Realized P&L: ${money(realized, s.quote)}`);
    return { text: lines.join("\n") };
  },
});
