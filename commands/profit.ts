// What the trading earned, from the books, for every platform: /profit, /daily, /weekly,
// /monthly, /performance, /trades and /export. The figures are computed in src/profit (pure); this
// file reads the arguments, reads the books, and words the answer.
import { profitChart } from "../src/chat/charts/profitChart.js";
import { normalizeSymbol } from "../src/market/replay.js";
import { dayKey } from "../src/ledger/ledger.js";
import { accountFigures, type ProfitBooks } from "../src/profit/books.js";
import { decisionsCsv, tradesCsv } from "../src/profit/csv.js";
import { bestAndWorst, figures, lastPeriods, performanceBySymbol, periodStart, periodTable, signed, textTable, type Period, type PeriodFigures } from "../src/profit/profit.js";
import { defineCommand, type CommandReply, type Needs, type ParseResult } from "./types.js";

type ProfitHost = Needs<"symbols" | "mode" | "log", "portfolio" | "ledger" | "market" | "exchange" | "quote" | "clock">;

const books = (app: ProfitHost): ProfitBooks => app.services;
const paperTag = (app: ProfitHost) => (app.mode.trading === "paper" ? " [PAPER]" : "");
const when = (t: number) => new Date(t).toISOString().slice(0, 16).replace("T", " ");
const base = (symbol: string) => symbol.split("/")[0]!;

/** A whole number from `min` to `max`, or a message that says how to write it. */
function count(raw: string | undefined, dflt: number, max: number, usage: string, what: string): ParseResult<number> {
  if (raw === undefined) return { ok: true, value: dflt };
  if (!/^\d{1,6}$/.test(raw) || Number(raw) < 1 || Number(raw) > max) {
    return { ok: false, error: `"${raw.slice(0, 20)}" is not a number of ${what} from 1 to ${max}. Usage: ${usage}, e.g. ${usage.split(" ")[0]} ${Math.min(dflt, max)}.` };
  }
  return { ok: true, value: Number(raw) };
}

function figureLine(f: PeriodFigures, quote: string): string {
  return `realized ${signed(f.realized)} ${quote} · ${f.trades} trade(s) · fees ${f.fees.toFixed(2)} · AI ${f.aiSpend.toFixed(4)} USDC · net ${signed(f.net)}`;
}

export const profit = defineCommand<undefined, ProfitHost>({
  name: "profit",
  summary: "What the trading earned: since start, today, best and worst trades",
  usage: "/profit",
  minRole: "viewer",
  parse: (args) => (args.length === 0 ? { ok: true, value: undefined } : { ok: false, error: "/profit takes no arguments. For a period use /daily, /weekly or /monthly; per symbol /performance." }),
  async run(_, { app }) {
    const b = books(app);
    const now = b.clock();
    const today = periodStart(now, "day");
    const [account, fills, charges, closed] = await Promise.all([accountFigures(b), b.portfolio.fills(), b.ledger.charges(0, now), b.portfolio.closedTrades(10_000)]);
    const all = figures(fills, charges);
    // Since start, the realized P&L is the portfolio's own total (it holds fills booked before the trade history was kept).
    const realized = account.realized;
    const net = realized - all.entryFees - all.aiSpend;
    const day = figures(
      fills.filter((f) => f.time >= today),
      charges.filter((c) => c.time >= today),
    );
    const q = b.quote;
    const lines = [
      `Profit${paperTag(app)}, from the books`,
      `Since start: realized ${signed(realized)} ${q} · ${all.trades} trade(s) · fees ${all.fees.toFixed(2)} · AI ${all.aiSpend.toFixed(4)} USDC · net ${signed(net)}`,
      `Open: ${account.positions.length} position(s) · unrealized ${signed(account.unrealized)} ${q} · equity ${account.equity.toFixed(2)} ${q} · exposure ${account.exposure.toFixed(2)} ${q}`,
      `Today (${dayKey(now)} UTC): ${figureLine(day, q)}`,
    ];
    const bw = bestAndWorst(closed);
    if (bw) {
      const wins = closed.filter((c) => c.pnl > 0).length;
      lines.push(
        `Round trips closed: ${closed.length}, ${wins} won (${((wins / closed.length) * 100).toFixed(0)}%)`,
        `Best: ${bw.best.symbol} ${signed(bw.best.pnl)} ${q} (closed ${when(bw.best.time)} UTC)`,
        `Worst: ${bw.worst.symbol} ${signed(bw.worst.pnl)} ${q} (closed ${when(bw.worst.time)} UTC)`,
      );
    } else lines.push("No round trip closed yet: best and worst trades come with the first sell that closes a position.");
    lines.push("Net = realized (net of sell fees) − buy fees − AI spend. /daily, /weekly, /monthly for a table.");
    return { text: lines.join("\n") };
  },
});

