// The one way an order reaches the exchange. Decisions, manual trades, the full stop of /pause all
// and the exits of the position monitor all come through here, so they share one risk context,
// one rule for client order ids (a retry finds its first order, never places a second), one way
// of booking a fill with its exits, and one record of what happened. An order whose outcome is
// not known (sent, not confirmed) is journaled (./pendingOrders.ts) and looked up here until it is
// found (then booked like any fill, with its exits) or proven absent; it is never sent again.
import { shortPlain } from "../domain/inertText.js";
import type { Decision, Order, Portfolio } from "../domain/types.js";
import type { Exchange } from "../exchange/types.js";
import { OrderOutcomeUnknown, splitSymbol } from "../exchange/types.js";
import { dayKey } from "../ledger/ledger.js";
import type { MarketData } from "../market/types.js";
import type { ClosedTrade, PortfolioStore } from "../portfolio/store.js";
import { equity } from "../portfolio/valuation.js";
import { riskContext } from "../risk/context.js";
import { checkRisk, holdVerdict, type RiskVerdict } from "../risk/rules.js";
import type { RiskLimits } from "../domain/types.js";
import type { AgentState } from "../state/agentState.js";
import type { PendingExits, PendingOrder, PendingOrders } from "./pendingOrders.js";
import { reservationsOf, shortOrderId, type OpenOrder, type OpenOrders } from "./openOrders.js";

/** What placing an order needs; the live app and the backtest supply the same parts. */
export interface OrderServices {
  exchange: Exchange;
  portfolio: PortfolioStore;
  market: MarketData;
  state: AgentState;
  limits: RiskLimits;
  quote: string;
  clock: () => number;
  /** The journal of orders whose outcome is not known yet; without one (the backtest's paper exchange, which always answers) nothing is journaled. */
  pending?: PendingOrders;
  /** Our resting limit orders; without it (the backtest) no limit order is placed. */
  openOrders?: OpenOrders;
  /** Brings `limits` up to the cluster's latest (a /limits on another process): asked before every risk check. */
  refreshLimits?: () => Promise<void>;
}

/** Cash, positions and prices as the risk rules and the agent see them. */
export async function loadPortfolio(svc: Pick<OrderServices, "exchange" | "portfolio" | "market" | "quote" | "clock" | "openOrders">): Promise<Portfolio> {
  const [balances, positions, resting] = await Promise.all([svc.exchange.balances(), svc.portfolio.positions(), svc.openOrders ? svc.openOrders.all() : []]);
  const prices: Record<string, number> = {};
  await Promise.all(positions.map(async (p) => (prices[p.symbol] = await svc.market.lastPrice(p.symbol))));
  // The quote an open buy order locks is not free, but it is still ours: equity counts it, as the
  // exchange reports it (its fee included); one more read, only while a buy order rests.
  const buying = resting.some((o) => o.side === "buy");
  const held = buying && svc.exchange.holdings ? await svc.exchange.holdings() : undefined;
  const reserved = held ? Math.max(0, (held[svc.quote] ?? 0) - (balances[svc.quote] ?? 0)) : reservationsOf(resting).total;
  const portfolio: Portfolio = { cash: balances[svc.quote] ?? 0, ...(reserved > 0 ? { reserved } : {}), positions, prices, dayStartEquity: 0 };
  portfolio.dayStartEquity = await svc.portfolio.dayStartEquity(dayKey(svc.clock()), equity(portfolio));
  return portfolio;
}

/** An order that adds risk or changes a position by choice: it passes every risk rule first. */
export interface EntryIntent {
  /** The decision's id, or "manual:<id>": the exchange dedupes on it, so a retry finds its order. */
  clientOrderId: string;
  decision: Decision;
  /** Who or what asked, in words for the team when the outcome comes late ("/trade by @alice"). */
  origin?: string;
  /** The decision record the order belongs to. */
  decisionId?: string;
  /**
   * A limit order at this price (quote per base) instead of a market order: sized at the limit,
   * its exits set from the limit, and while it rests its notional is reserved in the risk rules.
   */
  limitPrice?: number;
}

