import { randomUUID } from "node:crypto";
import { money, price } from "../src/chat/format.js";
import { manualTradeLine } from "../src/chat/notices.js";
import { normalizeSymbol } from "../src/market/replay.js";
import { cancelOpenOrder, placeReduce } from "../src/orders/orderPath.js";
import { moveStop, moveTakeProfit, parsePrice } from "../src/risk/exitMoves.js";
import { tellOpenOrderEvents } from "../jobs/openOrders.js";
import { defineCommand, noArgs, type Needs } from "./types.js";

const clock = (t: number) => new Date(t).toISOString().slice(0, 16).replace("T", " ") + " UTC";

/** "BTC" -> "BTC/USDT" among the watched symbols, or a message saying which are watched. */
function symbolOf(raw: string | undefined, symbols: string[], usage: string): { ok: true; value: string } | { ok: false; error: string } {
  const watched = symbols.map((s) => s.split("/")[0]).join(", ");
  const symbol = raw ? normalizeSymbol(raw, symbols) : undefined;
  if (!symbol) return { ok: false, error: `Unknown symbol "${(raw ?? "").slice(0, 20)}". Usage: ${usage}. Watched symbols: ${watched}.` };
  return { ok: true, value: symbol };
}

export const orders = defineCommand<undefined, Needs<"mode", "openOrders" | "market" | "quote">>({
  name: "orders",
  summary: "Open limit orders with their ids (cancel one with /cancel_order ID)",
  usage: "/orders",
  minRole: "viewer",
  parse: noArgs("/orders"),
  async run(_, { app }) {
    const s = app.services;
    const tag = app.mode.trading === "paper" ? " [PAPER]" : "";
    const open = await s.openOrders.all();
    if (open.length === 0) return { text: `No open orders${tag}. /trade buy BTC 50 @ 95000 places a limit order.` };
    const lines = [`Open orders${tag}:`];
    for (const o of open) {
      const base = o.symbol.split("/")[0];
      const last = await s.market.lastPrice(o.symbol).catch(() => 0);
      const away = last > 0 ? ` (price now ${price(last)}, ${(((o.limitPrice - last) / last) * 100).toFixed(2)}%)` : "";
      const filled = o.filledQty > 0 ? `, ${o.filledQty.toFixed(6)} filled` : "";
      lines.push(`  ${o.id}  ${o.side.toUpperCase()} ${o.qty.toFixed(6)} ${base} @ ${price(o.limitPrice)} = ${money(o.qty * o.limitPrice, s.quote)}${away}${filled} · since ${clock(o.placedAt)} · ${o.origin}`);
    }
    lines.push("/cancel_order ID cancels one.");
    return { text: lines.join("\n") };
  },
});

const cancelUsage = "/cancel_order ID";

export const cancelOrder = defineCommand<string, Needs<"mode" | "notifier", "openOrders" | "exchange" | "portfolio" | "tradeLock" | "quote">>({
  name: "cancel_order",
  summary: "Cancel an open limit order by the id /orders shows",
  usage: cancelUsage,
  example: "/cancel_order a3f91c",
  minRole: "trader",
  mutates: true,
  remote: true,
  options: [{ name: "id", description: "The order's id, as /orders shows it", kind: "string", required: true }],
  parse(args) {
    const id = args[0];
    if (args.length !== 1 || !id || !/^[0-9a-f]{6}$/i.test(id)) return { ok: false, error: `Usage: ${cancelUsage}, with the six-character id /orders shows, e.g. /cancel_order a3f91c.` };
    return { ok: true, value: id.toLowerCase() };
  },
  async run(id, { app }) {
    const s = app.services;
    const tag = app.mode.trading === "paper" ? " [PAPER]" : "";
    return s.tradeLock.run(async () => {
      const entry = await s.openOrders.byId(id);
      if (!entry) return { text: `No open order with id ${id}: nothing was cancelled. /orders lists the open ones.`, error: true };
      const { order, events } = await cancelOpenOrder(s, entry);
      await tellOpenOrderEvents(app, events.filter((e) => e.kind === "filled"));
      const base = entry.symbol.split("/")[0];
      const what = `limit ${entry.side.toUpperCase()} ${entry.qty.toFixed(6)} ${base} @ ${price(entry.limitPrice)} (order ${id})`;
      if (order?.status === "filled") return { text: `The ${what} had filled before the cancel reached it: it is booked${tag}.` };
      const part = order && order.filledQty > 0 ? ` ${order.filledQty.toFixed(6)} ${base} had filled and is booked.` : "";
      return { text: `Cancelled the ${what}${tag}.${part} Its funds are free again.` };
    });
  },
});

