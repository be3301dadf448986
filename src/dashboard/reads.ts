// What the dashboard shows, read from the books as they are (the ledger, the portfolio, the budget,
// the permit sessions, the audit log). Every read the API makes is here, in one file. Trades and
// P&L come from the same fill records as /profit and the CSV export, so the two never disagree.
import type { AuditEntry } from "../chat/audit.js";
import type { Candle, MarketSymbol, MicroUsdc, Portfolio } from "../domain/types.js";
import { dayKey, type DecisionRecord, type Ledger } from "../ledger/ledger.js";
import type { MarketData } from "../market/types.js";
import type { PendingOrder, PendingOrders } from "../orders/pendingOrders.js";
import { levelOf, type BalanceRules } from "../payments/balanceManager.js";
import type { BudgetStatus } from "../payments/budgetGuard.js";
import type { SessionBatch, SessionView } from "../payments/permitSessions.js";
import type { OpenOrders } from "../orders/openOrders.js";
import type { ClosedTrade, FillRecord, PortfolioStore } from "../portfolio/store.js";
import { equity, unrealizedPnl } from "../portfolio/valuation.js";

/** The narrow services the dashboard reads (the composition root's app provides them). */
export interface DashboardSources {
  ledger: Pick<Ledger, "decisionsBefore" | "decisions" | "charges" | "get">;
  portfolio: Pick<PortfolioStore, "positions" | "closedTrades" | "equityCurve" | "fills" | "recentFills">;
  /** Our resting limit orders (none without one). */
  openOrders?: Pick<OpenOrders, "all">;
  market: Pick<MarketData, "closedCandles" | "lastPrice">;
  pending: Pick<PendingOrders, "all">;
  /** The trading account as the order path values it (cash, positions, prices). */
  loadPortfolio(): Promise<Portfolio>;
  balance: { getBalance(): Promise<MicroUsdc>; rules: BalanceRules; describeWallet(): string };
  budget?: { status(now: number): Promise<BudgetStatus> };
  sessions?: { recent(limit: number): Promise<SessionView[]>; batches(id: string): Promise<SessionBatch[]> };
  audit: { recent(limit: number): Promise<AuditEntry[]> };
  caps: { dailyMicro: MicroUsdc; monthlyMicro: MicroUsdc };
  clock: () => number;
  quote: string;
  symbols: MarketSymbol[];
}

const DAY_MS = 86_400_000;
const round = (n: number, digits = 8) => Number(n.toFixed(digits));

export async function readPositions(s: DashboardSources) {
  const [portfolio, pending] = await Promise.all([s.loadPortfolio(), s.pending.all()]);
  const positions = portfolio.positions.map((p) => {
    const last = portfolio.prices[p.symbol] ?? p.entryPrice;
    return {
      symbol: p.symbol,
      qty: p.qty,
      entryPrice: p.entryPrice,
      last,
      stopLoss: p.stopLoss,
      takeProfit: p.takeProfit,
      ...(p.trailingStopPct !== undefined ? { trailingStopPct: p.trailingStopPct } : {}),
      openedAt: p.openedAt,
      notional: round(p.qty * last, 6),
      unrealizedPnl: round(unrealizedPnl(p, last), 6),
    };
  });
  return {
    quote: s.quote,
    cash: round(portfolio.cash, 6),
    equity: round(equity(portfolio), 6),
    positions,
    pendingOrders: pending.map((o: PendingOrder) => ({ symbol: o.symbol, side: o.side, qty: o.qty, origin: o.origin, state: o.state, lookups: o.lookups, sentAt: o.sentAt })),
  };
}

/**
 * The resting limit orders, and the latest orders the books filled, newest first: decisions',
 * manual trades and exits alike (the fill records /trades and the CSV export read).
 */
