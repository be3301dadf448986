import { randomUUID } from "node:crypto";
import { money, price } from "../src/chat/format.js";
import { loadPortfolio, placeEntry } from "../src/orders/orderPath.js";
import { normalizeSymbol } from "../src/market/replay.js";
import { equity } from "../src/portfolio/valuation.js";
import { manualTradeLine } from "../src/chat/notices.js";
import { parsePrice } from "../src/risk/exitMoves.js";
import { defineCommand, type Needs } from "./types.js";

interface TradeArgs {
  side: "buy" | "sell";
  symbol: string;
  /** Quote currency (USDT); "all" sells the whole position. */
  amount: number | "all";
  /** A limit order at this price; absent: a market order. */
  limit?: number;
}

const usage = "/trade buy|sell SYMBOL AMOUNT [@ PRICE]";
const MAX_TRADE = 1_000_000;

/** What a trade is worth now, in USDT (for the confirmation threshold). */
type TradeHost = Needs<"symbols" | "config" | "mode" | "notifier", "market" | "portfolio" | "exchange" | "state" | "limits" | "quote" | "clock" | "tradeLock" | "openOrders">;

async function notionalOf(args: TradeArgs, app: TradeHost): Promise<{ notional: number; last: number }> {
  const last = await app.services.market.lastPrice(args.symbol);
  if (args.amount !== "all") return { notional: args.amount, last };
  if (args.limit !== undefined) return { notional: ((await app.services.portfolio.position(args.symbol))?.qty ?? 0) * Math.max(args.limit, last), last };
  const held = await app.services.portfolio.position(args.symbol);
  return { notional: (held?.qty ?? 0) * last, last };
}

/**
 * A manual trade, in USDT. It goes through the same hard risk rules as the agent's decisions, under
 * the same trading lock; above TRADE_CONFIRM_ABOVE_USDT it asks for a confirmation first.
 */
