// The profit views (/profit, /daily, /weekly, /monthly, /performance, /trades, /export) on the
// console, Telegram and Discord, read from trades placed through the one order path (/trade), and
// the trading gauges on /metrics.
import { existsSync, readFileSync, rmSync } from "node:fs";
import { PassThrough } from "node:stream";
import { afterAll, afterEach, describe, expect, it } from "vitest";
import { isPng } from "../src/chat/charts/render.js";
import { ConsoleChat } from "../src/chat/console/consoleChat.js";
import { DiscordChat } from "../src/chat/discord/discordChat.js";
import { RateLimiter } from "../src/chat/outbox.js";
import { TelegramChat } from "../src/chat/telegram/telegramChat.js";
import type { Config } from "../src/config/config.js";
import type { Order } from "../src/domain/types.js";
import { startOps } from "../src/ops/serve.js";
import { csvCell, decimal, TRADE_COLUMNS } from "../src/profit/csv.js";
import { lastPeriods, periodStart } from "../src/profit/profit.js";
import { snapshot, startTestApp, testConfig, waitFor, type TestApp } from "./support/app.js";
import { DiscordStandIn, type DMessage, type DUser, type InteractionRecord } from "./support/discordStandIn.js";
import { TelegramStandIn, type TgChat, type TgMessage, type TgUser } from "./support/telegramStandIn.js";

let t: TestApp | undefined;
const cleanup: Array<() => Promise<unknown>> = [];
afterEach(async () => {
  for (const c of cleanup.splice(0).reverse()) await c();
  await t?.app.stop();
  t = undefined;
});

/** Trading with no rule in the way of a quick round trip (the tests check the books, not the rules). */
const trading = (edit: (c: Config) => void = () => {}) =>
  testConfig((c) => {
    Object.assign(c.risk, { maxVar95Pct: undefined, cooldownAfterLossMinutes: 0 });
    edit(c);
  });

/** Reads RFC 4180 CSV (quoted cells, doubled quotes, CRLF), as a spreadsheet would. */
function readCsv(text: string): string[][] {
  const rows: string[][] = [];
  let row: string[] = [];
  let cell = "";
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const ch = text[i]!;
    if (quoted) {
      if (ch === '"' && text[i + 1] === '"') (cell += '"'), i++;
      else if (ch === '"') quoted = false;
      else cell += ch;
    } else if (ch === '"') quoted = true;
    else if (ch === ",") row.push(cell), (cell = "");
    else if (ch === "\r" && text[i + 1] === "\n") {
      row.push(cell);
      rows.push(row);
      (row = []), (cell = ""), i++;
    } else cell += ch;
  }
  if (cell !== "" || row.length) rows.push([...row, cell]);
  return rows;
}

const filledOrders = async (): Promise<Order[]> => (await t!.app.services.exchange.trades(100)).filter((o) => o.status === "filled").reverse();

/** Three real paper trades through /trade: a BTC round trip and an open ETH position. */
async function placeTrades(): Promise<Order[]> {
  for (const line of ["/trade buy BTC 50", "/trade sell BTC all", "/trade buy ETH 100"]) {
    const r = await t!.run(line);
    expect(r.error, `${line}: ${r.text}`).toBeFalsy();
  }
  const orders = await filledOrders();
  expect(orders.map((o) => `${o.side} ${o.symbol}`)).toEqual(["buy BTC/USDT", "sell BTC/USDT", "buy ETH/USDT"]);
  return orders;
}

