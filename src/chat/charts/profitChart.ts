import type { PeriodRow } from "../../profit/profit.js";
import type { ReplyImage } from "../types.js";
import { renderPng } from "./render.js";

/**
 * The period table as bars, oldest on the left: realized P&L, buy fees and AI spend (as costs,
 * below zero), and the net as a line. A month of days reads better as a picture than as rows.
 */
export async function profitChart(rows: PeriodRow[], title: string, quote: string): Promise<ReplyImage> {
  const ordered = [...rows].reverse();
  const png = await renderPng({
    type: "bar",
    data: {
      labels: ordered.map((r) => r.label.replace("week of ", "")),
      datasets: [
        { type: "line", label: "Net", data: ordered.map((r) => r.net), borderColor: "#1a1a1a", backgroundColor: "#1a1a1a", pointRadius: 3, order: 0 },
        { label: "Realized", data: ordered.map((r) => r.realized), backgroundColor: ordered.map((r) => (r.realized >= 0 ? "#1a9641" : "#d7191c")), order: 1 },
        { label: "Buy fees", data: ordered.map((r) => -r.entryFees), backgroundColor: "#fdae61", order: 1 },
        { label: "AI spend", data: ordered.map((r) => -r.aiSpend), backgroundColor: "#2c7bb6", order: 1 },
      ],
    },
    options: {
      plugins: { title: { display: true, text: title, font: { size: 15 } }, legend: { position: "bottom" } },
      scales: { y: { title: { display: true, text: quote } } },
    },
  } as Parameters<typeof renderPng>[0]);
  return { png, name: `${title.split(" ")[0]!.toLowerCase()}-profit.png`, alt: `${title}: realized P&L, buy fees and AI spend per period, and the net` };
}
