import type { Candle } from "../../domain/types.js";
import { renderPng } from "./render.js";

export interface PriceChartInput {
  symbol: string;
  timeframe: string;
  /** Oldest first; the last one is the candle the decision was made on. */
  candles: Candle[];
  decision?: { action: string; sizePct?: number; confidence?: number; model: string };
  /** How many candles to show (indicators use the ones before too). */
  show?: number;
}

const COLORS: Record<string, string> = { buy: "#1a9850", sell: "#d73027", close: "#d73027", hold: "#777777" };

/** Pads an indicator series (shorter than the candles) on the left, so it lines up with them. */
const align = (values: number[], length: number): (number | null)[] => [...Array(Math.max(0, length - values.length)).fill(null), ...values.slice(-length)];

const stamp = (t: number) => new Date(t).toISOString().slice(5, 16).replace("T", " ");

/** Close price with SMA20, SMA50 and the Bollinger bands, and the decision marked on the last candle. */
export async function priceChart(input: PriceChartInput): Promise<Uint8Array> {
  // Loaded with the first chart: a worker that never draws one never loads it.
  const { BollingerBands, SMA } = await import("technicalindicators");
  const closes = input.candles.map((c) => c.close);
  const n = closes.length;
  const sma20 = align(SMA.calculate({ period: 20, values: closes }), n);
  const sma50 = align(SMA.calculate({ period: 50, values: closes }), n);
  const bb = BollingerBands.calculate({ period: 20, stdDev: 2, values: closes });
  const upper = align(bb.map((b) => b.upper), n);
  const lower = align(bb.map((b) => b.lower), n);
  const show = Math.min(n, input.show ?? 100);
  const cut = <T>(xs: T[]) => xs.slice(n - show);

  const d = input.decision;
  const action = d?.action ?? "hold";
  const marker = cut(closes).map((c, i) => (i === show - 1 && d ? c : null));
  const title = d
    ? `${input.symbol} ${input.timeframe} — ${action.toUpperCase()}${d.sizePct && (action === "buy" || action === "sell") ? ` ${d.sizePct.toFixed(1)}%` : ""}${d.confidence !== undefined ? ` (confidence ${Math.round(d.confidence * 100)}%)` : ""} · ${d.model}`
    : `${input.symbol} ${input.timeframe}`;

  return renderPng({
    type: "line",
    data: {
      labels: cut(input.candles).map((c) => stamp(c.time)),
      datasets: [
        { label: "close", data: cut(closes), borderColor: "#2c7bb6", backgroundColor: "#2c7bb6", borderWidth: 2, pointRadius: 0 },
        { label: "SMA20", data: cut(sma20), borderColor: "#fdae61", backgroundColor: "#fdae61", borderWidth: 1.5, pointRadius: 0 },
        { label: "SMA50", data: cut(sma50), borderColor: "#984ea3", backgroundColor: "#984ea3", borderWidth: 1.5, pointRadius: 0 },
        { label: "Bollinger upper", data: cut(upper), borderColor: "#bbbbbb", borderDash: [4, 4], borderWidth: 1, pointRadius: 0 },
        { label: "Bollinger lower", data: cut(lower), borderColor: "#bbbbbb", borderDash: [4, 4], borderWidth: 1, pointRadius: 0 },
        {
          label: `decision: ${action}`,
          data: marker,
          borderColor: COLORS[action] ?? "#777777",
          backgroundColor: COLORS[action] ?? "#777777",
          pointStyle: action === "buy" ? "triangle" : action === "hold" ? "circle" : "rectRot",
          pointRadius: 9,
          showLine: false,
        },
      ],
    },
    options: {
      plugins: { title: { display: true, text: title, font: { size: 16 } }, legend: { position: "bottom" } },
      scales: { x: { ticks: { maxTicksLimit: 10 } } },
    },
  });
}