describe("profit figures from the books, on the console's dispatcher", () => {
  it("/trades, /profit, /performance and /daily agree with the trades placed and the portfolio's realized P&L", async () => {
    t = await startTestApp(trading());
    const orders = await placeTrades();
    const realized = await t.app.services.portfolio.realizedPnl();
    expect(realized).toBeLessThan(0); // fees and slippage make an immediate round trip a loss

    const trades = await t.run("/trades", "viewer");
    expect(trades.error).toBeFalsy();
    const lines = trades.text.split("\n").slice(1);
    expect(lines).toHaveLength(3);
    // Newest first, each with its exchange order id.
    expect(lines.map((l) => /id (\S+)$/.exec(l)?.[1])).toEqual(orders.map((o) => o.id).reverse());
    expect(lines[1]).toMatch(new RegExp(`SELL .* BTC @ .* · P&L ${realized >= 0 ? "\\+" : "-"}${Math.abs(realized).toFixed(2)}`));
    expect((await t.run("/trades 1")).text.split("\n")).toHaveLength(2);

    const profit = await t.run("/profit", "viewer");
    expect(profit.error).toBeFalsy();
    const fees = orders.reduce((s, o) => s + o.fee, 0);
    const buyFees = orders.filter((o) => o.side === "buy").reduce((s, o) => s + o.fee, 0);
    expect(profit.text).toContain(`Since start: realized -${Math.abs(realized).toFixed(2)} USDT · 3 trade(s) · fees ${fees.toFixed(2)} · AI 0.0000 USDC · net -${Math.abs(realized - buyFees).toFixed(2)}`);
    expect(profit.text).toMatch(/Open: 1 position\(s\) · unrealized [+-]\d+\.\d\d USDT/);
    expect(profit.text).toContain("Round trips closed: 1, 0 won (0%)");
    expect(profit.text).toContain(`Best: BTC/USDT -${Math.abs(realized).toFixed(2)} USDT`);
    expect(profit.text).toContain(`Worst: BTC/USDT -${Math.abs(realized).toFixed(2)} USDT (closed 2026-11-22 12:00 UTC)`);

    const perf = await t.run("/performance", "viewer");
    const row = (symbol: string) => perf.text.split("\n").find((l) => l.startsWith(symbol))!.trim().split(/\s+/);
    expect(row("BTC/USDT")).toEqual(["BTC/USDT", "2", "1", "0%", `-${Math.abs(realized).toFixed(2)}`, (orders[0]!.fee + orders[1]!.fee).toFixed(2)]);
    expect(row("ETH/USDT")).toEqual(["ETH/USDT", "1", "0", "-", "+0.00", orders[2]!.fee.toFixed(2)]);
    expect((await t.run("/performance eth")).text).not.toContain("BTC/USDT");

    // The AI spend the ledger booked today sits beside the trading.
    await t.app.services.ledger.charge({ decisionId: "d-spend", time: t.clock.now, model: "test/model", costMicro: 120_000 });
    t.clock.advance(86_400_000);
    expect((await t.run("/trade buy BTC 20")).error).toBeFalsy();
    const daily = await t.run("/daily 3", "viewer");
    const rows = daily.text.split("\n");
    const day = (offset: number) => new Date(periodStart(t!.clock.now, "day") - offset * 86_400_000).toISOString().slice(0, 10);
    const cells = (d: string) => rows.find((l) => l.startsWith(d))!.trim().split(/\s+/);
    expect(cells(day(1))).toEqual([day(1), `-${Math.abs(realized).toFixed(2)}`, "3", fees.toFixed(2), "0.1200", `-${Math.abs(realized - buyFees - 0.12).toFixed(2)}`]);
    expect(cells(day(0)).slice(1, 3)).toEqual(["+0.00", "1"]);
    expect(cells(day(2)).slice(1)).toEqual(["+0.00", "0", "0.00", "0.0000", "+0.00"]);
    expect(rows.find((l) => l.startsWith("Total"))!.split(/\s+/)[2]).toBe("4");
    // With trades in it, the table comes with its chart.
    expect(daily.image?.name).toBe("daily-profit.png");
    expect(isPng(daily.image!.png)).toBe(true);
    expect(daily.image!.alt).toMatch(/^Daily profit \[PAPER\], last 3 days: realized P&L/);
    expect((await t.run("/weekly 2")).text).toMatch(/Week of[\s\S]*Total\s+-\d+\.\d\d\s+4\s/);
    expect((await t.run("/monthly")).text).toMatch(/2026-11\s+-\d+\.\d\d\s+4\s/);
  });

  it("answers bad input with how to write it, and changes nothing", async () => {
    t = await startTestApp(trading());
    await placeTrades();
    const before = await snapshot(t.url);
    const bad: [string, RegExp][] = [
      ["/daily 0", /"0" is not a number of days from 1 to 90\. Usage: \/daily \[N\]/],
      ["/daily 1000", /"1000" is not a number of days from 1 to 90/],
      ["/daily abc", /"abc" is not a number of days/],
      ["/weekly 2 3", /Usage: \/weekly \[N\], with N from 1 to 52 weeks/],
      ["/monthly -1", /"-1" is not a number of months from 1 to 24/],
      ["/trades 0", /"0" is not a number of trades from 1 to 50/],
      ["/trades 1000", /"1000" is not a number of trades from 1 to 50/],
      ["/trades abc", /"abc" is not a number of trades/],
      ["/trades 2.5", /"2\.5" is not a number of trades/],
      ["/performance XYZ", /Unknown symbol "XYZ"\. Usage: \/performance \[SYMBOL\], e\.g\. \/performance BTC\. Watched symbols: BTC, ETH, DOGE\./],
      ["/profit today", /\/profit takes no arguments/],
      ["/export", /Usage: \/export trades\|decisions \[FROM \[TO\]\]/],
      ["/export fills", /"fills" is not trades or decisions/],
      ["/export trades 2026-02-30", /"2026-02-30" is not a day written YYYY-MM-DD/],
      ["/export trades 01/02/2026", /"01\/02\/2026" is not a day written YYYY-MM-DD/],
      ["/export trades 2026-03-01 2026-02-01", /The last day \(2026-02-01\) is before the first \(2026-03-01\)/],
    ];
    for (const [line, pattern] of bad) {
      const r = await t.run(line);
      expect(r.error, line).toBe(true);
      expect(r.text, line).toMatch(pattern);
    }
    // A viewer reads profit, but does not take the books away as a file.
    const refused = await t.run("/export trades", "viewer");
    expect(refused.error).toBe(true);
    expect(refused.text).toMatch(/\/export needs the trader role; you are a viewer/);
    const withoutAudit = (s: Record<string, string>) => Object.fromEntries(Object.entries(s).filter(([k]) => !k.startsWith("audit:")));
    expect(withoutAudit(await snapshot(t.url))).toEqual(withoutAudit(before));
  });

  it("says there is nothing yet on empty books", async () => {
    t = await startTestApp(trading());
    expect((await t.run("/trades")).text).toBe("No trades on the books yet.");
    expect((await t.run("/performance")).text).toBe("No trades on the books yet.");
    expect((await t.run("/profit")).text).toMatch(/No round trip closed yet/);
    // Nothing to draw: the table alone.
    const daily = await t.run("/daily");
    expect(daily.text).toMatch(/Total\s+\+0\.00\s+0\s+0\.00\s+0\.0000\s+\+0\.00/);
    expect(daily.image).toBeUndefined();
  });
});