export interface OrderOutcome {
  /** The risk rules' verdict; for a retried order, the verdict of the first try is not known again. */
  risk: Pick<RiskVerdict, "outcome" | "message" | "rules">;
  verdict?: RiskVerdict;
  /** Undefined when nothing was placed (refused, nothing to do, paused). */
  order?: Order;
  /** This order was found at the exchange from an earlier try, not placed now. */
  found: boolean;
  realizedPnl: number;
  closed?: ClosedTrade;
  /** The exits the new position got (a buy). */
  exits?: PendingExits;
  /** A limit order that rests on the exchange (not filled, or filled in part): booked when it fills. */
  resting?: OpenOrder;
  /**
   * The order went out but its outcome is not known yet (the exchange failed after accepting
   * it): it is journaled and looked up until it is known; nothing is sent again for it. `sentNow`:
   * this call sent it (false: an earlier one did, and it is still being looked up).
   */
  pending?: { entry: PendingOrder; sentNow: boolean };
}

const placeable = (v: RiskVerdict) => (v.outcome === "approved" || v.outcome === "resized") && v.side !== undefined && v.qty > 0;

/**
 * The verdict of a decision that places no order whatever the books hold (a hold), or undefined.
 * Such a decision needs neither the trading lock nor a fresh read of the books: most scheduled
 * decisions are holds, and each lock and read is a Redis round trip.
 */
export function verdictWithoutBooks(decision: Decision): RiskVerdict | undefined {
  return decision.action === "hold" ? holdVerdict() : undefined;
}

/**
 * A risk-checked order: the cool-down, VaR, daily loss, exposure, position-size and open-position
 * rules, with the portfolio read afresh. The caller holds the trading lock.
 */
