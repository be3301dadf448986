// Starts the team dashboard for one process (the one that serves chat): the composition root's
// app, narrowed to what the dashboard reads.
import type { Redis } from "ioredis";
import type { NotifierHub } from "../chat/notifier.js";
import type { ChatServices } from "../chat/services.js";
import type { ChatHealth } from "../chat/types.js";
import type { Config } from "../config/config.js";
import { USDC, type AgentMode, type MarketSymbol } from "../domain/types.js";
import type { Log } from "../log.js";
import { chatChecks, redisCheck, workersCheck, checkParts } from "../ops/health.js";
import { loadPortfolio } from "../orders/orderPath.js";
import type { PermitSessions } from "../payments/permitSessions.js";
import type { DecisionServices } from "../pipeline/decide.js";
import type { DashboardLinks } from "./links.js";
import { startDashboard, type DashboardListen, type DashboardServer } from "./server.js";

/** What the dashboard reads of the composition root (its app satisfies it). */
export interface DashboardAppHost {
  config: { chat: { telegram: { token?: string | undefined }; discord: { token?: string | undefined } }; balance: Pick<Config["balance"], "dailyBudget" | "monthlyBudget"> };
  redis: Redis;
  services: Pick<DecisionServices, "ledger" | "portfolio" | "market" | "pending" | "openOrders" | "exchange" | "quote" | "clock" | "balance" | "state" | "models">;
  chat: Pick<ChatServices, "access" | "audit">;
  notifier: Pick<NotifierHub, "observe">;
  sessions?: PermitSessions;
  mode: AgentMode;
  symbols: MarketSymbol[];
  dashboard: DashboardLinks;
  liveWorkers(): Promise<string[]>;
  chatHealth?(): ChatHealth;
  log: Log;
}

export async function startDashboardFor(app: DashboardAppHost, o: DashboardListen): Promise<DashboardServer> {
  const s = app.services;
  const platforms = [...(app.config.chat.telegram.token ? ["telegram"] : []), ...(app.config.chat.discord.token ? ["discord"] : [])];
  const checks = [redisCheck(app.redis), workersCheck({ live: () => app.liveWorkers() }), ...chatChecks(platforms, () => app.chatHealth?.())];
  const server = await startDashboard(
    {
      sources: {
        ledger: s.ledger,
        portfolio: s.portfolio,
        market: s.market,
        pending: s.pending,
        openOrders: s.openOrders,
        loadPortfolio: () => loadPortfolio(s),
        balance: s.balance,
        ...(s.models.runtime ? { budget: s.models.runtime.budget } : {}),
        ...(app.sessions ? { sessions: app.sessions } : {}),
        audit: app.chat.audit,
        caps: { dailyMicro: USDC(app.config.balance.dailyBudget), monthlyMicro: USDC(app.config.balance.monthlyBudget) },
        clock: s.clock,
        quote: s.quote,
        symbols: app.symbols,
      },
      access: {
        roleOf: (platform, id) => app.chat.access.roleOf(platform, id),
        changedAt: (platform, id) => app.chat.access.changedAt(platform, id),
        hasRoleMap: app.chat.access.roleMap().length > 0,
      },
      audit: app.chat.audit,
      live: { decisionsSince: (from) => s.ledger.decisions(from, Number.MAX_SAFE_INTEGER), observe: (l) => app.notifier.observe(l), clock: s.clock },
      ...(app.config.chat.telegram.token ? { telegramBotToken: app.config.chat.telegram.token } : {}),
      linkSecret: await app.dashboard.secret(),
      mode: { trading: app.mode.trading, market: app.mode.market, model: app.mode.model },
      paused: () => s.state.isPaused(),
      async status() {
        const r = await checkParts(checks);
        return { status: r.ok ? "ok" : "unavailable", failing: r.failing, parts: r.parts };
      },
      log: app.log,
    },
    o,
  );
  app.dashboard.servedAt(server.url);
  app.log.info(`Serving the dashboard on ${server.url}${app.dashboard.baseUrl && app.dashboard.baseUrl !== server.url ? ` (reached as ${app.dashboard.baseUrl})` : ""}`);
  return server;
}
