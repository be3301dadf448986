import { INTERVAL_MAX_MS, INTERVAL_MIN_MS, intervalText, parseInterval, symbolOf } from "../src/queue/runtimeSchedule.js";
import type { MarketSymbol } from "../src/domain/types.js";
import { defineCommand, type Needs } from "./types.js";

type SymbolsArgs = { kind: "list" } | { kind: "add" | "remove"; symbol: MarketSymbol };

const symbolsUsage = "/symbols [add|remove SYMBOL]";
const clockTime = (t: number) => new Date(t).toISOString().slice(11, 19) + " UTC";
const bases = (list: MarketSymbol[]) => list.map((s) => s.split("/")[0]).join(", ");

/** Where the symbols or interval in force come from, in words (the precedence docs/control.md describes). */
function origin(from: "chat" | "config", by: string | undefined, at: number | undefined, setting: string): string {
  return from === "chat" ? `set from chat${by ? ` by ${by}` : ""}${at ? ` at ${new Date(at).toISOString().slice(0, 16).replace("T", " ")} UTC` : ""}, kept in Redis; ${setting} applies only at a first start` : `from ${setting} (no change from chat stored)`;
}

export const symbolsCommand = defineCommand<SymbolsArgs, Needs<"control", "quote">>({
  name: "symbols",
  summary: "The symbols the agent decides on; add or remove one (every process, at once, kept across restarts)",
  usage: symbolsUsage,
  example: "/symbols add SOL",
  minRole: "admin",
  mutates: (args) => args.kind !== "list",
  options: [
    { name: "change", description: "add or remove; empty to list", kind: "choice", choices: ["add", "remove"], required: false },
    { name: "symbol", description: "The symbol, e.g. SOL or SOL/USDT", kind: "string", required: false },
  ],
  parse(args, { app }) {
    const help = `Usage: ${symbolsUsage}, e.g. /symbols add SOL or /symbols remove DOGE; /symbols alone lists them.`;
    if (args.length === 0) return { ok: true, value: { kind: "list" } };
    const verb = args[0]!.toLowerCase();
    if (args.length !== 2 || (verb !== "add" && verb !== "remove")) return { ok: false, error: help };
    const symbol = symbolOf(args[1]!, app.services.quote);
    if (!symbol) return { ok: false, error: `"${args[1]!.slice(0, 20)}" is not a symbol. ${help}` };
    return { ok: true, value: { kind: verb, symbol } };
  },
  async run(args, { app, user }) {
    const c = app.control;
    const now = c.symbols();
    if (args.kind === "list") {
      const src = await c.source();
      return { text: `Symbols: ${now.join(", ")} (${origin(src.symbols, src.by, src.at, `SYMBOLS=${src.configSymbols.join(",")}`)}).\nChange with ${symbolsUsage}.` };
    }
    if (args.kind === "add") {
      if (now.includes(args.symbol)) return { text: `${args.symbol} is already watched; nothing was changed. Symbols: ${bases(now)}.`, error: true };
      const known = await c.known();
      if (!known.includes(args.symbol)) {
        const sample = known.length > 12 ? `${known.slice(0, 12).join(", ")}, … (${known.length} in all)` : known.join(", ");
        return { text: `Unknown symbol ${args.symbol}: the market does not list it (it has ${sample || "none"}). Nothing was changed.`, error: true };
      }
      const out = await c.change({ symbols: [...now, args.symbol] }, user.name);
      return { text: `Added ${args.symbol}. Symbols now: ${bases(c.symbols())}, on every process (kept across restarts). Its first scheduled decision: ${clockTime(out.firstDecisionAt)}; /decide ${args.symbol.split("/")[0]} for one now.` };
    }
    if (!now.includes(args.symbol)) return { text: `${args.symbol} is not watched; nothing was changed. Symbols: ${bases(now)}.`, error: true };
    if (now.length === 1) return { text: `${args.symbol} is the only symbol left; add another before removing it. Nothing was changed.`, error: true };
    await c.change({ symbols: now.filter((s) => s !== args.symbol) }, user.name);
    return { text: `Removed ${args.symbol}: no more scheduled decisions for it, on every process (kept across restarts). An open position in it keeps its stop loss and take profit. Symbols now: ${bases(c.symbols())}.` };
  },
});

const intervalUsage = "/interval [DURATION]";

export const intervalCommand = defineCommand<number | undefined, Needs<"control">>({
  name: "interval",
  summary: "The time between scheduled decisions; change it (every process, at once, kept across restarts)",
  usage: intervalUsage,
  example: "/interval 15m",
  minRole: "admin",
  mutates: (args) => args !== undefined,
  options: [{ name: "duration", description: "e.g. 15m, 1h, 90s; empty to show it", kind: "string", required: false }],
  parse(args) {
    const range = `from ${intervalText(INTERVAL_MIN_MS)} to ${intervalText(INTERVAL_MAX_MS)}`;
    const help = `Usage: ${intervalUsage}, e.g. /interval 15m, /interval 1h or /interval 90s (${range}).`;
    if (args.length === 0) return { ok: true, value: undefined };
    if (args.length !== 1) return { ok: false, error: help };
    const ms = parseInterval(args[0]!);
    if (ms === undefined) return { ok: false, error: `"${args[0]!.slice(0, 20)}" is not a duration. ${help} Nothing was changed.` };
    if (ms < INTERVAL_MIN_MS || ms > INTERVAL_MAX_MS) return { ok: false, error: `The interval must be ${range}, got ${intervalText(ms)}. Nothing was changed.` };
    return { ok: true, value: ms };
  },
  async run(ms, { app, user }) {
    const c = app.control;
    if (ms === undefined) {
      const src = await c.source();
      return { text: `Decisions every ${intervalText(c.intervalMs())} (${origin(src.interval, src.by, src.at, `DECISION_INTERVAL_SECONDS=${src.configIntervalMs / 1000}`)}).\nChange with ${intervalUsage}, e.g. /interval 15m.` };
    }
    const before = c.intervalMs();
    if (ms === before) return { text: `Decisions already come every ${intervalText(ms)}; nothing was changed.` };
    const out = await c.change({ intervalMs: ms }, user.name);
    return { text: `Decision interval: ${intervalText(before)} → ${intervalText(ms)}, on every process (kept across restarts). Next scheduled decisions: ${clockTime(out.firstDecisionAt)}.` };
  },
});