export async function readOrders(s: DashboardSources, limit: number) {
  const [open, fills] = await Promise.all([s.openOrders?.all() ?? [], s.portfolio.recentFills(limit)]);
  return {
    open: open.map((o) => ({ id: o.id, symbol: o.symbol, side: o.side, qty: o.qty, limitPrice: o.limitPrice, filledQty: o.filledQty, placedAt: o.placedAt, origin: o.origin })),
    filled: fills.map((f) => ({ orderId: f.orderId, clientOrderId: f.clientOrderId, time: f.time, symbol: f.symbol, side: f.side, qty: f.qty, price: f.price, fee: round(f.fee, 8), realized: round(f.realized, 8) })),
  };
}

/**
 * Realized P&L by UTC day and by symbol from the fills as the books hold them, so the page agrees
 * with /profit, /daily and /performance to the cent; and the closed round trips, for the list.
 */
export async function readTrades(s: DashboardSources, limit = 1000) {
  const [fills, trades]: [FillRecord[], ClosedTrade[]] = await Promise.all([s.portfolio.fills(), s.portfolio.closedTrades(limit)]);
  const byDay = new Map<string, { pnl: number; trades: number; wins: number }>();
  const bySymbol = new Map<string, { pnl: number; trades: number; wins: number }>();
  for (const f of fills) {
    for (const [map, key] of [[byDay, dayKey(f.time)], [bySymbol, f.symbol]] as const) {
      const row = map.get(key) ?? { pnl: 0, trades: 0, wins: 0 };
      row.pnl += f.realized;
      row.trades += 1;
      if (f.side === "sell" && f.realized > 0) row.wins += 1;
      map.set(key, row);
    }
  }
  const rows = <K extends string>(m: Map<string, { pnl: number; trades: number; wins: number }>, k: K) =>
    [...m.entries()].map(([key, v]) => ({ [k]: key, pnl: round(v.pnl, 6), trades: v.trades, wins: v.wins }) as Record<K, string> & { pnl: number; trades: number; wins: number });
  return {
    quote: s.quote,
    trades,
    realizedPnl: round(fills.reduce((a, f) => a + f.realized, 0), 6),
    byDay: rows(byDay, "day").sort((a, b) => a.day.localeCompare(b.day)),
    bySymbol: rows(bySymbol, "symbol").sort((a, b) => b.pnl - a.pnl),
  };
}

/** The equity curve and its drawdown from the running peak, in percent. */
export async function readEquity(s: DashboardSources) {
  const curve = await s.portfolio.equityCurve();
  let peak = -Infinity;
  const points = curve.map((p) => {
    peak = Math.max(peak, p.equity);
    return { time: p.time, equity: round(p.equity, 6), drawdownPct: peak > 0 ? round(((peak - p.equity) / peak) * 100, 4) : 0 };
  });
  return { quote: s.quote, points, maxDrawdownPct: points.reduce((m, p) => Math.max(m, p.drawdownPct), 0) };
}

/** How many of the newest decisions the price chart's marks are looked for in. */
const MARKS_SCAN = 1_000;

/** A symbol's closed candles with the agent's entries, exits and current stops marked. */
export async function readPrice(s: DashboardSources, symbol: MarketSymbol, limit: number) {
  const candles: Candle[] = await s.market.closedCandles(symbol, limit);
  const from = candles[0]?.time ?? 0;
  // The newest decisions only (all symbols): a long diary is not read whole for a chart's marks.
  const [recent, trades, positions] = await Promise.all([s.ledger.decisionsBefore(s.clock(), MARKS_SCAN), s.portfolio.closedTrades(1000), s.portfolio.positions()]);
  const decisions = recent.filter((d) => d.time >= from);
  const markers: { time: number; kind: "entry" | "exit"; side: string; price: number; label: string }[] = [];
  for (const d of decisions) {
    if (d.symbol !== symbol || !d.order || d.order.status === "rejected" || !(d.order.avgPrice > 0)) continue;
    markers.push({ time: d.time, kind: d.order.side === "buy" ? "entry" : "exit", side: d.order.side, price: d.order.avgPrice, label: `${d.order.side.toUpperCase()} ${d.order.qty}` });
  }
  for (const t of trades) {
    if (t.symbol !== symbol || t.time < from) continue;
    // A sell the decisions placed is marked already; an exit by a stop or a target is not.
    if (markers.some((m) => m.kind === "exit" && Math.abs(m.time - t.time) < 1000)) continue;
    markers.push({ time: t.time, kind: "exit", side: "sell", price: t.exitPrice, label: `exit ${t.pnl >= 0 ? "+" : ""}${t.pnl.toFixed(2)}` });
  }
  markers.sort((a, b) => a.time - b.time);
  const open = positions.find((p) => p.symbol === symbol);
  return {
    symbol,
    candles: candles.map((c) => ({ time: c.time, open: c.open, high: c.high, low: c.low, close: c.close })),
    markers,
    stops: open ? { entry: open.entryPrice, stopLoss: open.stopLoss, takeProfit: open.takeProfit } : null,
  };
}

