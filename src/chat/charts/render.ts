import { createCanvas } from "@napi-rs/canvas";
import { Chart, registerables, type ChartConfiguration, type ChartItem, type Plugin } from "chart.js";

let ready = false;

function setup(): void {
  if (ready) return;
  Chart.register(...registerables);
  Chart.defaults.font.family = "'DejaVu Sans', Arial, Helvetica, sans-serif";
  Chart.defaults.color = "#333";
  ready = true;
}

// Chats show a transparent PNG on a dark theme as black on black: paint a white page first.
const whitePage: Plugin = {
  id: "whitePage",
  beforeDraw(chart) {
    const { ctx, width, height } = chart;
    ctx.save();
    ctx.fillStyle = "#ffffff";
    ctx.fillRect(0, 0, width, height);
    ctx.restore();
  },
};

/** Renders a chart.js chart to PNG bytes on the server (no browser, no download at install). */
export async function renderPng(config: ChartConfiguration, width = 900, height = 450): Promise<Uint8Array> {
  setup();
  const canvas = createCanvas(width, height);
  const chart = new Chart(canvas.getContext("2d") as unknown as ChartItem, {
    ...config,
    options: { ...config.options, responsive: false, animation: false, devicePixelRatio: 1 },
    plugins: [whitePage, ...(config.plugins ?? [])],
  } as ChartConfiguration);
  try {
    return new Uint8Array(await canvas.encode("png"));
  } finally {
    chart.destroy();
  }
}

const PNG_SIGNATURE = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];

/** True for bytes that start like a PNG and end with its IEND chunk. */
export function isPng(bytes: Uint8Array): boolean {
  if (bytes.length < 20 || !PNG_SIGNATURE.every((b, i) => bytes[i] === b)) return false;
  const tail = Buffer.from(bytes.subarray(bytes.length - 8, bytes.length - 4)).toString("latin1");
  return tail === "IEND";
}
