import { levelOf } from "../src/payments/balanceManager.js";
import { money, usdc } from "../src/chat/format.js";
import { fullStopLines, type ClosedByFullStop } from "../src/chat/notices.js";
import { loadPortfolio, placeReduce } from "../src/orders/orderPath.js";
import { defineCommand, noArgs, type ChatUser, type Needs } from "./types.js";

const pauseUsage = "/pause [all]";

type PauseHost = Needs<"mode" | "notifier", "state" | "portfolio" | "exchange" | "market" | "quote" | "clock" | "tradeLock" | "openOrders">;

/** Closes every open position at market, under the trading lock: the full stop of /pause all. */
async function closeEverything(app: PauseHost, user: ChatUser): Promise<string[]> {
  const s = app.services;
  const paper = app.mode.trading === "paper";
  return s.tradeLock.run(async () => {
    const closed: ClosedByFullStop[] = [];
    for (const p of await s.portfolio.positions()) {
      // Keyed on the position, so a repeated full stop finds this order instead of selling twice.
      const out = await placeReduce(s, { clientOrderId: `stop:${p.symbol}:${p.openedAt}`, symbol: p.symbol, qty: p.qty, closing: true, origin: `the full stop by ${user.name}` });
      if (out.pending) {
        closed.push({ symbol: p.symbol, pending: out.pending.entry.reason ?? "not confirmed" });
        continue;
      }
      const order = out.order;
      if (!order || order.status === "rejected") {
        closed.push({ symbol: p.symbol, refused: order ? `the exchange refused: ${order.reason ?? "no reason given"}` : out.risk.message });
        continue;
      }
      closed.push({ symbol: p.symbol, qty: order.filledQty, avgPrice: order.avgPrice, pnl: out.realizedPnl });
    }
    if (closed.length) await app.notifier.notify({ type: "full-stop", by: user.name, closed, quote: s.quote, paper }, user);
    return fullStopLines(closed, s.quote, paper);
  });
}

export const pause = defineCommand<{ all: boolean }, PauseHost>({
  name: "pause",
  summary: "Stop new trading decisions at once (open positions stay monitored); /pause all also closes every position",
  usage: pauseUsage,
  example: "/pause",
  minRole: "trader",
  mutates: true,
  remote: ({ all }) => all,
  options: [{ name: "scope", description: "all: also close every open position (a full stop)", kind: "choice", choices: ["all"], required: false }],
  parse(args) {
    if (args.length === 0) return { ok: true, value: { all: false } };
    if (args.length === 1 && args[0]!.toLowerCase() === "all") return { ok: true, value: { all: true } };
    return { ok: false, error: `This command takes no arguments, or "all" for a full stop that also closes every position. Usage: ${pauseUsage}` };
  },
  async confirm({ all }, { app }) {
    if (!all) return undefined;
    const portfolio = await loadPortfolio(app.services);
    if (portfolio.positions.length === 0) return undefined;
    const tag = app.mode.trading === "paper" ? " [PAPER]" : "";
    const list = portfolio.positions.map((p) => `  ${p.symbol}: ${p.qty.toFixed(6)}, worth about ${money(p.qty * (portfolio.prices[p.symbol] ?? p.entryPrice), app.services.quote)}`);
    return [`Full stop${tag}: pause trading AND close ${portfolio.positions.length} open position(s) at market?`, ...list].join("\n");
  },
  async run({ all }, { app, user }) {
    const fresh = await app.services.state.pause("manual", `${user.name} (${user.platform})`);
    if (!all) {
      if (!fresh) {
        const s = await app.services.state.pauseState();
        return { text: `Trading was already paused (${s.reason}, by ${s.by ?? "the agent"}). /resume lifts it.` };
      }
      await app.notifier.notify({ type: "paused", by: user.name }, user);
      return { text: "Trading paused: no new decisions or orders. Stop loss and take profit are still watched. /resume to continue." };
    }
    const closed = await closeEverything(app, user);
    if (fresh) await app.notifier.notify({ type: "paused", by: user.name, fullStop: { closed: closed.length } }, user);
    return {
      text: [
        `Full stop: trading ${fresh ? "paused" : "stays paused"}${closed.length ? `, and positions closed:` : "; there were no open positions."}`,
        ...closed,
        "/resume to trade again.",
      ].join("\n"),
    };
  },
});

export const resume = defineCommand<undefined, Needs<"notifier", "state" | "balance">>({
  name: "resume",
  summary: "Lift a pause",
  usage: "/resume",
  minRole: "trader",
  mutates: true,
  parse: noArgs("/resume"),
  async run(_, { app, user }) {
    const s = await app.services.state.pauseState();
    if (!s.paused) return { text: "Trading is not paused." };
    if (s.reason === "critical-balance") {
      const b = await app.services.balance.getBalance();
      if (levelOf(b, app.services.balance.rules) === "critical") {
        return {
          text: `Trading stays paused: the USDC balance ${usdc(b, 2)} is under the critical level $${app.services.balance.rules.criticalBalance.toFixed(2)}. /refill first.`,
          error: true,
        };
      }
    }
    await app.services.state.resume();
    await app.notifier.notify({ type: "resumed", by: user.name, after: "command" }, user);
    return { text: "Trading resumed." };
  },
});