export async function placeEntry(svc: OrderServices, intent: EntryIntent): Promise<OrderOutcome> {
  const { decision, clientOrderId } = intent;
  const symbol = decision.symbol;
  // Reads that do not depend on each other go together: each is a round trip.
  const limitPrice = intent.limitPrice;
  if (limitPrice !== undefined && !(limitPrice > 0 && Number.isFinite(limitPrice))) {
    return { risk: { outcome: "refused", message: `A limit price must be a number above 0, not ${limitPrice}: no order.`, rules: [] }, found: false, realizedPnl: 0 };
  }
  if (limitPrice !== undefined && !svc.openOrders) throw new Error("placeEntry: a limit order needs the open-orders registry");
  const [lookup, paused, journal, entryStop] = await Promise.all([
    settled(svc.exchange.findOrder(clientOrderId, symbol)),
    svc.state.isPaused(),
    svc.pending ? svc.pending.all() : [],
    decision.action === "buy" ? svc.state.entryStop() : undefined,
  ]);
  const mine = journal.find((p) => p.clientOrderId === clientOrderId);
  // Sent before and not confirmed: it is looked up, never sent again.
  if (mine) return resumeJournaled(svc, mine, lookup);
  if ("error" in lookup) throw lookup.error;
  const found = lookup.value;
  if (!found && paused) {
    return { risk: { outcome: "no-trade", message: "Trading was paused before the order: nothing placed.", rules: [] }, found: false, realizedPnl: 0 };
  }
  // /stopentry: no new buys; sells, closes and the exits are never blocked by it.
  if (!found && entryStop?.stopped) {
    return { risk: { outcome: "refused", message: `New entries are stopped (/stopentry by ${entryStop.by ?? "someone"}): no buy placed. Exits, stops and take-profits keep working; /stopentry off lifts it.`, rules: ["entries-stopped"] }, found: false, realizedPnl: 0 };
  }
  // While an order of this symbol has an unknown outcome, the books may be missing a fill: no new order on top.
  const blocking = found ? undefined : journal.find((p) => p.symbol === symbol);
  if (blocking) return { risk: { outcome: "refused", message: blockedBy(blocking), rules: ["pending-order"] }, found: false, realizedPnl: 0 };
  // Cool-down and VaR only bear on buys: a hold, sell or close needs no market history.
  const wantsContext = decision.action === "buy" && !found;
  const [portfolio, price, lastLosses, resting] = await Promise.all([
    loadPortfolio(svc),
    svc.market.lastPrice(symbol),
    wantsContext ? svc.portfolio.lastLosses() : undefined,
    wantsContext && svc.openOrders ? svc.openOrders.all() : [],
  ]);
  const priced = { ...portfolio, prices: { ...portfolio.prices, [symbol]: price } };
  // A limit changed on another process since this one last looked is in force here too (the
  // cool-down and VaR context below read the limits as well).
  await svc.refreshLimits?.();
  // Open buy orders count as filled: two orders resting together cannot exceed a limit.
  const context = wantsContext ? { ...(await riskContext(svc, symbol, priced.positions, lastLosses)), reserved: reservationsOf(resting) } : {};
  // A limit order is sized, and its exits set, at its limit: that is where it fills.
  const verdict = checkRisk(decision, priced, svc.limits, limitPrice ?? price, context);
  const risk = { outcome: verdict.outcome, message: verdict.message, rules: verdict.rules };
  if (!found && !placeable(verdict)) return { risk, verdict, found: false, realizedPnl: 0 };

  const side = found?.side ?? verdict.side!;
  const exits: PendingExits | undefined =
    side === "buy" && verdict.stopLoss !== undefined && verdict.takeProfit !== undefined
      ? { stopLoss: verdict.stopLoss, takeProfit: verdict.takeProfit, ...(svc.limits.trailingStopPct ? { trailingStopPct: svc.limits.trailingStopPct } : {}) }
      : undefined;
  const closing = decision.action === "close";
  const sent = found
    ? { order: found }
    : await sendJournaled(svc, {
        clientOrderId,
        symbol,
        side,
        qty: verdict.qty,
        kind: "entry",
        closing,
        ...(exits ? { exits } : {}),
        origin: intent.origin ?? `the order of ${clientOrderId}`,
        ...(intent.decisionId ? { decisionId: intent.decisionId } : {}),
        ...(limitPrice !== undefined ? { limitPrice } : {}),
      });
  if ("pending" in sent) return { risk, verdict, found: false, realizedPnl: 0, pending: { entry: sent.pending, sentNow: true }, ...(exits ? { exits } : {}) };
  const order = sent.order;
  // A closing limit sell filled in part keeps what is left: the rest of it still rests.
  const booked = await book(svc, order, { ...(exits ? { exits } : {}), closing: closing && (limitPrice === undefined || order.status === "filled") });
  // Resting (or filled in part): registered before the journal entry goes, so it is never lost from sight.
  const restingNow =
    limitPrice !== undefined && (order.status === "open" || order.status === "partial")
      ? await rest(svc.openOrders!, { clientOrderId, symbol, side, qty: order.qty, limitPrice, filledQty: order.filledQty, closing, origin: intent.origin ?? `the order of ${clientOrderId}`, placedAt: order.time, ...(exits ? { exits } : {}), ...(intent.decisionId ? { decisionId: intent.decisionId } : {}) })
      : undefined;
  if (!found) await svc.pending?.done(clientOrderId);
  return {
    risk,
    verdict,
    order,
    found: found !== undefined,
    realizedPnl: booked.realizedPnl,
    ...(booked.closed ? { closed: booked.closed } : {}),
    ...(exits ? { exits } : {}),
    ...(restingNow ? { resting: restingNow } : {}),
  };
}

/** An order that only reduces a position: an exit at its stop or target, or the full stop. */
export interface ReduceIntent {
  clientOrderId: string;
  symbol: string;
  /** Who or what asked, in words for the team when the outcome comes late ("the stop loss"). */
  origin?: string;
  /** What the books hold and would sell. */
  qty: number;
  /** The position is closed by this order (an exit or the full stop), so what dust is left goes. */
  closing: boolean;
}

export interface ReduceOutcome extends OrderOutcome {
  /** What the account had free of the base asset when the sell was sized. */
  held: number;
  /** The books held more than the account: the sell was cut to what it held. */
  capped?: { booked: number; held: number };
}