export const trade = defineCommand<TradeArgs, TradeHost>({
  name: "trade",
  summary: "Buy or sell in USDT at market, or at a limit price with @ PRICE, within the risk limits (large trades ask for a confirmation)",
  usage,
  example: "/trade buy BTC 50",
  minRole: "trader",
  mutates: true,
  remote: true,
  options: [
    { name: "side", description: "buy or sell", kind: "choice", choices: ["buy", "sell"], required: true },
    { name: "symbol", description: "The market", kind: "symbol", required: true },
    { name: "amount", description: "USDT to buy or sell, or all (sell only)", kind: "string", required: true },
    { name: "price", description: "A limit price: the order rests until the market reaches it (empty: at market)", kind: "string", required: false },
  ],
  parse(args, { app }) {
    const watched = app.symbols.map((s) => s.split("/")[0]).join(", ");
    const help = `Usage: ${usage}, e.g. /trade buy BTC 50 (at market), /trade buy BTC 50 @ 95000 (a limit order) or /trade sell ETH all. Watched symbols: ${watched}.`;
    // The limit price: "@ 95000", "@95000", or a fourth word (a slash command's price option).
    const tail = args.slice(3);
    if (tail[0] === "@") tail.shift();
    if (args.length < 3 || tail.length > 1) return { ok: false, error: help };
    if (args.length > 3 && tail.length === 0) return { ok: false, error: `"@" needs a limit price after it, e.g. @ 95000. Nothing was placed. ${help}` };
    let limit: number | undefined;
    if (tail.length === 1) {
      limit = parsePrice(tail[0]!);
      const shown = tail[0]!.replace(/^@/, "").slice(0, 20);
      if (limit === undefined) return { ok: false, error: `The limit price "${shown}" is not a number. It must be a price above 0, e.g. @ 95000. Nothing was placed. ${help}` };
      if (!(limit > 0)) return { ok: false, error: `The limit price must be above 0, not ${shown}. Nothing was placed. ${help}` };
    }
    const withLimit = limit !== undefined ? { limit } : {};
    const side = args[0]!.toLowerCase();
    if (side !== "buy" && side !== "sell") return { ok: false, error: `"${args[0]!.slice(0, 10)}" is not buy or sell. ${help}` };
    const symbol = normalizeSymbol(args[1]!, app.symbols);
    if (!symbol) return { ok: false, error: `Unknown symbol "${args[1]!.slice(0, 20)}". ${help}` };
    const raw = args[2]!.toLowerCase();
    if (raw === "all") {
      if (side === "buy") return { ok: false, error: `"all" only works for a sell. ${help}` };
      return { ok: true, value: { side, symbol, amount: "all", ...withLimit } };
    }
    if (!/^\d+(\.\d{1,8})?$/.test(raw)) return { ok: false, error: `"${args[2]!.slice(0, 20)}" is not an amount in USDT. ${help}` };
    const amount = Number(raw);
    if (amount <= 0 || amount > MAX_TRADE) return { ok: false, error: `The amount must be above 0 and at most ${MAX_TRADE} USDT. ${help}` };
    return { ok: true, value: { side, symbol, amount, ...withLimit } };
  },
  async confirm(args, { app }) {
    const { notional, last } = await notionalOf(args, app);
    if (notional <= app.config.chat.tradeConfirmAbove) return undefined;
    const tag = app.mode.trading === "paper" ? " [PAPER]" : " [LIVE: real money]";
    const what = args.amount === "all" ? `the whole ${args.symbol} position (about ${money(notional, app.services.quote)})` : `${money(notional, app.services.quote)} of ${args.symbol}`;
    const at = args.limit !== undefined ? `with a limit order at ${price(args.limit)} (the price now: ${price(last)})` : `at about ${price(last)}`;
    return `${args.side === "buy" ? "Buy" : "Sell"} ${what} ${at}${tag}? It is above the ${money(app.config.chat.tradeConfirmAbove, app.services.quote)} that needs a confirmation.`;
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
      const limitPrice = args.limit;
      // The same path as the agent's own decisions: every risk rule with its context (cool-down,
      // VaR, daily loss, exposure), the same exits with the trailing stop, the same fill booking.
      const origin = `/trade ${args.side} ${args.symbol.split("/")[0]} ${args.amount}${limitPrice !== undefined ? ` @ ${limitPrice}` : ""} by ${user.name}`;
      const out = await placeEntry(s, { clientOrderId, origin, ...(limitPrice !== undefined ? { limitPrice } : {}), decision: { symbol: args.symbol, action, sizePct, confidence: 1, reasons: [`manual trade by ${user.name}`] } });
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
      const base = args.symbol.split("/")[0];
      if (out.resting) {
        const r = out.resting;
        const lines = [
          `Limit ${r.side.toUpperCase()} ${r.qty.toFixed(6)} ${base} @ ${price(r.limitPrice)} placed, order ${r.id}${tag}. The price now is ${price(last)}.`,
          ...(order.filledQty > 0 ? [`Filled so far: ${manualTradeLine(order, s.quote, paper)}`] : []),
          r.side === "buy"
            ? `It fills when the price falls to ${price(r.limitPrice)}; until then its ${money((r.qty - r.filledQty) * r.limitPrice, s.quote)} is reserved (cash, position size and exposure).`
            : `It fills when the price rises to ${price(r.limitPrice)}; its ${base} is locked until then (a stop loss or /close cancels it first).`,
          ...(out.risk.outcome === "resized" ? [`Resized by the risk rules: ${out.risk.message}`] : []),
          ...(out.exits ? [`Once filled: stop loss ${price(out.exits.stopLoss)} · take profit ${price(out.exits.takeProfit)}${out.exits.trailingStopPct ? ` · trailing ${out.exits.trailingStopPct}%` : ""}`] : []),
          `/orders lists it; /cancel_order ${r.id} cancels it.`,
        ];
        return { text: lines.join("\n") };
      }
      const lines = [manualTradeLine(order, s.quote, paper)];
      // A limit the market had already crossed takes the book at once, never at worse than its limit.
      if (limitPrice !== undefined) lines.push(`The limit ${price(limitPrice)} was already ${order.side === "buy" ? "at or above" : "at or below"} the price ${price(last)}: it filled at once at the market's price, never worse than the limit.`);
      if (out.risk.outcome === "resized") lines.push(`Resized by the risk rules: ${out.risk.message}`);
      if (out.exits) lines.push(`Stop loss ${price(out.exits.stopLoss)} · take profit ${price(out.exits.takeProfit)}${out.exits.trailingStopPct ? ` · trailing ${out.exits.trailingStopPct}%` : ""}`);
      if (order.side === "sell") lines.push(`Realized P&L ${money(out.realizedPnl, s.quote)}`);
      await app.notifier.notify({ type: "manual-trade", order, by: user.name, quote: s.quote, paper }, user);
      return { text: lines.join("\n") };
    });
  },
});
