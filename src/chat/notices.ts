// What the agent tells the team, as data. Jobs, commands and the order path say what happened
// (a trade, an exit, a low balance); this module turns that into a kind and plain text once, and
// each platform formats from the same data (headline in bold, the paper tag, the silent kinds)
// instead of re-reading prose.
import type { NOTICE_KINDS } from "../config/config.js";
import type { Order, OrderSide } from "../domain/types.js";
import type { PendingExits } from "../orders/pendingOrders.js";
import type { DecisionRecord } from "../ledger/ledger.js";
import type { Drift } from "../portfolio/reconcile.js";
import type { ChainDrift } from "../chain/usdcTransfers.js";
import type { Breach, StopHit } from "../risk/rules.js";
import { formatDecision, money, price, usdc } from "./format.js";
import { PLATFORM_LABEL, type ChatPlatformName, type ReplyButton, type ReplyImage } from "./types.js";

export type NoticeKind = (typeof NOTICE_KINDS)[number];

/** How each kind of notice is headed in chat. */
export const NOTICE_LABEL: Record<NoticeKind, string> = {
  trade: "Trade",
  decision: "Decision",
  alert: "⚠️ Alert",
  critical: "🚨 CRITICAL",
  report: "Report",
  error: "Error",
  info: "Info",
};

/** A position the full stop closed, or could not close. */
export type ClosedByFullStop =
  | { symbol: string; qty: number; avgPrice: number; pnl: number }
  | { symbol: string; refused: string }
  /** The sell was sent and not confirmed: it is being looked up. */
  | { symbol: string; pending: string };

export type NoticeEvent =
  | { type: "decision"; record: DecisionRecord; via: "scheduled" | "approved"; paper: boolean }
  | { type: "approval-request"; prompt: string; expiresAt: number }
  /** APPROVALS=2: an admin asked for something another admin must approve. */
  | { type: "second-approval"; prompt: string; asker: string; expiresAt: number }
  | { type: "manual-trade"; order: Pick<Order, "side" | "symbol" | "filledQty" | "avgPrice" | "fee" | "status">; by: string; quote: string; paper: boolean }
  | { type: "full-stop"; by: string; closed: ClosedByFullStop[]; quote: string; paper: boolean }
  | { type: "paused"; by: string; fullStop?: { closed: number } }
  | { type: "resumed"; by: string; after: "command" | "refill" }
  | { type: "balance-restored"; balanceMicro: number }
  | { type: "refilled"; amountMicro: number; balanceMicro: number }
  | { type: "balance-low"; balanceMicro: number; min: number; critical: number }
  | { type: "balance-critical"; balanceMicro: number; critical: number; refillRefused?: string }
  | { type: "exit"; symbol: string; hit: StopHit["hit"]; level: number; fill: number; qty: number; pnl: number; gapped: boolean; quote: string; paper: boolean }
  | { type: "exit-failed"; symbol: string; hit: StopHit["hit"]; reason: string }
  | { type: "exit-refused"; symbol: string; hit: StopHit["hit"]; reason: string; booked: number; held: number }
  /** An order was sent and the exchange did not confirm it: its outcome is not known yet, and it is being looked up. */
  | { type: "order-pending"; symbol: string; side: OrderSide; origin: string; reason: string; exchange: string }
  /**
   * What became of an order whose outcome was not known: found filled and booked (with its exits),
   * refused, or never placed. `via`: found by its own lookups, or proven by the reconciliation.
   */
  | {
      type: "order-resolved";
      outcome: "filled" | "rejected" | "absent";
      via: "lookup" | "reconciliation";
      symbol: string;
      side: OrderSide;
      origin: string;
      order?: Pick<Order, "filledQty" | "avgPrice" | "fee" | "status" | "reason">;
      exits?: PendingExits;
      pnl?: number;
      lookups?: number;
      quote: string;
      paper: boolean;
    }
  /** A resting limit order filled (in full or in part) and was booked, with the exits of a buy; or it went without filling. */
  | {
      type: "limit-order";
      outcome: "filled" | "gone";
      id: string;
      symbol: string;
      side: OrderSide;
      limitPrice: number;
      origin: string;
      order?: Pick<Order, "filledQty" | "avgPrice" | "fee" | "status" | "reason">;
      /** What filled since it was last told. */
      newQty?: number;
      exits?: PendingExits;
      pnl?: number;
      quote: string;
      paper: boolean;
    }
  /** Still not known after many lookups: the team should look at the exchange (told once). */
  | { type: "order-overdue"; symbol: string; side: OrderSide; origin: string; lookups: number; sentAt: number; reason: string }
  | { type: "limit-breach"; breach: Breach }
  | { type: "reconciliation"; exchange: string; startup: boolean; drifts: Drift[] }
  | { type: "reconciled"; exchange: string }
  | { type: "market-gap"; symbol: string; missing: number; after: number }
  | { type: "model-alert"; message: string }
  | { type: "chain-drift"; network: string; drifts: ChainDrift[] }
  | { type: "chain-reconciled"; network: string }
  | { type: "report"; daily: boolean; text: string }
  /** A chat platform has not worked for longer than its threshold (polling lost, gateway closed). */
  | { type: "chat-down"; platform: ChatPlatformName; since: number; reason: string }
  | { type: "chat-up"; platform: ChatPlatformName; since: number; downMs: number }
  /** A platform works, but part of it does not (a server without commands, an alert channel it cannot post in). */
  | { type: "chat-problem"; platform: ChatPlatformName; problem: string }
  /** A chat got a new id (a Telegram group upgraded to a supergroup): posts follow it; `hint` says what to change. */
  | { type: "chat-moved"; platform: ChatPlatformName; from: string; to: string; hint?: string };