const PERIODS: Record<"daily" | "weekly" | "monthly", { period: Period; dflt: number; max: number; word: string }> = {
  daily: { period: "day", dflt: 7, max: 90, word: "days" },
  weekly: { period: "week", dflt: 4, max: 52, word: "weeks" },
  monthly: { period: "month", dflt: 6, max: 24, word: "months" },
};

const periodCommand = (name: keyof typeof PERIODS) => {
  const p = PERIODS[name];
  const usage = `/${name} [N]`;
  return defineCommand<number, ProfitHost>({
    name,
    summary: `Realized P&L, trades, fees, AI spend and net per ${p.period}, the last N ${p.word} (default ${p.dflt})`,
    usage,
    example: `/${name} ${Math.min(p.dflt * 2, p.max)}`,
    minRole: "viewer",
    options: [{ name: "count", description: `How many ${p.word} (1 to ${p.max})`, kind: "number", required: false, min: 1, max: p.max }],
    parse(args) {
      if (args.length > 1) return { ok: false, error: `Usage: ${usage}, with N from 1 to ${p.max} ${p.word}.` };
      return count(args[0], p.dflt, p.max, usage, p.word);
    },
    async run(n, { app }) {
      const b = books(app);
      const buckets = lastPeriods(b.clock(), p.period, n);
      const from = buckets.at(-1)!.start;
      const to = buckets[0]!.end - 1;
      const [fills, charges] = await Promise.all([b.portfolio.fills(from, to), b.ledger.charges(from, to)]);
      const rows = periodTable(fills, charges, buckets);
      const total = figures(fills, charges);
      const table = textTable(
        [p.period === "week" ? "Week of" : p.period === "month" ? "Month" : "Day", "Realized", "Trades", "Fees", "AI", "Net"],
        [
          ...rows.map((r) => [r.label.replace("week of ", ""), signed(r.realized), String(r.trades), r.fees.toFixed(2), r.aiSpend.toFixed(4), signed(r.net)]),
          ["Total", signed(total.realized), String(total.trades), total.fees.toFixed(2), total.aiSpend.toFixed(4), signed(total.net)],
        ],
      );
      const title = `${name[0]!.toUpperCase()}${name.slice(1)} profit${paperTag(app)}`;
      const reply: CommandReply = { text: `${title}, ${b.quote} (AI in USDC), UTC:\n${table}\nNet = realized − buy fees − AI spend.` };
      // A picture only where there is something to see: several periods, and a trade or a charge among them.
      if (rows.length < 2 || (total.trades === 0 && total.aiSpend === 0)) return reply;
      try {
        return { ...reply, image: await profitChart(rows, `${title}, last ${rows.length} ${p.word}`, b.quote) };
      } catch (err) {
        app.log.warn(`/${name} chart failed`, err);
        return reply;
      }
    },
  });
};

export const daily = periodCommand("daily");
export const weekly = periodCommand("weekly");
export const monthly = periodCommand("monthly");

