import { fromMicro, type MicroUsdc } from "../domain/types.js";
import { dayKey, monthKey, type ChargeRecord, type DecisionRecord } from "./ledger.js";

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
  perModel: { model: string; decisions: number; costMicro: MicroUsdc; successRate: number }[];
  spentTodayMicro: MicroUsdc;
  spentMonthMicro: MicroUsdc;
  projectedMonthMicro: MicroUsdc;
}

/** Builds the cost report from ledger records. Pure: the same records give the same report. */
export function buildReport(
  decisions: DecisionRecord[],
  charges: ChargeRecord[],
  monthCharges: ChargeRecord[],
  now: number,
  periodLabel: string,
): CostReport {
  const asked = decisions.filter((d) => d.outcome !== "skipped");
  const succeeded = asked.filter((d) => d.outcome !== "failed");
  const totalCostMicro = charges.reduce((s, c) => s + c.costMicro, 0);
  const byModel = new Map<string, { decisions: number; ok: number; costMicro: number }>();
  for (const d of asked) {
    const m = byModel.get(d.model) ?? { decisions: 0, ok: 0, costMicro: 0 };
    m.decisions++;
    if (d.outcome !== "failed") m.ok++;
    byModel.set(d.model, m);
  }
  for (const c of charges) {
    const m = byModel.get(c.model) ?? { decisions: 0, ok: 0, costMicro: 0 };
    m.costMicro += c.costMicro;
    byModel.set(c.model, m);
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
      .map(([model, m]) => ({ model, decisions: m.decisions, costMicro: m.costMicro, successRate: m.decisions ? m.ok / m.decisions : 1 }))
      .sort((a, b) => b.decisions - a.decisions),
    spentTodayMicro,
    spentMonthMicro,
    projectedMonthMicro: Math.round((spentMonthMicro / daysElapsed) * daysInMonth),
  };
}

export const usd = (micro: MicroUsdc, digits = 4): string => `$${fromMicro(micro).toFixed(digits)}`;
const pct = (x: number) => `${(x * 100).toFixed(1)}%`;

export function formatReport(r: CostReport): string {
  const lines = [
    `Cost report (${r.periodLabel})`,
    `Decisions: ${r.decisions} (${r.asked} asked a model, ${r.orders} orders, ${r.refused} refused by risk rules)`,
    `Success rate: ${pct(r.successRate)}`,
    `Spend: ${usd(r.totalCostMicro)} total, ${usd(r.avgCostMicro)} per decision`,
    `Today: ${usd(r.spentTodayMicro)} | This month: ${usd(r.spentMonthMicro)} | Projected month: ${usd(r.projectedMonthMicro, 2)}`,
  ];
  if (r.perModel.length) {
    lines.push("By model:");
    for (const m of r.perModel) {
      lines.push(`  ${m.model}: ${m.decisions} decisions, ${usd(m.costMicro)}, ${pct(m.successRate)} ok`);
    }
  }
  return lines.join("\n");
}