/** A notice in words only, for messages with no shape of their own. */
export interface PlainNotice {
  kind: NoticeKind;
  text: string;
}

/** What goes with a notice besides its content. */
export interface NoticeExtras {
  buttons?: ReplyButton[][];
  image?: ReplyImage;
  /** The pending action the buttons answer: each sink records where it posted them. */
  confirmationId?: string;
  /** Delivered long after it was raised (no chat frontend was up then): the text says so, and platforms may show more. */
  late?: { raisedAt: number; delayMs: number };
}

export type NoticeInput = (NoticeEvent | PlainNotice) & NoticeExtras;

/** A notice as the sinks receive it: the data, its kind, and its plain text. */
export interface Notice extends NoticeExtras {
  event?: NoticeEvent;
  kind: NoticeKind;
  text: string;
  /** A trade made with simulated money: platforms tag it. */
  paper?: boolean;
}

const paperTag = (paper: boolean) => (paper ? " [PAPER]" : "");
const clockTime = (t: number) => new Date(t).toISOString().slice(11, 19) + " UTC";
const exitName = (hit: StopHit["hit"]) => (hit === "stop-loss" ? "Stop loss" : "Take profit");

/** The line a manual trade is told by, in its reply and in the notice. */
export function manualTradeLine(o: Pick<Order, "side" | "symbol" | "filledQty" | "avgPrice" | "fee" | "status">, quote: string, paper: boolean): string {
  const base = o.symbol.split("/")[0];
  return `Manual ${o.side.toUpperCase()} ${o.filledQty.toFixed(6)} ${base} @ ${price(o.avgPrice)} = ${money(o.filledQty * o.avgPrice, quote)}, fee ${o.fee.toFixed(4)} (${o.status})${paperTag(paper)}`;
}

/** One line per position the full stop handled. */
export function fullStopLines(closed: ClosedByFullStop[], quote: string, paper: boolean): string[] {
  return closed.map((c) =>
    "refused" in c
      ? `  ${c.symbol}: NOT closed, ${c.refused}`
      : "pending" in c
        ? `  ${c.symbol}: sell sent, but not confirmed: ${c.pending}. Its outcome is being looked up and you will be told`
        : `  ${c.symbol}: sold ${c.qty.toFixed(6)} @ ${price(c.avgPrice)}, P&L ${money(c.pnl, quote)}${paperTag(paper)}`,
  );
}

