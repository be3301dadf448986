// The backtest as a PNG: equity curves (strategy, strategy after its AI bill, buy-and-hold, SMA
// crossover) above, the strategy's drawdown below. chart.js draws into @napi-rs/canvas (its
// binary ships inside the npm package: no download, no native build).
import { createCanvas } from "@napi-rs/canvas";
import { Chart, registerables, type ChartConfiguration } from "chart.js";
import type { BacktestResult, CurvePoint } from "./engine.js";
import { drawdownSeries } from "./metrics.js";

Chart.register(...registerables);

const WIDTH = 1200;
const TOP = 520;
const BOTTOM = 240;
/** More points than pixels only slows the drawing. */
const MAX_POINTS = 1500;

function thin(points: CurvePoint[]): CurvePoint[] {
  if (points.length <= MAX_POINTS) return points;
  const step = points.length / MAX_POINTS;
  const out: CurvePoint[] = [];
  for (let i = 0; i < MAX_POINTS; i++) out.push(points[Math.floor(i * step)]!);
  out.push(points[points.length - 1]!);
  return out;
}

const day = (t: number) => new Date(t).toISOString().slice(0, 10);

function draw(config: ChartConfiguration, width: number, height: number) {
  const canvas = createCanvas(width, height);
  const ctx = canvas.getContext("2d");
  ctx.fillStyle = "#ffffff";
  ctx.fillRect(0, 0, width, height);
  // chart.js only needs the 2D context API, which @napi-rs/canvas provides.
  const chart = new Chart(ctx as unknown as ConstructorParameters<typeof Chart>[0], config);
  chart.draw();
  // destroy() clears the canvas: the caller copies the picture first.
  return { canvas, done: () => chart.destroy() };
}

export function renderChart(result: BacktestResult): Buffer {
  const r = result.report;
  const xy = (pts: CurvePoint[]) => thin(pts).map((p) => ({ x: p.time, y: p.equity }));
  const axis = {
    type: "linear" as const,
    ticks: { callback: (v: string | number) => day(Number(v)), maxTicksLimit: 8 },
  };
  const common = { responsive: false, animation: false as const, devicePixelRatio: 1, parsing: false as const, elements: { point: { radius: 0 }, line: { borderWidth: 1.5 } } };
  const ai = r.strategy.aiSpend > 0;
  const equity = draw(
    {
      type: "line",
      data: {
        datasets: [
          { label: `strategy (${r.model.id})`, data: xy(result.curves.strategy), borderColor: "#1f77b4", backgroundColor: "#1f77b4" },
          ...(ai ? [{ label: `strategy after AI spend ($${r.strategy.aiSpend.toFixed(2)})`, data: xy(result.curves.strategyAfterAi), borderColor: "#d62728", backgroundColor: "#d62728", borderDash: [6, 3] }] : []),
          { label: "buy and hold", data: xy(result.curves.buyAndHold), borderColor: "#7f7f7f", backgroundColor: "#7f7f7f" },
          { label: `buy and hold at ${r.exposureMatched.exposurePct.toFixed(0)}% (the strategy's exposure)`, data: xy(result.curves.exposureMatched), borderColor: "#bcbd22", backgroundColor: "#bcbd22" },
          { label: "SMA 20/50 crossover", data: xy(result.curves.smaCrossover), borderColor: "#2ca02c", backgroundColor: "#2ca02c" },
        ],
      },
      options: {
        ...common,
        plugins: { title: { display: true, text: `${r.symbol} ${r.timeframe} backtest ${r.from} → ${r.to}: equity (${r.settings.startingCash} start)` }, legend: { position: "top" } },
        scales: { x: axis, y: { title: { display: true, text: "equity" } } },
      },
    } as ChartConfiguration,
    WIDTH,
    TOP,
  );
  // Drawdown net of the AI spend, as the report's figures.
  const dd = drawdownSeries(result.curves.strategyAfterAi.map((p) => p.equity));
  const ddPoints = result.curves.strategyAfterAi.map((p, i) => ({ time: p.time, equity: dd[i]! }));
  const drawdown = draw(
    {
      type: "line",
      data: { datasets: [{ label: "strategy drawdown %", data: xy(ddPoints), borderColor: "#d62728", backgroundColor: "rgba(214,39,40,0.15)", fill: true }] },
      options: { ...common, plugins: { legend: { position: "top" } }, scales: { x: axis, y: { max: 0, title: { display: true, text: "% below peak" } } } },
    } as ChartConfiguration,
    WIDTH,
    BOTTOM,
  );
  const out = createCanvas(WIDTH, TOP + BOTTOM);
  const ctx = out.getContext("2d");
  ctx.drawImage(equity.canvas, 0, 0);
  ctx.drawImage(drawdown.canvas, 0, TOP);
  equity.done();
  drawdown.done();
  return out.toBuffer("image/png");
}