/**
 * A sell that reduces risk. No entry rule can block it. It never sells more than the account has
 * free of the asset: the books can hold more (a fee taken from the coin bought, a fill booked
 * before its trades were listed), coins locked in an open order cannot be sold, and the exchange
 * refuses such a sell every time, so the stop would never execute. The caller holds the lock.
 */
export async function placeReduce(svc: Pick<OrderServices, "exchange" | "portfolio" | "clock" | "pending" | "openOrders">, intent: ReduceIntent): Promise<ReduceOutcome> {
  const risk = { outcome: "approved" as const, message: "A sell that reduces a position: no entry rule applies.", rules: [] };
  const [lookup, mine] = await Promise.all([settled(svc.exchange.findOrder(intent.clientOrderId, intent.symbol)), svc.pending?.get(intent.clientOrderId)]);
  if (mine) {
    const out = await resumeJournaled(svc, mine, lookup);
    return { ...out, held: out.order?.qty ?? 0 };
  }
  if ("error" in lookup) throw lookup.error;
  const found = lookup.value;
  if (found) {
    const booked = await book(svc, found, { closing: intent.closing && found.status === "filled" });
    return { risk, order: found, found: true, held: found.qty, realizedPnl: booked.realizedPnl, ...(booked.closed ? { closed: booked.closed } : {}) };
  }
  const [base] = splitSymbol(intent.symbol);
  // Our resting sell orders lock the coins this sell needs: a stop must never wait on them.
  await cancelRestingSells(svc, intent.symbol);
  // A coin the exchange does not list is one the account does not hold.
  const held = Math.max(0, (await svc.exchange.balances())[base] ?? 0);
  const qty = Math.min(intent.qty, held);
  const capped = qty < intent.qty ? { capped: { booked: intent.qty, held } } : {};
  if (!(qty > 0)) {
    return { risk: { outcome: "refused", message: `the account holds no ${base} to sell (the books hold ${intent.qty})`, rules: [] }, found: false, realizedPnl: 0, held, ...capped };
  }
  const sent = await sendJournaled(svc, { clientOrderId: intent.clientOrderId, symbol: intent.symbol, side: "sell", qty, kind: "reduce", closing: intent.closing, origin: intent.origin ?? `the sell ${intent.clientOrderId}` });
  if ("pending" in sent) return { risk, found: false, realizedPnl: 0, held, ...capped, pending: { entry: sent.pending, sentNow: true } };
  const order = sent.order;
  const booked = await book(svc, order, { closing: intent.closing && order.status === "filled" });
  await svc.pending?.done(intent.clientOrderId);
  return { risk, order, found: false, held, ...capped, realizedPnl: booked.realizedPnl, ...(booked.closed ? { closed: booked.closed } : {}) };
}

/** The one way a fill reaches the books (booked once per order id, with the exits of a buy). */
async function book(svc: Pick<OrderServices, "portfolio">, order: Order, opts: { exits?: PendingExits; closing: boolean }): Promise<{ realizedPnl: number; applied: boolean; closed?: ClosedTrade }> {
  if (order.status !== "filled" && order.status !== "partial") return { realizedPnl: 0, applied: false };
  const { realizedPnl, applied, closed } = await svc.portfolio.applyFill(order, { ...(opts.exits ? { exits: opts.exits } : {}), closing: opts.closing });
  return { realizedPnl, applied, ...(closed ? { closed } : {}) };
}

type Settled<T> = { value: T } | { error: unknown };
const settled = <T>(p: Promise<T>): Promise<Settled<T>> => p.then((value) => ({ value }), (error: unknown) => ({ error }));

const blockedBy = (p: PendingOrder) =>
  `an earlier ${p.side} order for ${p.symbol} (${p.origin}) was sent but its outcome is not known yet; it is being looked up. No new order for ${p.symbol} until it is known.`;

