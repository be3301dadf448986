import { randomUUID } from "node:crypto";
import { formatDecision } from "../src/chat/format.js";
import { normalizeSymbol } from "../src/market/replay.js";
import { defineCommand } from "./types.js";

const usage = "/decide SYMBOL";

export const decide = defineCommand<string>({
  name: "decide",
  summary: "Ask the agent for a decision on a symbol now, and trade it if the risk rules allow",
  usage,
  example: "/decide BTC",
  minRole: "trader",
  parse(args, { app }) {
    const watched = app.symbols.map((s) => s.split("/")[0]).join(", ");
    if (args.length !== 1) return { ok: false, error: `Usage: ${usage}, e.g. /decide BTC. Watched symbols: ${watched}.` };
    const symbol = normalizeSymbol(args[0]!, app.symbols);
    if (!symbol) return { ok: false, error: `Unknown symbol "${args[0]!.slice(0, 20)}". Watched symbols: ${watched}. Example: /decide BTC` };
    return { ok: true, value: symbol };
  },
  async run(symbol, { app, user }) {
    const record = await app.decide({ decisionId: `chat:${symbol}:${randomUUID()}`, symbol, trigger: "chat" }, user);
    return { text: formatDecision(record, { paper: app.mode.trading === "paper" }) };
  },
});