export function kindOf(e: NoticeEvent): NoticeKind {
  switch (e.type) {
    case "decision":
      return e.record.outcome === "order" ? "trade" : e.record.outcome === "pending" ? "alert" : e.record.outcome === "failed" ? "error" : e.via === "approved" ? "trade" : "decision";
    case "approval-request":
      return "decision";
    case "second-approval":
      return "alert";
    case "manual-trade":
    case "full-stop":
      return "trade";
    case "exit":
      return e.gapped ? "alert" : "trade";
    case "order-resolved":
      return e.outcome === "filled" ? "trade" : "info";
    case "limit-order":
      return e.outcome === "filled" ? "trade" : "info";
    case "order-pending":
    case "order-overdue":
      return "alert";
    case "paused":
    case "resumed":
    case "balance-restored":
    case "refilled":
    case "reconciled":
    case "chain-reconciled":
    case "chat-up":
      return "info";
    case "balance-critical":
      return "critical";
    case "exit-failed":
      return "error";
    case "report":
      return "report";
    case "balance-low":
    case "exit-refused":
    case "limit-breach":
    case "reconciliation":
    case "chain-drift":
    case "market-gap":
    case "model-alert":
    case "chat-down":
    case "chat-problem":
    case "chat-moved":
      return "alert";
  }
}

export function textOf(e: NoticeEvent): string {
  switch (e.type) {
    case "decision":
      return `${e.via === "approved" ? "Approved" : "Scheduled"} decision\n${formatDecision(e.record, { paper: e.paper })}`;
    case "approval-request":
      return `${e.prompt}\nA trader can approve or reject until ${clockTime(e.expiresAt)}; unanswered, it is dropped.`;
    case "second-approval":
      return `${e.prompt}\nAsked by ${e.asker}: it needs a second admin. An admin other than ${e.asker} can approve or reject until ${clockTime(e.expiresAt)}; unanswered, it is cancelled.`;
    case "manual-trade":
      return `${manualTradeLine(e.order, e.quote, e.paper)} by ${e.by}`;
    case "full-stop":
      return `Full stop by ${e.by}: positions closed${paperTag(e.paper)}\n${fullStopLines(e.closed, e.quote, e.paper).join("\n")}`;
    case "paused":
      return e.fullStop
        ? `Full stop by ${e.by}: trading paused${e.fullStop.closed ? ` and ${e.fullStop.closed} position(s) closed` : ""}.`
        : `Trading paused by ${e.by}. Open positions stay monitored.`;
    case "resumed":
      return e.after === "refill" ? `Trading resumed after a refill by ${e.by}.` : `Trading resumed by ${e.by}.`;
    case "balance-restored":
      return `USDC balance back to ${usdc(e.balanceMicro, 2)}: trading resumed.`;
    case "refilled":
      return `Auto-refill: +${usdc(e.amountMicro, 2)} USDC, balance now ${usdc(e.balanceMicro, 2)}.`;
    case "balance-low":
      return `Low balance: USDC ${usdc(e.balanceMicro, 2)} is under $${e.min.toFixed(2)}. Trading pauses under $${e.critical.toFixed(2)}. /refill AMOUNT to top up.`;
    case "balance-critical":
      return `CRITICAL: USDC balance ${usdc(e.balanceMicro, 2)} is under $${e.critical.toFixed(2)}. Trading is paused; open positions stay monitored. /refill AMOUNT to continue.${e.refillRefused ? ` (Auto-refill refused: ${e.refillRefused})` : ""}`;
    case "exit": {
      const text = `${exitName(e.hit)} hit on ${e.symbol}${e.gapped ? " (the price gapped through the level)" : ""}: sold ${e.qty.toFixed(6)} @ ${price(e.fill)}, P&L ${money(e.pnl, e.quote)}${paperTag(e.paper)}`;
      if (!e.gapped) return text;
      const beyond = ((e.level - e.fill) / e.level) * 100;
      return `${text}\nRisk: the market broke through the stop at ${price(e.level)}; the exit filled ${beyond.toFixed(2)}% beyond it. Position closed; the loss counts toward today's limit.`;
    }
    case "exit-failed":
      return `Could not close ${e.symbol} at its ${e.hit}: ${e.reason}. The monitor tries again on its next run.`;
    case "exit-refused":
      return `${exitName(e.hit)} on ${e.symbol} NOT executed: ${e.reason}. Booked ${e.booked}, free on the account ${e.held}. The position stays open without its ${e.hit === "stop-loss" ? "stop" : "target"}; the monitor retries on every run.`;
    case "order-pending":
      return `${e.origin.charAt(0).toUpperCase()}${e.origin.slice(1)}: the ${e.side.toUpperCase()} order for ${e.symbol} was sent to ${e.exchange} but not confirmed: ${e.reason}. Its outcome is not known yet: it is being looked up by its client order id, and nothing is sent again for it meanwhile.`;
    case "order-resolved":
      return resolvedText(e);
    case "limit-order":
      return limitOrderText(e);
    case "order-overdue":
      return `The ${e.side.toUpperCase()} order for ${e.symbol} (${e.origin}), sent at ${clockTime(e.sentAt)}, is still not known after ${e.lookups} lookups (${e.reason}). It is still looked up; check it on the exchange. No new order for ${e.symbol} is placed until it is known.`;
    case "limit-breach":
      return `Risk limit broken by the market (${e.breach.rule}): ${e.breach.message}`;
    case "reconciliation":
      return [
        `Reconciliation${e.startup ? " at startup" : ""} with ${e.exchange}: ${e.drifts.length} difference(s) between the books and the exchange. Nothing was traded; check and correct:`,
        ...e.drifts.map((d) => `  • ${d.message}`),
      ].join("\n");
    case "reconciled":
      return `Reconciliation with ${e.exchange}: the books and the exchange agree again.`;
    case "market-gap":
      return `Market data gap: ${e.symbol} has no ${e.missing} candle(s) after ${new Date(e.after).toISOString().slice(0, 16)} UTC (the exchange produced none). Indicators run across the gap; nothing was filled in.`;
    case "model-alert":
      return e.message;
    case "chain-drift":
      return [
        `Chain reconciliation on ${e.network}: ${e.drifts.length} difference(s) between the books (payments, refills) and the wallet's USDC transfers. Nothing was changed; check and correct:`,
        ...e.drifts.map((d) => `  • ${d.of} ${d.kind}: ${d.message}`),
      ].join("\n");
    case "chain-reconciled":
      return `Chain reconciliation on ${e.network}: the books (payments, refills) and the wallet's USDC transfers agree again.`;
    case "chat-down":
      return `${PLATFORM_LABEL[e.platform]} is down since ${clockTime(e.since)}: ${e.reason}. Commands sent there go unanswered until it is back; it is retried on its own.`;
    case "chat-up":
      return `${PLATFORM_LABEL[e.platform]} is back, after ${Math.round(e.downMs / 1000)} s down (since ${clockTime(e.since)}).`;
    case "chat-problem":
      return `${PLATFORM_LABEL[e.platform]}: ${e.problem}`;
    case "chat-moved":
      return `${PLATFORM_LABEL[e.platform]}: chat ${e.from} became a supergroup with the new id ${e.to}. Messages for it go to the new chat from now on (kept across restarts).${e.hint ? ` ${e.hint}` : ""}`;
    case "report":
      return e.daily ? `Daily ${e.text.charAt(0).toLowerCase()}${e.text.slice(1)}` : e.text;
  }
}