/** Journaled, then sent. An outcome the exchange could not confirm stays in the journal; any other failure means nothing was placed. */
async function sendJournaled(
  svc: Pick<OrderServices, "exchange" | "clock" | "pending">,
  o: Omit<PendingOrder, "state" | "lookups" | "notFound" | "nextLookupAt" | "sentAt">,
): Promise<{ order: Order } | { pending: PendingOrder }> {
  const entry = svc.pending ? await svc.pending.begin({ ...o, sentAt: svc.clock() }) : undefined;
  try {
    const limit = o.limitPrice !== undefined ? { type: "limit" as const, price: o.limitPrice } : {};
    return { order: await svc.exchange.placeOrder({ clientOrderId: o.clientOrderId, symbol: o.symbol, side: o.side, qty: o.qty, ...limit }) };
  } catch (err) {
    if (entry && err instanceof OrderOutcomeUnknown) return { pending: await svc.pending!.unknown(entry, err.reason, svc.clock()) };
    if (entry) await svc.pending!.done(o.clientOrderId).catch(() => {});
    throw err;
  }
}

/** A journaled order met again by a retry: booked if the lookup found it, else still pending (never re-sent). */
async function resumeJournaled(svc: Pick<OrderServices, "portfolio" | "clock" | "pending">, entry: PendingOrder, lookup: Settled<Order | undefined>): Promise<OrderOutcome> {
  const risk = { outcome: "approved" as const, message: "An order sent earlier.", rules: [] };
  if ("error" in lookup || !lookup.value) return { risk, found: false, realizedPnl: 0, pending: { entry, sentNow: false }, ...(entry.exits ? { exits: entry.exits } : {}) };
  // Only a journal that exists holds `entry`.
  const r = await settleFound({ portfolio: svc.portfolio, pending: svc.pending! }, entry, lookup.value, svc.clock());
  if (r.kind === "waiting") return { risk, found: false, realizedPnl: 0, pending: { entry: r.entry, sentNow: false } };
  const order = lookup.value;
  if (r.kind === "resting") return { risk, order, found: true, realizedPnl: 0, resting: r.open, ...(entry.exits ? { exits: entry.exits } : {}) };
  return { risk, order, found: true, realizedPnl: r.kind === "filled" ? r.realizedPnl : 0, ...(r.kind === "filled" && r.closed ? { closed: r.closed } : {}), ...(entry.exits ? { exits: entry.exits } : {}) };
}

// ---- orders whose outcome is not known ---------------------------------------------------------

export type PendingServices = Pick<OrderServices, "exchange" | "portfolio" | "clock" | "openOrders"> & { pending: PendingOrders };

/** What a lookup of a journaled order found. */
export type Resolution =
  /** Found filled (or partly): booked with its exits; `applied` false when an earlier call had booked it. */
  | { kind: "filled"; entry: PendingOrder; order: Order; realizedPnl: number; applied: boolean; closed?: ClosedTrade }
  /** The exchange refused it: nothing was bought or sold. */
  | { kind: "rejected"; entry: PendingOrder; order: Order }
  /** No such order, asked more than once and long enough after it was sent: it was never placed. */
  | { kind: "absent"; entry: PendingOrder }
  /** Still not known (the lookup failed, or found nothing yet): looked up again after the backoff. */
  | { kind: "waiting"; entry: PendingOrder }
  /** A limit order found resting on the exchange: it moved to the open orders, booked when it fills (what filled so far is booked). */
  | { kind: "resting"; entry: PendingOrder; order: Order; open: OpenOrder };

/**
 * Looks up every journaled order that is due (all of them with `force`: at startup, and when the
 * reconciliation asks), and books what is found through the same booking as any fill. The caller
 * holds the trading lock.
 */
export async function resolvePendingOrders(svc: PendingServices, opts: { force?: boolean; symbols?: string[]; max?: number } = {}): Promise<Resolution[]> {
  const now = svc.clock();
  const out: Resolution[] = [];
  // A few per run, oldest first: each lookup can take the exchange's timeout, and the caller holds the trading lock.
  const due = (await svc.pending.all()).filter((e) => (!opts.symbols || opts.symbols.includes(e.symbol)) && svc.pending.due(e, now, opts.force));
  for (const entry of due.slice(0, opts.max ?? 5)) {
    let order: Order | undefined;
    try {
      order = await svc.exchange.findOrder(entry.clientOrderId, entry.symbol);
    } catch (err) {
      out.push({ kind: "waiting", entry: await svc.pending.looked(entry, now, { reason: shortPlain(err instanceof Error ? err.message : String(err), 160) }) });
      continue;
    }
    if (order) {
      out.push(await settleFound(svc, entry, order, now));
      continue;
    }
    // An exchange may list an order a little late: absent only when asked again, long enough after.
    if (entry.notFound >= 1 && now - entry.sentAt >= svc.pending.absentAfterMs) {
      await svc.pending.done(entry.clientOrderId);
      out.push({ kind: "absent", entry });
    } else {
      out.push({ kind: "waiting", entry: await svc.pending.looked(entry, now, { reason: "the exchange does not list it (yet)", notFound: true }) });
    }
  }
  return out;
}