export const performance = defineCommand<string | undefined, ProfitHost>({
  name: "performance",
  summary: "Per symbol: trades, round trips, win rate, realized P&L, fees",
  usage: "/performance [SYMBOL]",
  example: "/performance BTC",
  minRole: "viewer",
  options: [{ name: "symbol", description: "One market only", kind: "symbol", required: false }],
  parse(args, { app }) {
    if (args.length === 0) return { ok: true, value: undefined };
    const symbol = args.length === 1 ? normalizeSymbol(args[0]!, app.symbols) : undefined;
    if (!symbol) return { ok: false, error: `Unknown symbol "${args.join(" ").slice(0, 20)}". Usage: /performance [SYMBOL], e.g. /performance BTC. Watched symbols: ${app.symbols.map(base).join(", ")}.` };
    return { ok: true, value: symbol };
  },
  async run(symbol, { app }) {
    const b = books(app);
    const [fills, closed] = await Promise.all([b.portfolio.fills(), b.portfolio.closedTrades(10_000)]);
    const rows = performanceBySymbol(fills, closed).filter((r) => !symbol || r.symbol === symbol);
    if (rows.length === 0) return { text: `No trades${symbol ? ` in ${symbol}` : ""} on the books yet.` };
    const table = textTable(
      ["Symbol", "Trades", "Round trips", "Win rate", "Realized", "Fees"],
      rows.map((r) => [r.symbol, String(r.fills), String(r.roundTrips), r.winRate === undefined ? "-" : `${(r.winRate * 100).toFixed(0)}%`, signed(r.realized), r.fees.toFixed(2)]),
    );
    return { text: `Performance${paperTag(app)}, ${b.quote}:\n${table}\nWin rate counts closed round trips; realized is net of sell fees.` };
  },
});

const MAX_TRADES = 50;

export const trades = defineCommand<number, ProfitHost>({
  name: "trades",
  summary: `The last N trades with their ids (default 10, at most ${MAX_TRADES})`,
  usage: "/trades [N]",
  example: "/trades 20",
  minRole: "viewer",
  options: [{ name: "count", description: `How many (1 to ${MAX_TRADES})`, kind: "number", required: false, min: 1, max: MAX_TRADES }],
  parse(args) {
    if (args.length > 1) return { ok: false, error: `Usage: /trades [N], with N from 1 to ${MAX_TRADES}.` };
    return count(args[0], 10, MAX_TRADES, "/trades [N]", "trades");
  },
  async run(n, { app }) {
    const b = books(app);
    const fills = await b.portfolio.recentFills(n);
    if (fills.length === 0) return { text: "No trades on the books yet." };
    const q = b.quote;
    const lines = fills.map(
      (f) =>
        `${when(f.time)}  ${f.side.toUpperCase().padEnd(4)} ${f.qty.toPrecision(6)} ${base(f.symbol)} @ ${f.price.toPrecision(8)} = ${(f.qty * f.price).toFixed(2)} ${q} · fee ${f.fee.toFixed(4)}${f.side === "sell" || f.realized !== 0 ? ` · P&L ${signed(f.realized)}` : ""}  id ${f.orderId}`,
    );
    return { text: `Last ${fills.length} trade(s)${paperTag(app)}, newest first (UTC):\n${lines.join("\n")}` };
  },
});

interface ExportArgs {
  what: "trades" | "decisions";
  from: number;
  /** Exclusive. */
  to: number;
  /** The range as asked, for the reply and the file name. */
  range?: { from: string; to: string };
}

const EXPORT_USAGE = "/export trades|decisions [FROM [TO]]";
// Discord takes 10 MiB per message from a bot in a server without boosts, Telegram 50 MB: under both.
const MAX_EXPORT_BYTES = 8 * 1024 * 1024;
const DATE = /^\d{4}-\d{2}-\d{2}$/;

function parseDay(raw: string): number | undefined {
  if (!DATE.test(raw)) return undefined;
  const t = Date.parse(`${raw}T00:00:00.000Z`);
  // Date.parse rolls 2026-02-30 over to March: a real day reads back the same.
  return Number.isFinite(t) && new Date(t).toISOString().slice(0, 10) === raw ? t : undefined;
}