function resolvedText(e: Extract<NoticeEvent, { type: "order-resolved" }>): string {
  const what = `the ${e.side.toUpperCase()} order for ${e.symbol} (${e.origin})`;
  const nothing = e.side === "buy" ? "nothing was bought" : "nothing was sold";
  if (e.outcome === "absent") return `Order not placed: ${what}, whose outcome was not known, is not on the exchange (asked ${e.lookups ?? 2} times): ${nothing}.`;
  if (e.outcome === "rejected") return `Order refused: ${what}, whose outcome was not known, was refused by the exchange (${e.order?.reason ?? "no reason given"}): ${nothing}.`;
  const o = e.order!;
  const base = e.symbol.split("/")[0];
  const head =
    e.via === "reconciliation"
      ? `Reconciliation: ${what} filled on the exchange and was missing from the books; it is booked now.`
      : `Order found: ${what}, whose outcome was not known, ${o.status === "filled" ? "FILLED" : "filled in part"}; it is booked now.`;
  const fill = `${e.side.toUpperCase()} ${o.filledQty.toFixed(6)} ${base} @ ${price(o.avgPrice)} = ${money(o.filledQty * o.avgPrice, e.quote)}, fee ${o.fee.toFixed(4)} (${o.status})${paperTag(e.paper)}`;
  const exits = e.exits ? `Stop loss ${price(e.exits.stopLoss)} · take profit ${price(e.exits.takeProfit)}${e.exits.trailingStopPct ? ` · trailing ${e.exits.trailingStopPct}%` : ""}${e.via === "reconciliation" ? " (the default levels, from its fill price)" : ""}` : undefined;
  const pnl = e.side === "sell" && e.pnl !== undefined ? `Realized P&L ${money(e.pnl, e.quote)}` : undefined;
  return [head, fill, ...(exits ? [exits] : []), ...(pnl ? [pnl] : [])].join("\n");
}