async function settleFound(svc: Pick<PendingServices, "portfolio" | "pending" | "openOrders">, entry: PendingOrder, order: Order, now: number): Promise<Resolution> {
  if (order.status === "rejected") {
    await svc.pending.done(entry.clientOrderId);
    return { kind: "rejected", entry, order };
  }
  const booked = await book(svc, order, { ...(entry.side === "buy" && entry.exits ? { exits: entry.exits } : {}), closing: entry.closing && order.status === "filled" });
  // A limit order found resting is known now: it waits with the other open orders, not in this journal.
  if (entry.limitPrice !== undefined && svc.openOrders && (order.status === "open" || order.status === "partial")) {
    const open = await rest(svc.openOrders, { clientOrderId: entry.clientOrderId, symbol: entry.symbol, side: entry.side, qty: order.qty, limitPrice: entry.limitPrice, filledQty: order.filledQty, closing: entry.closing, origin: entry.origin, placedAt: order.time, ...(entry.exits ? { exits: entry.exits } : {}), ...(entry.decisionId ? { decisionId: entry.decisionId } : {}) });
    await svc.pending.done(entry.clientOrderId);
    return { kind: "resting", entry, order, open };
  }
  // Still resting on the book: what filled so far is booked, the rest is looked at again.
  if (order.status === "open") return { kind: "waiting", entry: await svc.pending.looked(entry, now, { reason: "still open on the exchange" }) };
  await svc.pending.done(entry.clientOrderId);
  return { kind: "filled", entry, order, realizedPnl: booked.realizedPnl, applied: booked.applied, ...(booked.closed ? { closed: booked.closed } : {}) };
}

// ---- resting limit orders ----------------------------------------------------------------------

async function rest(openOrders: OpenOrders, o: Omit<OpenOrder, "id">): Promise<OpenOrder> {
  const entry: OpenOrder = { id: shortOrderId(o.clientOrderId), ...o };
  await openOrders.save(entry);
  return entry;
}

export type OpenOrderServices = Pick<OrderServices, "exchange" | "portfolio"> & { openOrders: OpenOrders };

/** What became of a resting limit order when it was looked at. */
export type OpenOrderEvent =
  /** More of it filled (in full, or in part) and that was booked now, with the exits of a buy. */
  | { kind: "filled"; entry: OpenOrder; order: Order; newQty: number; realizedPnl: number; closed?: ClosedTrade }
  /** Cancelled or refused elsewhere (on the exchange's site, expired): nothing more will fill. */
  | { kind: "gone"; entry: OpenOrder; order?: Order };

/**
 * Looks at every resting limit order: the paper exchange first fills those the price crossed,
 * then each is read by its client order id and what filled is booked through the same booking as
 * any fill (the exits of a buy, set from its limit). Once filled in full or gone it leaves the
 * registry, and with it its reservation. The caller holds the trading lock.
 */
export async function settleOpenOrders(svc: OpenOrderServices): Promise<OpenOrderEvent[]> {
  const entries = await svc.openOrders.all();
  if (entries.length === 0) return [];
  await svc.exchange.matchOpenOrders?.();
  const events: OpenOrderEvent[] = [];
  for (const entry of entries) {
    const order = await svc.exchange.findOrder(entry.clientOrderId, entry.symbol);
    if (!order) continue;
    events.push(...(await take(svc, entry, order)));
  }
  return events;
}

