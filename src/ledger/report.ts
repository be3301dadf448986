import { usd, type MicroUsdc } from "../domain/types.js";
import { dayKey, monthKey, type ChargeRecord, type DecisionRecord, type PaymentReceipt } from "./ledger.js";

export interface ModelUsage {
  model: string;
  /** Decisions this model made. */
  decisions: number;
  /** Calls made to it (failed ones included, skipped ones not). */
  calls: number;
  costMicro: MicroUsdc;
  /** Share of its calls that gave a valid decision; of its decisions when it was never called. */
  successRate: number;
  p50Ms?: number;
  p95Ms?: number;
}

export interface SaverFigures {
  count: number;
  savedMicro: MicroUsdc;
}

export interface CostReport {
  periodLabel: string;
  decisions: number;
  /** Decisions where a model was asked (not skipped). */
  asked: number;
  succeeded: number;
  successRate: number;
  orders: number;
  refused: number;
  totalCostMicro: MicroUsdc;
  avgCostMicro: MicroUsdc;
  perModel: ModelUsage[];
  spentTodayMicro: MicroUsdc;
  spentMonthMicro: MicroUsdc;
  projectedMonthMicro: MicroUsdc;
  /** Decisions where the first model tried did not answer (failed or cooling down). */
  fallbacks: number;
  /** Decisions made by the free behaviour (offline engine or hold), by reason. */
  freeDecisions: Record<string, number>;
  savers: { cache: SaverFigures; batch: SaverFigures; gate: SaverFigures };
  caps?: { dailyMicro: MicroUsdc; monthlyMicro: MicroUsdc };
  /** x402 payments of the period by what their receipt said, and links to the latest settled ones. */
  payments: { settled: number; pending: number; failed: number; links: string[] };
  /** Paid research of the period: its calls and spend (in the totals too), and decisions served from its cache. */
  research: { calls: number; costMicro: MicroUsdc; cachedDecisions: number };
}

/** Research charges are booked under "research:<host>"; they are spend, but no model's. */
export const isResearchCharge = (c: Pick<ChargeRecord, "model">): boolean => c.model.startsWith("research:");

// Block explorers for the networks x402 pays on, by short name and CAIP-2 id.
const EXPLORER: Record<string, string> = {
  base: "https://basescan.org/tx/",
  "eip155:8453": "https://basescan.org/tx/",
  "base-sepolia": "https://sepolia.basescan.org/tx/",
  "eip155:84532": "https://sepolia.basescan.org/tx/",
};

/** The block explorer link of a settled payment, when its network has a known explorer. */
export function receiptLink(r: PaymentReceipt): string | undefined {
  return r.status === "settled" && r.transaction && r.network && EXPLORER[r.network] ? `${EXPLORER[r.network]}${r.transaction}` : undefined;
}

/** Counts the period's x402 receipts (a charge with none, an API-key call, is not an x402 payment). */
export function paymentFigures(charges: ChargeRecord[]): CostReport["payments"] {
  const out: CostReport["payments"] = { settled: 0, pending: 0, failed: 0, links: [] };
  for (const c of charges) {
    // A rolled-up day's row carries its day's counts and latest links instead of one receipt.
    const day = c.rollup?.payments;
    if (day) {
      out.settled += day.settled;
      out.pending += day.pending;
      out.failed += day.failed;
      out.links.push(...day.links);
    }
    const r = c.receipt;
    // A call on a permit session has no payment of its own: its session's batches settle it (listed apart).
    if (!r || r.scheme === "permit-session") continue;
    out[r.status]++;
    const link = receiptLink(r);
    if (link) out.links.push(link);
  }
  out.links = out.links.slice(-3);
  return out;
}

function nearestRank(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!;
}