type ExitHost = Needs<"symbols" | "notifier", "portfolio" | "market" | "limits" | "tradeLock">;

function exitCommand(kind: "stop" | "tp") {
  const usage = kind === "stop" ? "/stop SYMBOL PRICE" : "/tp SYMBOL PRICE";
  const what = kind === "stop" ? "stop loss" : "take profit";
  return defineCommand<{ symbol: string; level: number }, ExitHost>({
    name: kind,
    summary: kind === "stop" ? "Move a position's stop loss (below the price, within the widest stop allowed)" : "Move a position's take profit (above the price)",
    usage,
    example: kind === "stop" ? "/stop BTC 95000" : "/tp BTC 104000",
    minRole: "trader",
    mutates: true,
    remote: true,
    options: [
      { name: "symbol", description: "The position's market", kind: "symbol", required: true },
      { name: "price", description: `The new ${what} price`, kind: "string", required: true },
    ],
    parse(args, { app }) {
      if (args.length !== 2) return { ok: false, error: `Usage: ${usage}, e.g. ${kind === "stop" ? "/stop BTC 95000" : "/tp BTC 104000"}.` };
      const symbol = symbolOf(args[0], app.symbols, usage);
      if (!symbol.ok) return symbol;
      const level = parsePrice(args[1]!);
      if (level === undefined || !(level > 0)) return { ok: false, error: `The ${what} must be a price above 0, not "${args[1]!.slice(0, 20)}". Usage: ${usage}.` };
      return { ok: true, value: { symbol: symbol.value, level } };
    },
    async run({ symbol, level }, { app, user }) {
      const s = app.services;
      return s.tradeLock.run(async () => {
        const position = await s.portfolio.position(symbol);
        if (!position) return { text: `There is no open ${symbol} position: no ${what} to move. /positions lists them.`, error: true };
        const last = await s.market.lastPrice(symbol);
        const move = kind === "stop" ? moveStop(position, level, last, s.limits) : moveTakeProfit(position, level, last);
        if (!move.ok) return { text: `${move.error} Nothing was changed.`, error: true };
        await s.portfolio.updateExits(symbol, move.change);
        const from = kind === "stop" ? position.stopLoss : position.takeProfit;
        const text = `${symbol} ${what} moved from ${price(from)} to ${price(level)} by ${user.name}: ${move.note}`;
        await app.notifier.notify({ kind: "info", text }, user);
        return { text };
      });
    },
  });
}

export const stop = exitCommand("stop");
export const takeProfit = exitCommand("tp");

const closeUsage = "/close SYMBOL";
type CloseHost = Needs<"symbols" | "mode" | "notifier" | "config", "portfolio" | "market" | "exchange" | "tradeLock" | "clock" | "pending" | "openOrders" | "quote">;

