import { randomUUID } from "node:crypto";
import { formatDecision } from "../src/chat/format.js";
import { priceChart } from "../src/chat/charts/priceChart.js";
import type { DecisionRecord } from "../src/ledger/ledger.js";
import { normalizeSymbol } from "../src/market/replay.js";
import { defineCommand, type Needs, type ReplyImage } from "./types.js";

const usage = "/decide SYMBOL";

/** The price chart of a decision: the candles it saw, its indicators, and what it decided. */
async function decisionChart(app: Needs<"config", "market">, record: DecisionRecord): Promise<ReplyImage> {
  const candles = await app.services.market.closedCandles(record.symbol, 150);
  const png = await priceChart({
    symbol: record.symbol,
    timeframe: app.config.market.timeframe,
    candles,
    decision: {
      action: record.action ?? "none",
      ...(record.sizePct !== undefined ? { sizePct: record.sizePct } : {}),
      ...(record.confidence !== undefined ? { confidence: record.confidence } : {}),
      model: record.model,
    },
  });
  const base = record.symbol.split("/")[0]!.toLowerCase();
  return { png, name: `${base}-decision.png`, alt: `${record.symbol}: price, SMA20/50, Bollinger bands, and the decision (${(record.action ?? "none").toUpperCase()})` };
}

export const decide = defineCommand<string, Needs<"symbols" | "decide" | "mode" | "log" | "config", "state" | "models" | "market">>({
  name: "decide",
  summary: "Ask the agent for a decision on a symbol now, and trade it if the risk rules allow",
  usage,
  example: "/decide BTC",
  minRole: "trader",
  mutates: true,
  remote: true,
  options: [{ name: "symbol", description: "The market to decide on", kind: "symbol", required: true }],
  parse(args, { app }) {
    const watched = app.symbols.map((s) => s.split("/")[0]).join(", ");
    if (args.length !== 1) return { ok: false, error: `Usage: ${usage}, e.g. /decide BTC. Watched symbols: ${watched}.` };
    const symbol = normalizeSymbol(args[0]!, app.symbols);
    if (!symbol) return { ok: false, error: `Unknown symbol "${args[0]!.slice(0, 20)}". Watched symbols: ${watched}. Example: /decide BTC` };
    return { ok: true, value: symbol };
  },
  async run(symbol, { app, user, progress, requestId }) {
    // Name the model only when it is pinned: otherwise the router picks one by policy per decision.
    const pinned = await app.services.state.chosenModel();
    const by = pinned ? `with ${pinned}` : app.services.models.routerEnabled ? "(model chosen by policy)" : `with ${app.services.models.chain()[0]!.id}`;
    await progress?.(`Deciding on ${symbol.split("/")[0]} ${by}…`);
    const record = await app.decide({ decisionId: `chat:${symbol}:${requestId ?? randomUUID()}`, symbol, trigger: "chat" }, user);
    const text = formatDecision(record, { paper: app.mode.trading === "paper" });
    if (!record.indicators) return { text };
    try {
      return { text, image: await decisionChart(app, record) };
    } catch (err) {
      app.log.warn(`decision chart for ${symbol} failed`, err);
      return { text };
    }
  },
});
