// CSV files of the books for a spreadsheet or a tax tool: RFC 4180 (quoted where needed, CRLF),
// UTC ISO dates, plain decimals, and text cells defused against formula injection.
import type { DecisionRecord } from "../ledger/ledger.js";
import type { FillRecord } from "../portfolio/store.js";

export type Cell = string | number | undefined;

// A spreadsheet runs a cell that starts with one of these as a formula (OWASP "CSV injection"):
// text from outside (a model's reason, an exchange's id) must never do that.
const FORMULA_START = /^[=+\-@\t\r]/;

/** A number as plain decimals (never 1e-7), trailing zeros dropped. */
export function decimal(n: number, digits = 10): string {
  if (!Number.isFinite(n)) return "";
  const fixed = n.toFixed(digits);
  const trimmed = fixed.includes(".") ? fixed.replace(/0+$/, "").replace(/\.$/, "") : fixed;
  return trimmed === "-0" ? "0" : trimmed;
}

/**
 * One cell. Numbers are written as numbers (a negative P&L keeps its minus); text that a
 * spreadsheet would run as a formula gets a leading apostrophe, which shows it as text.
 */
export function csvCell(v: Cell): string {
  if (v === undefined) return "";
  let s = typeof v === "number" ? decimal(v) : v;
  if (typeof v === "string" && FORMULA_START.test(s)) s = `'${s}`;
  return /[",\r\n]/.test(s) || s !== s.trim() ? `"${s.replace(/"/g, '""')}"` : s;
}

export function toCsv(header: string[], rows: Cell[][]): string {
  return [header, ...rows].map((r) => r.map(csvCell).join(",")).join("\r\n") + "\r\n";
}

const iso = (t: number) => new Date(t).toISOString();

export const TRADE_COLUMNS = ["date_utc", "id", "symbol", "side", "quantity", "price", "quote_amount", "fee", "fee_currency", "realized_pnl", "order_id", "client_order_id"];

/** One row per booked fill, oldest first; the fee and amounts in the quote currency. */
export function tradesCsv(fills: FillRecord[], quote: string): string {
  return toCsv(
    TRADE_COLUMNS,
    fills.map((f) => [iso(f.time), f.orderId, f.symbol, f.side, f.qty, f.price, f.qty * f.price, f.fee, quote, f.realized, f.orderId, f.clientOrderId]),
  );
}

export const DECISION_COLUMNS = ["date_utc", "id", "symbol", "action", "size_pct", "confidence", "model", "cost_usdc", "outcome", "order_id", "order_side", "order_qty", "order_price", "reason"];

/** One row per decision, oldest first; cost_usdc is what the model call was booked at. */
export function decisionsCsv(decisions: DecisionRecord[]): string {
  return toCsv(
    DECISION_COLUMNS,
    decisions.map((d) => [
      iso(d.time),
      d.id,
      d.symbol,
      d.action,
      d.sizePct,
      d.confidence,
      d.model,
      d.costMicro / 1_000_000,
      d.outcome,
      d.order?.id,
      d.order?.side,
      d.order?.qty,
      d.order?.avgPrice,
      (d.reasons ?? (d.error ? [d.error] : [])).join("; "),
    ]),
  );
}