export const close = defineCommand<string, CloseHost>({
  name: "close",
  summary: "Sell a whole position now, at market (large ones ask for a confirmation)",
  usage: closeUsage,
  example: "/close BTC",
  minRole: "trader",
  mutates: true,
  remote: true,
  options: [{ name: "symbol", description: "The position's market", kind: "symbol", required: true }],
  parse(args, { app }) {
    if (args.length !== 1) return { ok: false, error: `Usage: ${closeUsage}, e.g. /close BTC.` };
    return symbolOf(args[0], app.symbols, closeUsage);
  },
  async confirm(symbol, { app }) {
    const held = await app.services.portfolio.position(symbol);
    if (!held) return undefined;
    const last = await app.services.market.lastPrice(symbol);
    const notional = held.qty * last;
    if (notional <= app.config.chat.tradeConfirmAbove) return undefined;
    const tag = app.mode.trading === "paper" ? " [PAPER]" : " [LIVE: real money]";
    return `Close the whole ${symbol} position (${held.qty.toFixed(6)}, about ${money(notional, app.services.quote)}) at about ${price(last)}${tag}? It is above the ${money(app.config.chat.tradeConfirmAbove, app.services.quote)} that needs a confirmation.`;
  },
  async run(symbol, { app, user, confirmationId, requestId }) {
    const s = app.services;
    const tag = app.mode.trading === "paper" ? " [PAPER]" : "";
    // Keyed on the confirmation (or the request): run twice, it finds its first order.
    const clientOrderId = `close:${confirmationId ?? requestId ?? randomUUID()}`;
    return s.tradeLock.run(async () => {
      const position = await s.portfolio.position(symbol);
      const earlier = position ? undefined : await s.exchange.findOrder(clientOrderId, symbol);
      if (!position && !earlier) return { text: `There is no open ${symbol} position to close. /positions lists them.`, error: true };
      // A sell that only reduces risk: no entry rule, pause or /stopentry blocks it, and it cancels our resting sells first.
      const out = await placeReduce(s, { clientOrderId, symbol, qty: position?.qty ?? earlier!.qty, closing: true, origin: `/close ${symbol.split("/")[0]} by ${user.name}` });
      if (out.pending) {
        if (out.pending.sentNow) await app.notifier.notify({ type: "order-pending", symbol, side: "sell", origin: `/close by ${user.name}`, reason: out.pending.entry.reason ?? "not confirmed", exchange: s.exchange.name }, user);
        return { text: `The sell of ${symbol} was sent to ${s.exchange.name} but not confirmed: ${out.pending.entry.reason ?? "no answer"}.${tag} It is looked up by its client order id and you will be told; nothing is sent again for it.` };
      }
      const order = out.order;
      if (!order) return { text: `Not closed${tag}: ${out.risk.message}`, error: true };
      if (order.status === "rejected") return { text: `Close REJECTED by the exchange: ${order.reason ?? "no reason given"}`, error: true };
      const paper = app.mode.trading === "paper";
      const lines = [`Closed ${symbol}: ${manualTradeLine(order, s.quote, paper)}`, `Realized P&L ${money(out.realizedPnl, s.quote)}`];
      if (out.capped) lines.push(`The books held ${out.capped.booked}, the account ${out.capped.held}: sold what the account held.`);
      if (!out.found) await app.notifier.notify({ type: "manual-trade", order, by: user.name, quote: s.quote, paper }, user);
      return { text: lines.join("\n") };
    });
  },
});

const entryUsage = "/stopentry [off]";

export const stopEntry = defineCommand<{ off: boolean }, Needs<"notifier", "state" | "clock">>({
  name: "stopentry",
  summary: "Stop new entries (buys) while exits, stops and take-profits keep working; /stopentry off lifts it",
  usage: entryUsage,
  example: "/stopentry",
  minRole: "trader",
  mutates: true,
  options: [{ name: "switch", description: "off: allow new entries again", kind: "choice", choices: ["off"], required: false }],
  parse(args) {
    if (args.length === 0) return { ok: true, value: { off: false } };
    if (args.length === 1 && args[0]!.toLowerCase() === "off") return { ok: true, value: { off: true } };
    return { ok: false, error: `Usage: ${entryUsage}: /stopentry stops new buys, /stopentry off allows them again.` };
  },
  async run({ off }, { app, user }) {
    const state = app.services.state;
    if (off) {
      if (!(await state.allowEntries())) return { text: "New entries are not stopped." };
      await app.notifier.notify({ kind: "info", text: `New entries allowed again by ${user.name}.` }, user);
      return { text: "New entries allowed again: buys (decisions, /trade, limit orders) go through the risk rules as before." };
    }
    if (!(await state.stopEntries(`${user.name} (${user.platform})`, app.services.clock()))) {
      const now = await state.entryStop();
      return { text: `New entries were already stopped (by ${now.by ?? "someone"}). /stopentry off lifts it.` };
    }
    await app.notifier.notify({ kind: "info", text: `New entries stopped by ${user.name}: no new buys; open positions keep their stops and take-profits.` }, user);
    return {
      text: "New entries stopped: no decision, /trade or limit order buys. Sells, /close, stop losses and take profits keep working; open limit orders stay open (/cancel_order to cancel). /stopentry off lifts it.",
    };
  },
});
