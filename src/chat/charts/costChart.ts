import { dayKey, type ChargeRecord } from "../../ledger/ledger.js";
import { renderPng } from "./render.js";

const PALETTE = ["#2c7bb6", "#d7191c", "#fdae61", "#1a9641", "#984ea3", "#a6611a", "#80cdc1", "#636363"];

export interface SpendSeries {
  days: string[];
  /** USDC per day, one series per model. */
  perModel: { model: string; usdc: number[] }[];
}

/** Spend per UTC day and per model, for the `days` days ending with `now`'s day. Pure. */
export function spendSeries(charges: ChargeRecord[], now: number, days = 14): SpendSeries {
  const today = Date.UTC(new Date(now).getUTCFullYear(), new Date(now).getUTCMonth(), new Date(now).getUTCDate());
  const keys = Array.from({ length: days }, (_, i) => dayKey(today - (days - 1 - i) * 86_400_000));
  const index = new Map(keys.map((k, i) => [k, i]));
  const byModel = new Map<string, number[]>();
  for (const c of charges) {
    const i = index.get(dayKey(c.time));
    if (i === undefined) continue;
    const row = byModel.get(c.model) ?? Array(days).fill(0);
    // Summed in micro-USDC (integers) so the totals are exact.
    row[i] += c.costMicro;
    byModel.set(c.model, row);
  }
  return {
    days: keys,
    perModel: [...byModel.entries()].map(([model, micro]) => ({ model, usdc: micro.map((m) => m / 1_000_000) })).sort((a, b) => a.model.localeCompare(b.model)),
  };
}

/** A stacked bar chart of model spend per day. */
export async function costChart(s: SpendSeries): Promise<Uint8Array> {
  const total = s.perModel.reduce((sum, m) => sum + m.usdc.reduce((a, b) => a + b, 0), 0);
  const title = `Model spend per day and per model (USDC), ${s.days[0]} to ${s.days.at(-1)}: $${total.toFixed(4)}${total === 0 ? " (nothing paid: offline engine)" : ""}`;
  const series = s.perModel.length ? s.perModel : [{ model: "no charges", usdc: s.days.map(() => 0) }];
  return renderPng({
    type: "bar",
    data: {
      labels: s.days.map((d) => d.slice(5)),
      datasets: series.map((m, i) => ({ label: m.model, data: m.usdc, backgroundColor: PALETTE[i % PALETTE.length] })),
    },
    options: {
      plugins: { title: { display: true, text: title, font: { size: 15 } }, legend: { position: "bottom" } },
      scales: { x: { stacked: true }, y: { stacked: true, beginAtZero: true, title: { display: true, text: "USDC" } } },
    },
  });
}