function limitOrderText(e: Extract<NoticeEvent, { type: "limit-order" }>): string {
  const base = e.symbol.split("/")[0];
  const what = `Limit ${e.side.toUpperCase()} ${base} @ ${price(e.limitPrice)} (order ${e.id}, ${e.origin})`;
  if (e.outcome === "gone") return `${what} is no longer open: ${e.order?.reason ?? "cancelled"}; ${e.order && e.order.filledQty > 0 ? `${e.order.filledQty.toFixed(6)} ${base} had filled and is booked` : "nothing filled"}.`;
  const o = e.order!;
  const full = o.status === "filled";
  const head = `${what} ${full ? "FILLED" : "filled in part"}${paperTag(e.paper)}`;
  const fill = `${e.side.toUpperCase()} ${(e.newQty ?? o.filledQty).toFixed(6)} ${base} @ ${price(o.avgPrice)} = ${money((e.newQty ?? o.filledQty) * o.avgPrice, e.quote)}, fee ${o.fee.toFixed(4)} (${o.status})`;
  const exits = e.exits ? `Stop loss ${price(e.exits.stopLoss)} · take profit ${price(e.exits.takeProfit)}${e.exits.trailingStopPct ? ` · trailing ${e.exits.trailingStopPct}%` : ""}` : undefined;
  const pnl = e.side === "sell" && e.pnl !== undefined ? `Realized P&L ${money(e.pnl, e.quote)}` : undefined;
  return [head, fill, ...(exits ? [exits] : []), ...(pnl ? [pnl] : [])].join("\n");
}

/** Whether a notice is about simulated money (decisions, trades and exits carry it). */
function paperOf(e: NoticeEvent): boolean | undefined {
  return "paper" in e ? e.paper : undefined;
}

/** The notice the sinks receive, from what the agent said. */
export function toNotice(input: NoticeInput): Notice {
  const { buttons, image, confirmationId, late } = input;
  const extras: NoticeExtras = { ...(buttons ? { buttons } : {}), ...(image ? { image } : {}), ...(confirmationId ? { confirmationId } : {}), ...(late ? { late } : {}) };
  const withLate = (text: string) => (late ? `${text}\n${lateLine(late)}` : text);
  if (!("type" in input)) return { kind: input.kind, text: withLate(input.text), ...extras };
  const { buttons: _b, image: _i, confirmationId: _c, late: _l, ...event } = input;
  const e = event as NoticeEvent;
  const paper = paperOf(e);
  return { event: e, kind: kindOf(e), text: withLate(textOf(e)), ...(paper !== undefined ? { paper } : {}), ...extras };
}

/** The marker of a late notice: when it was raised and how late it is, so nobody acts on it as news. */
export function lateLine(late: { raisedAt: number; delayMs: number }): string {
  const mins = late.delayMs / 60_000;
  const howLate = mins >= 90 ? `${(mins / 60).toFixed(1)} h` : mins >= 1 ? `${Math.round(mins)} min` : `${Math.round(late.delayMs / 1000)} s`;
  return `⏰ Late: raised at ${new Date(late.raisedAt).toISOString().slice(0, 16).replace("T", " ")} UTC, ${howLate} ago (no chat frontend was running).`;
}

/** The first line of a notice (its headline) and the rest, for platforms that set the headline apart. */
export function splitHeadline(text: string): { headline: string; rest: string } {
  const i = text.indexOf("\n");
  return i < 0 ? { headline: text, rest: "" } : { headline: text.slice(0, i), rest: text.slice(i + 1) };
}