/** Books what more of a resting order filled, and forgets it once it rests no more. */
async function take(svc: OpenOrderServices, entry: OpenOrder, order: Order): Promise<OpenOrderEvent[]> {
  const events: OpenOrderEvent[] = [];
  const done = order.status !== "open" && order.status !== "partial";
  const newQty = order.filledQty - entry.filledQty;
  if (newQty > entry.qty * 1e-9) {
    const booked = await book(svc, order, { ...(entry.side === "buy" && entry.exits ? { exits: entry.exits } : {}), closing: entry.closing && done });
    events.push({ kind: "filled", entry, order, newQty, realizedPnl: booked.realizedPnl, ...(booked.closed ? { closed: booked.closed } : {}) });
  }
  if (done) {
    await svc.openOrders.remove(entry.clientOrderId);
    if (order.status !== "filled") events.push({ kind: "gone", entry, order });
  } else if (newQty > 0) {
    await svc.openOrders.save({ ...entry, filledQty: order.filledQty });
  }
  return events;
}

/**
 * Cancels one resting order: what filled before the cancel is booked, its funds are free again,
 * and its reservation goes. Cancelling one that is gone already is no error. The caller holds the
 * trading lock.
 */
export async function cancelOpenOrder(svc: OpenOrderServices, entry: OpenOrder): Promise<{ order?: Order; events: OpenOrderEvent[] }> {
  if (!svc.exchange.cancelOrder) throw new Error(`${svc.exchange.name} cannot cancel orders`);
  const order = await svc.exchange.cancelOrder(entry.clientOrderId, entry.symbol);
  if (!order) {
    await svc.openOrders.remove(entry.clientOrderId);
    return { events: [] };
  }
  return { order, events: await take(svc, entry, order) };
}

async function cancelRestingSells(svc: Pick<OrderServices, "exchange" | "portfolio" | "openOrders">, symbol: string): Promise<void> {
  if (!svc.openOrders || !svc.exchange.cancelOrder) return;
  const sells = (await svc.openOrders.all()).filter((o) => o.symbol === symbol && o.side === "sell");
  for (const entry of sells) await cancelOpenOrder({ exchange: svc.exchange, portfolio: svc.portfolio, openOrders: svc.openOrders }, entry);
}

/** The exits a position gets from the limits' defaults, at this entry price. */
export function defaultExits(limits: RiskLimits, price: number): PendingExits {
  return {
    stopLoss: price * (1 - limits.defaultStopLossPct / 100),
    takeProfit: price * (1 + limits.defaultTakeProfitPct / 100),
    ...(limits.trailingStopPct ? { trailingStopPct: limits.trailingStopPct } : {}),
  };
}

export interface Adopted {
  order: Order;
  realizedPnl: number;
  closed?: ClosedTrade;
  exits?: PendingExits;
}

/**
 * What the reconciliation can prove: orders of ours (by their client order ids) that filled on
 * `symbol` and never reached the books, booked now through the same booking as any fill, oldest
 * first. A buy that opens a position gets the default exits at its fill price (its own were lost
 * with its journal entry); one that adds to a position keeps that position's. The caller holds the
 * trading lock.
 */
export async function adoptOwnOrders(svc: Pick<OrderServices, "exchange" | "portfolio" | "limits">, symbol: string): Promise<Adopted[]> {
  if (!svc.exchange.unbookedOwnOrders) return [];
  const out: Adopted[] = [];
  for (const order of await svc.exchange.unbookedOwnOrders(symbol, (id) => svc.portfolio.isBooked(id))) {
    if (order.status !== "filled" && order.status !== "partial") continue;
    const held = order.side === "buy" ? await svc.portfolio.position(symbol) : undefined;
    // A buy that would open a position gets the defaults; one that adds keeps the position's exits.
    const exits = order.side === "buy" && !held ? defaultExits(svc.limits, order.avgPrice) : undefined;
    const booked = await book(svc, order, { ...(exits ? { exits } : {}), closing: false });
    if (booked.applied) out.push({ order, realizedPnl: booked.realizedPnl, ...(booked.closed ? { closed: booked.closed } : {}), ...(exits ? { exits } : {}) });
  }
  return out;
}
