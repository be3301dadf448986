// What the trading earned, from the books: the fills the portfolio booked (src/portfolio/store.ts)
// and the AI spend the ledger booked. Pure: plain data in, plain figures out, so every platform
// and the tests read the same numbers.
import type { ClosedTrade, FillRecord } from "../portfolio/store.js";

export type Period = "day" | "week" | "month";

const DAY = 86_400_000;

/** The start (epoch ms, UTC) of the period `t` falls in; a week starts on Monday (ISO 8601). */
export function periodStart(t: number, period: Period): number {
  const d = new Date(t);
  const day = Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate());
  if (period === "day") return day;
  if (period === "week") return day - ((d.getUTCDay() + 6) % 7) * DAY;
  return Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), 1);
}

function nextStart(start: number, period: Period): number {
  if (period === "day") return start + DAY;
  if (period === "week") return start + 7 * DAY;
  const d = new Date(start);
  return Date.UTC(d.getUTCFullYear(), d.getUTCMonth() + 1, 1);
}

function label(start: number, period: Period): string {
  const iso = new Date(start).toISOString();
  if (period === "month") return iso.slice(0, 7);
  return period === "week" ? `week of ${iso.slice(0, 10)}` : iso.slice(0, 10);
}

export interface Bucket {
  label: string;
  /** Inclusive, epoch ms. */
  start: number;
  /** Exclusive. */
  end: number;
}

/** The last `count` periods up to the one `now` falls in, newest first. */
export function lastPeriods(now: number, period: Period, count: number): Bucket[] {
  const out: Bucket[] = [];
  let start = periodStart(now, period);
  for (let i = 0; i < count; i++) {
    out.push({ label: label(start, period), start, end: nextStart(start, period) });
    start = periodStart(start - 1, period);
  }
  return out;
}

/** A charge as the ledger books it (micro-USDC). */
export interface SpendEntry {
  time: number;
  costMicro: number;
}

export interface PeriodFigures {
  /** P&L realized, as the portfolio books it: a sell's gain over the average entry, net of its fee. */
  realized: number;
  /** Fills booked (buys and sells). */
  trades: number;
  /** Every fee paid, in the quote. */
  fees: number;
  /**
   * The fees not in `realized`: a buy's fee paid in the quote is not in the entry price, so the
   * realized P&L of its sell never sees it. Net takes it off.
   */
  entryFees: number;
  /** AI spend booked in the ledger, in USDC. */
  aiSpend: number;
  /** realized − entry fees − AI spend: what the period added, model bills included. */
  net: number;
}

/** The part of a fill's fee that its realized P&L does not hold (a buy's fee paid in the quote). */
export const feeOutsideRealized = (f: FillRecord): number => (f.side === "buy" ? Math.max(0, f.fee - f.feeOther) : 0);

/** The figures of some fills and charges (already chosen for one period). */
export function figures(fills: FillRecord[], spend: SpendEntry[]): PeriodFigures {
  let realized = 0;
  let fees = 0;
  let entryFees = 0;
  for (const f of fills) {
    realized += f.realized;
    fees += f.fee;
    entryFees += feeOutsideRealized(f);
  }
  const aiSpend = spend.reduce((s, c) => s + c.costMicro, 0) / 1_000_000;
  return { realized, trades: fills.length, fees, entryFees, aiSpend, net: realized - entryFees - aiSpend };
}

export interface PeriodRow extends PeriodFigures, Bucket {}

/** One row of figures per bucket. */
export function periodTable(fills: FillRecord[], spend: SpendEntry[], buckets: Bucket[]): PeriodRow[] {
  const inside = (b: Bucket) => (t: number) => t >= b.start && t < b.end;
  return buckets.map((b) => ({ ...b, ...figures(fills.filter((f) => inside(b)(f.time)), spend.filter((c) => inside(b)(c.time))) }));
}

export interface SymbolPerformance {
  symbol: string;
  /** Fills booked. */
  fills: number;
  /** Closed round trips (a position opened and closed again). */
  roundTrips: number;
  wins: number;
  /** wins / round trips, 0..1; undefined with no round trip. */
  winRate: number | undefined;
  realized: number;
  fees: number;
}

/** Per symbol, best realized P&L first. Win rate counts closed round trips, as the portfolio closes them. */
export function performanceBySymbol(fills: FillRecord[], closed: ClosedTrade[]): SymbolPerformance[] {
  const by = new Map<string, SymbolPerformance>();
  const of = (symbol: string) => {
    let p = by.get(symbol);
    if (!p) by.set(symbol, (p = { symbol, fills: 0, roundTrips: 0, wins: 0, winRate: undefined, realized: 0, fees: 0 }));
    return p;
  };
  for (const f of fills) {
    const p = of(f.symbol);
    p.fills++;
    p.realized += f.realized;
    p.fees += f.fee;
  }
  for (const c of closed) {
    const p = of(c.symbol);
    p.roundTrips++;
    if (c.pnl > 0) p.wins++;
  }
  for (const p of by.values()) p.winRate = p.roundTrips > 0 ? p.wins / p.roundTrips : undefined;
  return [...by.values()].sort((a, b) => b.realized - a.realized || a.symbol.localeCompare(b.symbol));
}

/** The best and worst closed round trips (by P&L), or undefined with none. */
export function bestAndWorst(closed: ClosedTrade[]): { best: ClosedTrade; worst: ClosedTrade } | undefined {
  if (closed.length === 0) return undefined;
  let best = closed[0]!;
  let worst = closed[0]!;
  for (const c of closed) {
    if (c.pnl > best.pnl) best = c;
    if (c.pnl < worst.pnl) worst = c;
  }
  return { best, worst };
}

/** A signed amount for people: "+12.34" / "-0.50". */
export const signed = (n: number, digits = 2): string => `${n >= 0 ? "+" : "-"}${Math.abs(n).toFixed(digits)}`;

/** Rows of text in columns: the first column left, the others right. */
export function textTable(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length)));
  const line = (cells: string[]) => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join("  ").trimEnd();
  return [line(header), ...rows.map(line)].join("\n");
}