describe("/export", () => {
  it("sends the trades placed as CSV, with the columns a spreadsheet expects, and no file for a range with none", async () => {
    t = await startTestApp(trading());
    const orders = await placeTrades();
    const r = await t.run("/export trades", "trader");
    expect(r.error).toBeFalsy();
    expect(r.text).toMatch(/^3 trade\(s\) \[PAPER\] as CSV/);
    expect(r.files).toHaveLength(1);
    const file = r.files![0]!;
    expect(file.mime).toBe("text/csv");
    expect(file.name).toBe("trades_to-2026-11-22.csv");
    const text = Buffer.from(file.data).toString("utf8");
    expect(text.endsWith("\r\n")).toBe(true);
    const [header, ...rows] = readCsv(text);
    expect(header).toEqual(TRADE_COLUMNS);
    expect(rows).toHaveLength(3);
    const col = (name: string) => header!.indexOf(name);
    for (const [i, o] of orders.entries()) {
      const row = rows[i]!;
      expect(row[col("date_utc")]).toBe(new Date(o.time).toISOString());
      expect(row[col("id")]).toBe(o.id);
      expect(row[col("order_id")]).toBe(o.id);
      expect(row[col("client_order_id")]).toBe(o.clientOrderId);
      expect(row[col("symbol")]).toBe(o.symbol);
      expect(row[col("side")]).toBe(o.side);
      expect(Number(row[col("quantity")])).toBeCloseTo(o.filledQty, 9);
      expect(Number(row[col("price")])).toBeCloseTo(o.avgPrice, 6);
      expect(Number(row[col("quote_amount")])).toBeCloseTo(o.filledQty * o.avgPrice, 6);
      expect(Number(row[col("fee")])).toBeCloseTo(o.fee, 9);
      expect(row[col("fee_currency")]).toBe("USDT");
      // Never written as 1e-7: a spreadsheet reads every number as a plain decimal.
      for (const c of ["quantity", "price", "fee", "realized_pnl"]) expect(row[col(c)]).toMatch(/^-?\d+(\.\d+)?$/);
    }
    const realized = rows.reduce((s, row) => s + Number(row[col("realized_pnl")]), 0);
    expect(realized).toBeCloseTo(await t.app.services.portfolio.realizedPnl(), 8);

    // A range: both days included; a range with no trades says so, and sends no file.
    const today = await t.run("/export trades 2026-11-22 2026-11-22");
    expect(today.files).toHaveLength(1);
    expect(today.files![0]!.name).toBe("trades_2026-11-22_2026-11-22.csv");
    const empty = await t.run("/export trades 2026-01-01 2026-01-31");
    expect(empty.error).toBeFalsy();
    expect(empty.files).toBeUndefined();
    expect(empty.text).toBe("No trades on the books from 2026-01-01 to 2026-01-31 (UTC, both included): no file sent.");
    expect((await t.run("/export trades 2026-11-23")).text).toMatch(/^No trades on the books from 2026-11-23 to 2026-11-22|The last day/);
  });

  it("exports decisions, and defuses text a spreadsheet would run as a formula", async () => {
    t = await startTestApp(trading());
    const decided = await t.run("/decide BTC");
    expect(decided.error).toBeFalsy();
    // A model's reasons are text from outside: one that reads as a formula.
    await t.app.services.ledger.put({
      id: "d-evil",
      time: t.clock.now + 1,
      symbol: "ETH/USDT",
      trigger: "chat",
      model: "test/model",
      costMicro: 25_000,
      latencyMs: 5,
      outcome: "no-order",
      action: "hold",
      sizePct: 0,
      confidence: 0.4,
      reasons: ['=HYPERLINK("http://evil.example","click")', "+1, and more"],
    });
    const r = await t.run("/export decisions");
    expect(r.files).toHaveLength(1);
    const text = Buffer.from(r.files![0]!.data).toString("utf8");
    const [header, ...rows] = readCsv(text);
    expect(header).toEqual(["date_utc", "id", "symbol", "action", "size_pct", "confidence", "model", "cost_usdc", "outcome", "order_id", "order_side", "order_qty", "order_price", "reason"]);
    const ids = rows.map((row) => row[1]);
    expect(ids).toContain("d-evil");
    const evil = rows.find((row) => row[1] === "d-evil")!;
    expect(evil.slice(2, 9)).toEqual(["ETH/USDT", "hold", "0", "0.4", "test/model", "0.025", "no-order"]);
    // Shown as text, never run: a leading apostrophe, and quoted for its comma and quotes.
    expect(evil[13]).toBe(`'=HYPERLINK("http://evil.example","click"); +1, and more`);
    expect(text).toContain(`"'=HYPERLINK(""http://evil.example"",""click""); +1, and more"`);
    // Every decision in the ledger is a row.
    expect(rows).toHaveLength((await t.app.services.ledger.decisions(0, Number.MAX_SAFE_INTEGER)).length);
    expect((await t.run("/export decisions 2026-01-01 2026-01-02")).text).toMatch(/^No decisions in the ledger from 2026-01-01 to 2026-01-02/);
  });

  it("refuses a file larger than a chat takes, and says to ask for a shorter range", async () => {
    t = await startTestApp(trading());
    const reason = "x".repeat(4_000);
    const put = (i: number) =>
      t!.app.services.ledger.put({ id: `d-${i}`, time: t!.clock.now - i * 60_000, symbol: "BTC/USDT", trigger: "schedule", model: "m", costMicro: 0, latencyMs: 1, outcome: "no-order", action: "hold", reasons: [reason] });
    for (let i = 0; i < 2_200; i += 200) await Promise.all(Array.from({ length: 200 }, (_, k) => put(i + k)));
    const r = await t.run("/export decisions");
    expect(r.error).toBe(true);
    expect(r.files).toBeUndefined();
    expect(r.text).toMatch(/^2200 rows make 8\.\d MB of CSV, more than a chat takes \(8 MB\): ask for a shorter range/);
    // A day of them fits.
    const day = await t.run("/export decisions 2026-11-22 2026-11-22");
    expect(day.files).toHaveLength(1);
  });

  it("writes cells as a spreadsheet reads them (pure)", () => {
    for (const s of ["=1+1", "+1", "-1", "@SUM(A1)", "\tx", "\rx"]) expect(csvCell(s).replace(/^"/, "").startsWith("'")).toBe(true);
    expect(csvCell(-1.5)).toBe("-1.5"); // a number keeps its minus
    expect(csvCell("a,b")).toBe('"a,b"');
    expect(csvCell('say "hi"')).toBe('"say ""hi"""');
    expect(csvCell("two\nlines")).toBe('"two\nlines"');
    expect(csvCell(undefined)).toBe("");
    expect(decimal(1e-7)).toBe("0.0000001");
    expect(decimal(-0.00000000001)).toBe("0");
    expect(decimal(95000)).toBe("95000");
  });

  it("periods: weeks start on Monday, months on the 1st, newest first (pure)", () => {
    const sunday = Date.UTC(2026, 10, 22, 12); // 2026-11-22 is a Sunday
    expect(new Date(periodStart(sunday, "week")).toISOString()).toBe("2026-11-16T00:00:00.000Z");
    expect(lastPeriods(sunday, "month", 3).map((b) => b.label)).toEqual(["2026-11", "2026-10", "2026-09"]);
    expect(lastPeriods(Date.UTC(2026, 0, 15), "month", 2).map((b) => b.label)).toEqual(["2026-01", "2025-12"]);
    const days = lastPeriods(sunday, "day", 2);
    expect(days.map((b) => b.label)).toEqual(["2026-11-22", "2026-11-21"]);
    expect(days[0]!.end - days[0]!.start).toBe(86_400_000);
  });
});

describe("the console", () => {
  const dir = `/tmp/profit-console-${process.pid}/charts`;
  afterAll(() => rmSync(`/tmp/profit-console-${process.pid}`, { recursive: true, force: true }));

  it("saves an export under the data dir and prints its path", async () => {
    t = await startTestApp(trading());
    await placeTrades();
    const input = new PassThrough();
    const output = new PassThrough();
    let out = "";
    output.on("data", (d: Buffer) => (out += d.toString()));
    let ended = false;
    await new ConsoleChat(t.app, { input, output, onEnd: () => (ended = true) }, "op", dir).start();
    input.write("/export trades\n/trades 2\n/daily abc\n/export trades 2026-01-01 2026-01-02\n");
    input.end();
    await waitFor("the end", async () => ended);
    const path = /File: (\S+\.csv) \(3 trade\(s\)\)/.exec(out)?.[1];
    expect(path, out).toBeDefined();
    expect(path!.startsWith(`/tmp/profit-console-${process.pid}/exports/`)).toBe(true);
    expect(existsSync(path!)).toBe(true);
    const rows = readCsv(readFileSync(path!, "utf8"));
    expect(rows.slice(1).map((r) => r[1])).toEqual((await filledOrders()).map((o) => o.id));
    expect(out).toMatch(/Last 2 trade\(s\) \[PAPER\], newest first/);
    expect(out).toMatch(/"abc" is not a number of days from 1 to 90/);
    expect(out).toContain("No trades on the books from 2026-01-01 to 2026-01-02 (UTC, both included): no file sent.");
  });
});

describe("Telegram", () => {
  const alice: TgUser = { id: 101, is_bot: false, first_name: "Alice", username: "alice" }; // trader
  const vera: TgUser = { id: 103, is_bot: false, first_name: "Vera" }; // viewer
  const team: TgChat = { id: -1001234567890, type: "supergroup", title: "Trading team" };
  const OPEN = new RateLimiter(() => ({ burst: 1e9, perSecond: 1e9 }), { burst: 1e9, perSecond: 1e9 });

  it("sends the CSV as a document, answers the profit commands, and refuses bad input and a viewer's export", async () => {
    const tg = await new TelegramStandIn().start();
    cleanup.push(() => tg.stop());
    t = await startTestApp(
      trading((c) => {
        c.chat.telegram.token = tg.token;
        c.chat.telegram.apiUrl = tg.apiRoot;
        c.chat.telegram.chatId = String(team.id);
        c.chat.telegram.allowedUsers = [
          { id: "101", role: "trader" },
          { id: "103", role: "viewer" },
        ];
      }),
    );
    const chat = new TelegramChat(t.app, { token: tg.token, apiRoot: tg.apiRoot, chatId: String(team.id), limiter: OPEN });
    await chat.start();
    cleanup.push(() => chat.stop());
    const ask = async (from: TgUser, text: string): Promise<string> => {
      const { messageId } = tg.userSends(from, team, text);
      await waitFor(`the answer to ${text}`, async () => tg.sent(team.id).some((m) => m.reply_to === messageId));
      await chat.idle();
      return tg
        .sent(team.id)
        .filter((m: TgMessage) => m.reply_to === messageId)
        .map((m) => (m.text ?? "").replace(/<[^>]+>/g, "").replace(/&amp;/g, "&").replace(/&lt;/g, "<").replace(/&gt;/g, ">"))
        .join("\n");
    };
    const orders = await placeTrades();

    expect(await ask(vera, "/profit")).toMatch(/Profit \[PAPER\], from the books\nSince start: realized -\d+\.\d\d USDT · 3 trade\(s\)/);
    expect(await ask(vera, "/trades 3")).toContain(`id ${orders[0]!.id}`);
    expect(await ask(vera, "/performance BTC")).toMatch(/BTC\/USDT\s+2\s+1\s+0%/);
    expect(await ask(vera, "/daily 2")).toMatch(/2026-11-22\s+-\d+\.\d\d\s+3\s/);
    const chart = tg.callsOf("sendPhoto").at(-1)!;
    expect(chart.params.caption).toMatch(/^Daily profit \[PAPER\], last 2 days/);
    expect(isPng(chart.file!)).toBe(true);
    expect(await ask(vera, "/trades abc")).toMatch(/"abc" is not a number of trades from 1 to 50/);
    expect(await ask(vera, "/performance XYZ")).toMatch(/Unknown symbol "XYZ"/);
    expect(await ask(vera, "/export trades")).toMatch(/\/export needs the trader role; you are a viewer/);
    expect(tg.callsOf("sendDocument")).toHaveLength(0);

    expect(await ask(alice, "/export trades")).toMatch(/^3 trade\(s\) \[PAPER\] as CSV/);
    await waitFor("the document", async () => tg.callsOf("sendDocument").length === 1);
    const doc = tg.callsOf("sendDocument")[0]!;
    expect(doc.status).toBe(200);
    expect(doc.fileName).toBe("trades_to-2026-11-22.csv");
    expect(Number(doc.params.chat_id)).toBe(team.id);
    expect(doc.params.caption).toBe("3 trade(s)");
    const rows = readCsv(Buffer.from(doc.file!).toString("utf8"));
    expect(rows.slice(1).map((r) => [r[1], r[3]])).toEqual(orders.map((o) => [o.id, o.side]));
    const posted = tg.sent(team.id).find((m) => m.document);
    expect(posted?.document).toMatchObject({ file_name: "trades_to-2026-11-22.csv", mime_type: "text/csv", file_size: doc.file!.length });

    expect(await ask(alice, "/export trades 2026-01-01 2026-01-31")).toBe("No trades on the books from 2026-01-01 to 2026-01-31 (UTC, both included): no file sent.");
    expect(await ask(alice, "/export trades 2026-13-01")).toMatch(/"2026-13-01" is not a day written YYYY-MM-DD/);
    expect(tg.callsOf("sendDocument")).toHaveLength(1);
  });
});

describe("Discord", () => {
  const bob: DUser = { id: "222", username: "bob" }; // trader
  const vera: DUser = { id: "333", username: "vera" }; // viewer

  it("attaches the CSV to the answer, answers the profit commands, and refuses bad input", async () => {
    const dc = await new DiscordStandIn().start();
    cleanup.push(() => dc.stop());
    t = await startTestApp(
      trading((c) => {
        c.chat.discord = {
          ...c.chat.discord,
          token: dc.token,
          guildIds: [dc.guildId],
          channelId: dc.channelId,
          apiUrl: dc.apiBase,
          allowedUsers: [
            { id: "222", role: "trader" },
            { id: "333", role: "viewer" },
          ],
        };
      }),
    );
    const chat = new DiscordChat(t.app, { token: dc.token, guildIds: [dc.guildId], channelId: dc.channelId, apiUrl: dc.apiBase });
    await chat.start();
    cleanup.push(() => chat.stop());
    const slash = async (user: DUser, name: string, options: Record<string, string | number> = {}): Promise<InteractionRecord> => {
      const r = dc.slash(user, name, options);
      await waitFor(`the answer to /${name}`, async () => r.ackType !== undefined && ((r.original && !(r.original.flags & 128) && r.original.content !== "") || r.deleted));
      await chat.idle();
      return structuredClone(r);
    };
    const text = (r: InteractionRecord) =>
      [r.original, ...r.followUps]
        .filter((m): m is DMessage => m !== undefined)
        .map((m) => m.content.replace(/\\([\\*_~`|>[\]#.\-+])/g, "$1"))
        .join("\n");
    const orders = await placeTrades();

    expect(text(await slash(vera, "profit"))).toMatch(/Profit \[PAPER\], from the books\nSince start: realized -\d+\.\d\d USDT · 3 trade\(s\)/);
    expect(text(await slash(vera, "trades", { count: 2 }))).toContain(`id ${orders[2]!.id}`);
    expect(text(await slash(vera, "performance", { symbol: "ETH" }))).toMatch(/ETH\/USDT\s+1\s+0\s+-/);
    expect(text(await slash(vera, "weekly", { count: 1 }))).toMatch(/Week of[\s\S]*Total\s+-\d+\.\d\d\s+3\s/);
    // Discord holds a number option to its range; a fraction is within it, and refused here.
    expect(text(await slash(vera, "trades", { count: 2.5 }))).toMatch(/"2\.5" is not a number of trades from 1 to 50/);
    expect(text(await slash(bob, "export", { what: "trades", from: "2026-02-30" }))).toMatch(/"2026-02-30" is not a day written YYYY-MM-DD/);
    expect(text(await slash(vera, "export", { what: "trades" }))).toMatch(/needs the trader role; you are a viewer/);
    const none = await slash(bob, "export", { what: "trades", from: "2026-01-01", to: "2026-01-31" });
    expect(text(none)).toBe("No trades on the books from 2026-01-01 to 2026-01-31 (UTC, both included): no file sent.");
    expect(none.original!.attachments).toEqual([]);

    const r = await slash(bob, "export", { what: "trades" });
    expect(text(r)).toMatch(/^3 trade\(s\) \[PAPER\] as CSV/);
    // For the asker alone, with the file attached to the answer.
    expect(dc.isEphemeral(r.original)).toBe(true);
    expect(r.original!.attachments.map((a) => a.filename)).toEqual(["trades_to-2026-11-22.csv"]);
    const rows = readCsv(Buffer.from(r.original!.files[0]!).toString("utf8"));
    expect(rows[0]).toEqual(TRADE_COLUMNS);
    expect(rows.slice(1).map((row) => [row[1], row[2], row[3]])).toEqual(orders.map((o) => [o.id, o.symbol, o.side]));
  });
});

describe("/metrics", () => {
  it("reports equity, exposure, open positions and realized and unrealized P&L from the books", async () => {
    t = await startTestApp(trading());
    await placeTrades();
    const ops = await startOps(t.app, { host: "127.0.0.1", port: 0 });
    cleanup.push(() => ops.stop());
    const body = await (await fetch(`http://${ops.host}:${ops.port}/metrics`)).text();
    const value = (name: string) => {
      const m = new RegExp(`^${name.replace(/[{}"]/g, "\\$&")} (\\S+)$`, "m").exec(body);
      if (!m) throw new Error(`${name} not in /metrics:\n${body.slice(0, 2000)}`);
      return Number(m[1]);
    };
    const s = t.app.services;
    const [position] = await s.portfolio.positions();
    const last = await s.market.lastPrice("ETH/USDT");
    const cash = (await s.exchange.balances()).USDT!;
    expect(value("agent_open_positions")).toBe(1);
    expect(value('agent_realized_pnl{quote="USDT"}')).toBeCloseTo(await s.portfolio.realizedPnl(), 6);
    expect(value('agent_exposure{quote="USDT"}')).toBeCloseTo(position!.qty * last, 6);
    expect(value('agent_equity{quote="USDT"}')).toBeCloseTo(cash + position!.qty * last, 6);
    expect(value('agent_unrealized_pnl{quote="USDT"}')).toBeCloseTo((last - position!.entryPrice) * position!.qty, 6);
    // Beside the AI-spend gauges, on the same page.
    expect(body).toMatch(/^agent_spend_usdc\{period="day"\} /m);
  });
});