export const exportBooks = defineCommand<ExportArgs, ProfitHost>({
  name: "export",
  summary: "The trades or the decisions as a CSV file, optionally between two UTC days (both included)",
  usage: EXPORT_USAGE,
  example: "/export trades 2026-01-01 2026-01-31",
  // A bulk copy of the books, as a file that travels on outside the chat: for the people who trade, not for onlookers.
  minRole: "trader",
  personal: true,
  options: [
    { name: "what", description: "trades or decisions", kind: "choice", choices: ["trades", "decisions"], required: true },
    { name: "from", description: "First UTC day, YYYY-MM-DD", kind: "string", required: false },
    { name: "to", description: "Last UTC day, YYYY-MM-DD (included; default today)", kind: "string", required: false },
  ],
  parse(args, { app }) {
    const help = `Usage: ${EXPORT_USAGE}, e.g. /export trades or /export decisions 2026-01-01 2026-01-31 (UTC days, both included).`;
    const what = args[0]?.toLowerCase();
    if (args.length < 1 || args.length > 3 || (what !== "trades" && what !== "decisions")) return { ok: false, error: args[0] ? `"${args[0].slice(0, 20)}" is not trades or decisions. ${help}` : help };
    if (args.length === 1) return { ok: true, value: { what, from: 0, to: Number.MAX_SAFE_INTEGER } };
    const from = parseDay(args[1]!);
    if (from === undefined) return { ok: false, error: `"${args[1]!.slice(0, 20)}" is not a day written YYYY-MM-DD. ${help}` };
    const toDay = args[2] ?? dayKey(app.services.clock());
    const to = parseDay(toDay);
    if (to === undefined) return { ok: false, error: `"${toDay.slice(0, 20)}" is not a day written YYYY-MM-DD. ${help}` };
    if (to < from) return { ok: false, error: `The last day (${toDay}) is before the first (${args[1]}). ${help}` };
    return { ok: true, value: { what, from, to: to + 86_400_000, range: { from: args[1]!, to: toDay } } };
  },
  async run(a, { app }): Promise<CommandReply> {
    const b = books(app);
    const tooBig = (rows: number, csv: string): CommandReply | undefined =>
      Buffer.byteLength(csv) > MAX_EXPORT_BYTES
        ? { text: `${rows} rows make ${(Buffer.byteLength(csv) / 1048576).toFixed(1)} MB of CSV, more than a chat takes (${MAX_EXPORT_BYTES / 1048576} MB): ask for a shorter range, e.g. one month: ${EXPORT_USAGE}.`, error: true }
        : undefined;
    const span = a.range ? ` from ${a.range.from} to ${a.range.to} (UTC, both included)` : "";
    const stamp = a.range ? `${a.range.from}_${a.range.to}` : `to-${dayKey(b.clock())}`;
    if (a.what === "trades") {
      const fills = await b.portfolio.fills(a.from, a.to - 1);
      // An empty file would say nothing the sentence does not; no file is sent.
      if (fills.length === 0) return { text: `No trades on the books${span}: no file sent.` };
      const csv = tradesCsv(fills, b.quote);
      const big = tooBig(fills.length, csv);
      if (big) return big;
      return {
        text: `${fills.length} trade(s)${span}${paperTag(app)} as CSV: one row per fill, amounts and fees in ${b.quote}, dates in UTC.`,
        files: [{ name: `trades_${stamp}.csv`, mime: "text/csv", data: Buffer.from(csv, "utf8"), caption: `${fills.length} trade(s)${span}` }],
      };
    }
    const decisions = await b.ledger.decisions(a.from, a.to - 1);
    if (decisions.length === 0) return { text: `No decisions in the ledger${span}: no file sent. (Decisions older than the ledger's retention are in its archive.)` };
    const csv = decisionsCsv(decisions);
    const big = tooBig(decisions.length, csv);
    if (big) return big;
    return {
      text: `${decisions.length} decision(s)${span} as CSV: one row per decision, its model cost in USDC, dates in UTC.`,
      files: [{ name: `decisions_${stamp}.csv`, mime: "text/csv", data: Buffer.from(csv, "utf8"), caption: `${decisions.length} decision(s)${span}` }],
    };
  },
});