export interface DiaryQuery {
  symbol?: string;
  /** buy, sell, hold, close, or none (no decision came out: failed, skipped). */
  action?: string;
  limit: number;
  /** The cursor the previous page returned: "TIME:ID" of its last entry. */
  cursor?: string;
}

/** Most records one page looks at before answering with what it found (a rare filter on a long diary). */
const SCAN_LIMIT = 20_000;

/** The decision diary, newest first, one page at a time, filtered by symbol and action. */
export async function readDiary(s: DashboardSources, q: DiaryQuery) {
  const matches = (d: DecisionRecord) => (!q.symbol || d.symbol === q.symbol) && (!q.action || (d.action ?? "none") === q.action);
  const filtered = Boolean(q.symbol || q.action);
  const chunk = filtered ? Math.max(200, q.limit * 8) : q.limit + 1;
  let before = s.clock();
  let skipThrough: string | undefined;
  if (q.cursor) {
    const [t, ...id] = q.cursor.split(":");
    before = Number(t);
    skipThrough = id.join(":");
  }
  const entries: DecisionRecord[] = [];
  let scanned = 0;
  let last: DecisionRecord | undefined;
  let more = true;
  while (entries.length < q.limit && scanned < SCAN_LIMIT) {
    const batch = await s.ledger.decisionsBefore(before, chunk);
    let i = 0;
    if (skipThrough !== undefined) {
      // Entries at the cursor's own millisecond come again: skip through the cursor's entry.
      const at = batch.findIndex((d) => d.id === skipThrough);
      if (at >= 0) i = at + 1;
      else while (i < batch.length && batch[i]!.time === before) i++;
      skipThrough = undefined;
    }
    for (; i < batch.length && entries.length < q.limit; i++) {
      const d = batch[i]!;
      scanned++;
      last = d;
      if (matches(d)) entries.push(d);
    }
    if (batch.length < chunk && i >= batch.length) {
      more = false;
      break;
    }
    if (entries.length >= q.limit) break;
    // Continue after the last entry looked at.
    before = last!.time;
    skipThrough = last!.id;
  }
  return { entries: entries.map(diaryEntry), next: more && last ? `${last.time}:${last.id}` : null };
}

function diaryEntry(d: DecisionRecord) {
  return {
    id: d.id,
    time: d.time,
    symbol: d.symbol,
    trigger: d.trigger,
    action: d.action ?? "none",
    outcome: d.outcome,
    model: d.model,
    costMicro: d.costMicro,
    latencyMs: d.latencyMs,
    ...(d.confidence !== undefined ? { confidence: d.confidence } : {}),
    ...(d.sizePct !== undefined ? { sizePct: d.sizePct } : {}),
    reasons: d.reasons ?? [],
    indicators: d.indicators ?? {},
    ...(d.risk ? { risk: d.risk } : {}),
    ...(d.order ? { order: d.order } : {}),
    ...(d.research ? { research: d.research } : {}),
    ...(d.error ? { error: d.error } : {}),
    ...(d.saver ? { saver: d.saver } : {}),
  };
}

