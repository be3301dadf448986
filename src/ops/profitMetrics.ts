// The trading's own figures as gauges, beside the AI spend's: equity, exposure, open positions,
// realized and unrealized P&L. Read from the books (the portfolio every process shares in Redis)
// and the exchange's cash, so every process of one agent reports the same value (aggregate with max).
import type { AccountFigures } from "../profit/books.js";
import type { MetricsRegistry } from "./metrics.js";

export interface ProfitMetricsSource {
  /** The figures now; one read serves every gauge of a scrape. */
  figures(): Promise<AccountFigures>;
  quote: string;
  clock: () => number;
}

// The five gauges of one scrape are read at once; a live exchange is asked for its balances once for them all.
const SHARED_FOR_MS = 1_000;

export function registerProfitMetrics(metrics: MetricsRegistry, src: ProfitMetricsSource): void {
  let last: { at: number; read: Promise<AccountFigures> } | undefined;
  const current = () => {
    const now = src.clock();
    if (!last || now - last.at > SHARED_FOR_MS) {
      const read = src.figures();
      last = { at: now, read };
      // A failed read is not kept: the next scrape asks again.
      read.catch(() => {
        if (last?.read === read) last = undefined;
      });
    }
    return last.read;
  };
  const labels = ["quote"];
  const inQuote = (pick: (f: AccountFigures) => number) => async () => [{ labels: { quote: src.quote }, value: pick(await current()) }];
  metrics.gauge("equity", inQuote((f) => f.equity), { help: "Cash plus the open positions at the last prices, in the quote currency", labels });
  metrics.gauge("exposure", inQuote((f) => f.exposure), { help: "The open positions' value at the last prices, in the quote currency", labels });
  metrics.gauge("open_positions", async () => (await current()).positions.length, { help: "Open positions on the books" });
  metrics.gauge("realized_pnl", inQuote((f) => f.realized), { help: "P&L realized since the books began (net of sell fees), in the quote currency", labels });
  metrics.gauge("unrealized_pnl", inQuote((f) => f.unrealized), { help: "P&L of the open positions at the last prices, in the quote currency", labels });
}
