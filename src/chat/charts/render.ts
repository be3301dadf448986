import type { ChartConfiguration, ChartItem, Plugin } from "chart.js";

// Loaded on first use: a machine where the native canvas cannot load still runs every command,
// only without pictures (the callers catch the error and send the text alone).
let loaded: Promise<{ createCanvas: typeof import("@napi-rs/canvas").createCanvas; Chart: typeof import("chart.js").Chart }> | undefined;

function load() {
  loaded ??= (async () => {
    const [{ createCanvas, GlobalFonts }, { Chart, registerables }] = await Promise.all([import("@napi-rs/canvas"), import("chart.js")]);
    Chart.register(...registerables);
    Chart.defaults.font.family = "'DejaVu Sans', Arial, Helvetica, sans-serif";
    Chart.defaults.color = "#333";
    // @napi-rs/canvas draws text with the system's fonts; a slim image may have none.
    if (GlobalFonts.families.length === 0) process.stderr.write("charts: no fonts on this system, so chart labels will not show (install fonts-dejavu-core)\n");
    return { createCanvas, Chart };
  })();
  return loaded;
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
  const { createCanvas, Chart } = await load();
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
