import { usd as usdc } from "../domain/types.js";
import type { DecisionRecord } from "../ledger/ledger.js";

const num = (n: number, digits = 2) =>
  n.toLocaleString("en-US", { minimumFractionDigits: digits, maximumFractionDigits: digits });

/** A price with as many decimals as its size needs (DOGE 0.16518, BTC 64,210.55). */
export const price = (p: number) => num(p, p >= 100 ? 2 : p >= 1 ? 4 : 6);
export const money = (n: number, quote = "USDT") => `${num(n)} ${quote}`;
export { usdc };


/** The reply to /decide and the scheduled decision notice: what, why, on what data, at what cost, and the order. */
/** The decision's research in one line: the source and what it cost this decision. */
export function researchLine(r: DecisionRecord): string | undefined {
  const x = r.research;
  if (!x) return undefined;
  if (!x.available) return x.served === "none" ? `Research: ${x.source}.` : `Research: none from ${x.source}${x.costMicro ? ` (paid ${usdc(x.costMicro)})` : ""}. ${x.note ?? ""}`.trim();
  if (x.served === "cache") return `Research: ${x.source} · from its cache (paid once for every decision in the TTL), no cost to this decision.`;
  if (x.served === "paid") return `Research: ${x.source} · paid ${usdc(x.costMicro)}, cached for the next decisions.`;
  return `Research: ${x.source} · free.`;
}

export function formatDecision(r: DecisionRecord, opts: { paper: boolean }): string {
  const tag = opts.paper ? " [PAPER]" : "";
  if (r.outcome === "skipped" && !r.action) return `${r.symbol}: no decision. ${r.error ?? ""}`.trim();
  if (r.outcome === "failed") {
    return [
      `${r.symbol}: no valid decision${tag}. No order placed.`,
      `Model: ${r.model} · cost ${usdc(r.costMicro)} · ${r.latencyMs} ms`,
      `Why: ${r.error ?? "unknown"}`,
      ...(researchLine(r) ? [researchLine(r)!] : []),
    ].join("\n");
  }
  const size = r.action === "buy" || r.action === "sell" ? ` ${num(r.sizePct ?? 0, 1)}% of equity` : "";
  const lines = [
    `${r.symbol}: ${(r.action ?? "hold").toUpperCase()}${size} (confidence ${num((r.confidence ?? 0) * 100, 0)}%)${tag}`,
    `Model: ${r.model} · cost ${usdc(r.costMicro)} · ${r.latencyMs} ms`,
  ];
  if (r.reasons?.length) {
    lines.push("Reasons:");
    for (const reason of r.reasons) lines.push(`  • ${reason}`);
  }
  const i = r.indicators;
  if (i) {
    const n = (k: string) => Number(i[k]);
    lines.push(
      `Indicators: price ${price(n("price"))} · SMA20 ${price(n("sma20"))} · SMA50 ${price(n("sma50"))} · RSI ${num(n("rsi14"), 1)} · MACD hist ${n("macdHist") >= 0 ? "+" : "-"}${price(Math.abs(n("macdHist")))} · BB ${price(n("bbLower"))}–${price(n("bbUpper"))} · ATR ${price(n("atr14"))} · vol ${num(n("volatility") * 100, 2)}% · signal ${String(i.signal)}`,
    );
  }
  if (r.risk && r.risk.outcome !== "approved" && r.risk.outcome !== "no-trade") lines.push(`Risk: ${r.risk.message}`);
  if (r.outcome === "pending" && r.pendingOrder) {
    const p = r.pendingOrder;
    lines.push(`Order: ${p.side.toUpperCase()} ${num(p.qty, 6)} ${r.symbol.split("/")[0]} sent, but the exchange did not confirm it: ${p.reason}. Its outcome is not known yet: it is being looked up, and you will be told what happened. Nothing is sent again for it.${tag}`);
  } else if (r.order) {
    const o = r.order;
    const base = r.symbol.split("/")[0];
    if (o.status === "rejected") lines.push(`Order REJECTED by the exchange: ${o.reason ?? "no reason given"}`);
    else lines.push(`Order: ${o.side.toUpperCase()} ${num(o.qty, 6)} ${base} @ ${price(o.avgPrice)}, fee ${num(o.fee, 4)} (${o.status})${tag}`);
  } else if (r.action === "hold") {
    lines.push("Order: none (hold).");
  } else if (r.risk) {
    lines.push(`Order: none. ${r.risk.message}`);
  }
  const research = researchLine(r);
  if (research) lines.push(research);
  if (r.saver) {
    const from = { cache: "the decision cache (same closed candle)", batch: "a batched call shared with other symbols", gate: "the signal gate (nothing to decide, no model asked)" }[r.saver];
    lines.push(`Saver: answered by ${from}${r.savedMicro ? `, saving ${usdc(r.savedMicro)}` : ""}.`);
  }
  if (r.error) lines.push(`Note: ${r.error}`);
  return lines.join("\n");
}
