import { randomUUID } from "node:crypto";
import { money, price } from "../src/chat/format.js";
import { loadPortfolio, placeEntry } from "../src/orders/orderPath.js";
import { normalizeSymbol } from "../src/market/replay.js";
import { equity } from "../src/portfolio/valuation.js";
import { manualTradeLine } from "../src/chat/notices.js";
import { defineCommand, type Needs } from "./types.js";

interface TradeArgs {
  side: "buy" | "sell";
  symbol: string;
  /** Quote currency (USDT); "all" sells the whole position. */
  amount: number | "all";
}

const usage = "/trade buy|sell SYMBOL AMOUNT";
const MAX_TRADE = 1_000_000;

/** What a trade is worth now, in USDT (for the confirmation threshold). */
type TradeHost = Needs<"symbols" | "config" | "mode" | "notifier", "market" | "portfolio" | "exchange" | "state" | "limits" | "quote" | "clock" | "tradeLock">;

async function notionalOf(args: TradeArgs, app: TradeHost): Promise<{ notional: number; last: number }> {
  const last = await app.services.market.lastPrice(args.symbol);
  if (args.amount !== "all") return { notional: args.amount, last };
  const held = await app.services.portfolio.position(args.symbol);
  return { notional: (held?.qty ?? 0) * last, last };
}

/**
 * A manual trade, in USDT. It goes through the same hard risk rules as the agent's decisions, under
 * the same trading lock; above TRADE_CONFIRM_ABOVE_USDT it asks for a confirmation first.
 */
export const trade = defineCommand<TradeArgs, TradeHost>({
  name: "trade",
  summary: "Buy or sell now, in USDT, within the risk limits (large trades ask for a confirmation)",
  usage,
  example: "/trade buy BTC 50",
  minRole: "trader",
  mutates: true,
  remote: true,
  options: [
    { name: "side", description: "buy or sell", kind: "choice", choices: ["buy", "sell"], required: true },
    { name: "symbol", description: "The market", kind: "symbol", required: true },
    { name: "amount", description: "USDT to buy or sell, or all (sell only)", kind: "string", required: true },
  ],
  parse(args, { app }) {
    const watched = app.symbols.map((s) => s.split("/")[0]).join(", ");
    const help = `Usage: ${usage}, e.g. /trade buy BTC 50 or /trade sell ETH all. Watched symbols: ${watched}.`;
    if (args.length !== 3) return { ok: false, error: help };
    const side = args[0]!.toLowerCase();
    if (side !== "buy" && side !== "sell") return { ok: false, error: `"${args[0]!.slice(0, 10)}" is not buy or sell. ${help}` };
    const symbol = normalizeSymbol(args[1]!, app.symbols);
    if (!symbol) return { ok: false, error: `Unknown symbol "${args[1]!.slice(0, 20)}". ${help}` };
    const raw = args[2]!.toLowerCase();
    if (raw === "all") {
      if (side === "buy") return { ok: false, error: `"all" only works for a sell. ${help}` };
      return { ok: true, value: { side, symbol, amount: "all" } };
    }
    if (!/^\d+(\.\d{1,8})?$/.test(raw)) return { ok: false, error: `"${args[2]!.slice(0, 20)}" is not an amount in USDT. ${help}` };
    const amount = Number(raw);
    if (amount <= 0 || amount > MAX_TRADE) return { ok: false, error: `The amount must be above 0 and at most ${MAX_TRADE} USDT. ${help}` };
    return { ok: true, value: { side, symbol, amount } };
  },
  async confirm(args, { app }) {
    const { notional, last } = await notionalOf(args, app);
    if (notional <= app.config.chat.tradeConfirmAbove) return undefined;
    const tag = app.mode.trading === "paper" ? " [PAPER]" : " [LIVE: real money]";
    const what = args.amount === "all" ? `the whole ${args.symbol} position (about ${money(notional, app.services.quote)})` : `${money(notional, app.services.quote)} of ${args.symbol}`;
    return `${args.side === "buy" ? "Buy" : "Sell"} ${what} at about ${price(last)}${tag}? It is above the ${money(app.config.chat.tradeConfirmAbove, app.services.quote)} that needs a confirmation.`;
  },
  async run(args, { app, user, confirmationId, requestId }) {
    const s = app.services;
    const tag = app.mode.trading === "paper" ? " [PAPER]" : "";
    // A confirmed trade is keyed on its confirmation, so running it twice finds the first order.
    const clientOrderId = `manual:${confirmationId ?? requestId ?? randomUUID()}`;
    return s.tradeLock.run(async () => {
      const portfolio = await loadPortfolio(s);
      const last = await s.market.lastPrice(args.symbol);
      const eq = equity({ ...portfolio, prices: { ...portfolio.prices, [args.symbol]: last } });
      const action = args.amount === "all" ? "close" : args.side;
      const sizePct = args.amount === "all" ? 0 : (args.amount / eq) * 100;
      // The same path as the agent's own decisions: every risk rule with its context (cool-down,
      // VaR, daily loss, exposure), the same exits with the trailing stop, the same fill booking.
      const origin = `/trade ${args.side} ${args.symbol.split("/")[0]} ${args.amount} by ${user.name}`;
      const out = await placeEntry(s, { clientOrderId, origin, decision: { symbol: args.symbol, action, sizePct, confidence: 1, reasons: [`manual trade by ${user.name}`] } });
      if (out.pending) {
        // It may have filled: never "failed". The journal's lookups tell everyone what became of it.
        const p = out.pending.entry;
        const base = args.symbol.split("/")[0];
        if (out.pending.sentNow) await app.notifier.notify({ type: "order-pending", symbol: p.symbol, side: p.side, origin, reason: p.reason ?? "not confirmed", exchange: s.exchange.name }, user);
        return {
          text: [
            `Order ${p.side.toUpperCase()} ${p.qty.toFixed(6)} ${base} sent to ${s.exchange.name}, but the exchange did not confirm it: ${p.reason ?? "no answer"}.${tag}`,
            "Its outcome is not known yet: it is being looked up by its client order id, and you will be told what happened (booked with its stop loss if it filled). Nothing is sent again for it meanwhile.",
          ].join("\n"),
        };
      }
      const order = out.order;
      if (!order) return { text: `No order${tag}: ${out.risk.message}`, error: true };
      if (order.status === "rejected") return { text: `Order REJECTED by the exchange: ${order.reason ?? "no reason given"}`, error: true };
      const paper = app.mode.trading === "paper";
      const lines = [manualTradeLine(order, s.quote, paper)];
      if (out.risk.outcome === "resized") lines.push(`Resized by the risk rules: ${out.risk.message}`);
      if (out.exits) lines.push(`Stop loss ${price(out.exits.stopLoss)} · take profit ${price(out.exits.takeProfit)}${out.exits.trailingStopPct ? ` · trailing ${out.exits.trailingStopPct}%` : ""}`);
      if (order.side === "sell") lines.push(`Realized P&L ${money(out.realizedPnl, s.quote)}`);
      await app.notifier.notify({ type: "manual-trade", order, by: user.name, quote: s.quote, paper }, user);
      return { text: lines.join("\n") };
    });
  },
});