/** What the AI cost, per model and per UTC day over `days`, against the caps; and the permit sessions. */
export async function readSpend(s: DashboardSources, days: number) {
  const now = s.clock();
  const todayStart = Math.floor(now / DAY_MS) * DAY_MS;
  const from = todayStart - (days - 1) * DAY_MS;
  const d = new Date(now);
  const monthStart = Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), 1);
  const charges = await s.ledger.charges(Math.min(from, monthStart), now);
  const perDay = new Map<string, { costMicro: number; calls: number; perModel: Record<string, number> }>();
  const perModel = new Map<string, { costMicro: number; calls: number }>();
  let monthMicro = 0;
  for (const c of charges) {
    const calls = c.rollup?.charges ?? 1;
    if (c.time >= monthStart) monthMicro += c.costMicro;
    if (c.time < from) continue;
    const day = dayKey(c.time);
    const row = perDay.get(day) ?? { costMicro: 0, calls: 0, perModel: {} };
    row.costMicro += c.costMicro;
    row.calls += calls;
    row.perModel[c.model] = (row.perModel[c.model] ?? 0) + c.costMicro;
    perDay.set(day, row);
    const m = perModel.get(c.model) ?? { costMicro: 0, calls: 0 };
    m.costMicro += c.costMicro;
    m.calls += calls;
    perModel.set(c.model, m);
  }
  const budget = s.budget ? await s.budget.status(now) : undefined;
  const views = s.sessions ? await s.sessions.recent(10) : [];
  const sessions = await Promise.all(
    views.map(async (v) => ({
      id: v.id,
      status: v.status,
      network: v.network,
      capMicro: v.capMicro,
      signedAt: v.signedAt,
      deadline: v.deadline,
      calls: v.calls,
      bookedMicro: v.bookedMicro,
      settledMicro: v.settledMicro,
      leftMicro: v.leftMicro,
      ...(v.reason ? { reason: v.reason } : {}),
      batches: (await s.sessions!.batches(v.id)).map((b) => ({ ...b })),
    })),
  );
  const days_: { day: string; costMicro: number; calls: number; perModel: Record<string, number> }[] = [];
  for (let t = from; t <= todayStart; t += DAY_MS) {
    const day = dayKey(t);
    days_.push({ day, ...(perDay.get(day) ?? { costMicro: 0, calls: 0, perModel: {} }) });
  }
  return {
    caps: { dailyMicro: s.caps.dailyMicro, monthlyMicro: s.caps.monthlyMicro },
    today: { spentMicro: perDay.get(dayKey(now))?.costMicro ?? 0, reservedMicro: budget?.reservedTodayMicro ?? 0 },
    month: { spentMicro: monthMicro, reservedMicro: budget?.reservedMonthMicro ?? 0 },
    perDay: days_,
    perModel: [...perModel.entries()].map(([model, v]) => ({ model, ...v })).sort((a, b) => b.costMicro - a.costMicro),
    sessions,
  };
}

/**
 * The USDC balance for model calls, and its history over `days`: walked back from today's balance
 * through the charges booked since (refills are not in the books, so before a refill the line
 * shows what the balance would have been without it).
 */
export async function readBalance(s: DashboardSources, days: number) {
  const now = s.clock();
  const [balanceMicro, charges] = await Promise.all([s.balance.getBalance(), s.ledger.charges(now - days * DAY_MS, now)]);
  const history: { time: number; balanceMicro: number }[] = [{ time: now, balanceMicro }];
  let running = balanceMicro;
  for (let i = charges.length - 1; i >= 0; i--) {
    const c = charges[i]!;
    history.push({ time: c.time, balanceMicro: running });
    running += c.costMicro;
  }
  history.push({ time: now - days * DAY_MS, balanceMicro: running });
  history.reverse();
  return {
    balanceMicro,
    level: levelOf(balanceMicro, s.balance.rules),
    wallet: s.balance.describeWallet(),
    rules: { minBalance: s.balance.rules.minBalance, criticalBalance: s.balance.rules.criticalBalance, autoRefill: s.balance.rules.autoRefill },
    history,
  };
}

export async function readAudit(s: DashboardSources, limit: number) {
  return { entries: await s.audit.recent(limit) };
}