/** Builds the cost report from ledger records. Pure: the same records give the same report. */
export function buildReport(
  decisions: DecisionRecord[],
  charges: ChargeRecord[],
  monthCharges: ChargeRecord[],
  now: number,
  periodLabel: string,
  caps?: { dailyMicro: MicroUsdc; monthlyMicro: MicroUsdc },
): CostReport {
  const asked = decisions.filter((d) => d.outcome !== "skipped");
  const succeeded = asked.filter((d) => d.outcome !== "failed");
  const totalCostMicro = charges.reduce((s, c) => s + c.costMicro, 0);
  const byModel = new Map<string, { decisions: number; calls: number; okCalls: number; okDecisions: number; costMicro: number; latencies: number[] }>();
  const slot = (model: string) => {
    let m = byModel.get(model);
    if (!m) byModel.set(model, (m = { decisions: 0, calls: 0, okCalls: 0, okDecisions: 0, costMicro: 0, latencies: [] }));
    return m;
  };
  const savers = { cache: { count: 0, savedMicro: 0 }, batch: { count: 0, savedMicro: 0 }, gate: { count: 0, savedMicro: 0 } };
  const freeDecisions: Record<string, number> = {};
  let fallbacks = 0;
  for (const d of asked) {
    const m = slot(d.model);
    m.decisions++;
    if (d.outcome !== "failed") m.okDecisions++;
    for (const a of d.attempts ?? []) {
      if (a.skipped) continue;
      const am = slot(a.model);
      am.calls++;
      if (a.ok) am.okCalls++;
      am.latencies.push(a.latencyMs);
    }
    const first = d.attempts?.[0];
    if ((first && !first.ok) || d.freeBecause) fallbacks++;
    if (d.freeBecause) freeDecisions[d.freeBecause] = (freeDecisions[d.freeBecause] ?? 0) + 1;
    if (d.saver) {
      savers[d.saver].count++;
      savers[d.saver].savedMicro += d.savedMicro ?? 0;
    }
  }
  const research = { calls: 0, costMicro: 0, cachedDecisions: decisions.filter((d) => d.research?.served === "cache").length };
  for (const c of charges) {
    if (isResearchCharge(c)) {
      research.calls++;
      research.costMicro += c.costMicro;
    } else slot(c.model).costMicro += c.costMicro;
  }
  const today = dayKey(now);
  const month = monthKey(now);
  const spentTodayMicro = monthCharges.filter((c) => dayKey(c.time) === today).reduce((s, c) => s + c.costMicro, 0);
  const spentMonthMicro = monthCharges.filter((c) => monthKey(c.time) === month).reduce((s, c) => s + c.costMicro, 0);
  const d = new Date(now);
  const daysInMonth = new Date(Date.UTC(d.getUTCFullYear(), d.getUTCMonth() + 1, 0)).getUTCDate();
  const monthStart = Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), 1);
  const daysElapsed = Math.max((now - monthStart) / 86_400_000, 1 / 24);
  return {
    periodLabel,
    decisions: decisions.length,
    asked: asked.length,
    succeeded: succeeded.length,
    successRate: asked.length ? succeeded.length / asked.length : 1,
    orders: decisions.filter((x) => x.outcome === "order").length,
    refused: decisions.filter((x) => x.outcome === "refused").length,
    totalCostMicro,
    avgCostMicro: asked.length ? Math.round(totalCostMicro / asked.length) : 0,
    perModel: [...byModel.entries()]
      .map(([model, m]): ModelUsage => {
        const lat = [...m.latencies].sort((a, b) => a - b);
        return {
          model,
          decisions: m.decisions,
          calls: m.calls,
          costMicro: m.costMicro,
          successRate: m.calls ? m.okCalls / m.calls : m.decisions ? m.okDecisions / m.decisions : 1,
          ...(lat.length ? { p50Ms: nearestRank(lat, 50), p95Ms: nearestRank(lat, 95) } : {}),
        };
      })
      .sort((a, b) => b.decisions - a.decisions || b.calls - a.calls),
    spentTodayMicro,
    spentMonthMicro,
    projectedMonthMicro: Math.round((spentMonthMicro / daysElapsed) * daysInMonth),
    fallbacks,
    freeDecisions,
    savers,
    ...(caps ? { caps } : {}),
    payments: paymentFigures(charges),
    research,
  };
}

export { usd };
const pct = (x: number) => `${(x * 100).toFixed(1)}%`;

export function formatReport(r: CostReport): string {
  const ofCap = (spent: MicroUsdc, cap: MicroUsdc | undefined) => (cap ? `${usd(spent)} of ${usd(cap, 2)} (${pct(spent / cap)})` : usd(spent));
  const lines = [
    `Cost report (${r.periodLabel})`,
    `Decisions: ${r.decisions} (${r.asked} asked a model, ${r.orders} orders, ${r.refused} refused by risk rules)`,
    `Success rate: ${pct(r.successRate)}`,
    `Spend: ${usd(r.totalCostMicro)} total, ${usd(r.avgCostMicro)} per decision`,
    `Today: ${ofCap(r.spentTodayMicro, r.caps?.dailyMicro)} | This month: ${ofCap(r.spentMonthMicro, r.caps?.monthlyMicro)} | Projected month: ${usd(r.projectedMonthMicro, 2)}`,
  ];
  const p = r.payments;
  if (p.settled || p.pending || p.failed) {
    lines.push(`Payments: ${p.settled} settled, ${p.pending} pending, ${p.failed} failed${p.links.length ? ` — latest: ${p.links.join(" ")}` : ""}`);
  }
  if (r.research.calls || r.research.cachedDecisions) {
    lines.push(`Research: ${r.research.calls} paid calls, ${usd(r.research.costMicro)} (in the spend above); ${r.research.cachedDecisions} decisions served from its cache`);
  }
  const free = Object.entries(r.freeDecisions).map(([why, n]) => `${n} ${FREE_REASON[why] ?? why}`);
  if (r.fallbacks || free.length) lines.push(`Fallbacks taken: ${r.fallbacks}${free.length ? ` (free decisions: ${free.join(", ")})` : ""}`);
  const s = r.savers;
  const saved = s.cache.savedMicro + s.batch.savedMicro + s.gate.savedMicro;
  if (s.cache.count || s.batch.count || s.gate.count) {
    lines.push(
      `Saved: ${usd(saved)} — cache ${s.cache.count} (${usd(s.cache.savedMicro)}), batch ${s.batch.count} (${usd(s.batch.savedMicro)}), signal gate ${s.gate.count} (${usd(s.gate.savedMicro)})`,
    );
  }
  if (r.perModel.length) {
    lines.push("By model:");
    for (const m of r.perModel) {
      const latency = m.p50Ms !== undefined ? `, p50 ${m.p50Ms} ms, p95 ${m.p95Ms} ms` : "";
      const calls = m.calls ? `, ${m.calls} calls` : "";
      lines.push(`  ${m.model}: ${m.decisions} decisions${calls}, ${usd(m.costMicro)}, ${pct(m.successRate)} ok${latency}`);
    }
  }
  return lines.join("\n");
}

const FREE_REASON: Record<string, string> = {
  budget: "budget reached",
  balance: "balance too low",
  "all-failed": "all models failed",
  interrupted: "interrupted, not paid twice",
};
