// Control without a restart (docs/control.md): /symbols and /interval change the cluster's
// schedule at once and survive a restart; /limits changes are in force on every process; loosening
// asks first, and with APPROVALS=2 waits for a second admin; a fresh install trades nothing before
// its first interval.
import { Queue } from "bullmq";
import { afterEach, describe, expect, it } from "vitest";
import { handleCommand } from "../commands/registry.js";
import { banner } from "../src/banner.js";
import { DiscordChat } from "../src/chat/discord/discordChat.js";
import { RateLimiter } from "../src/chat/outbox.js";
import { ChatServices } from "../src/chat/services.js";
import { TelegramChat } from "../src/chat/telegram/telegramChat.js";
import type { ChatUser, CommandReply } from "../src/chat/types.js";
import type { Config } from "../src/config/config.js";
import { intervalText, parseInterval, symbolOf } from "../src/queue/runtimeSchedule.js";
import { loosens } from "../src/risk/limitsStore.js";
import { buyReply, freshRedisUrl, scriptedModels, startTestApp, stateSnapshot, testConfig, waitFor, type TestApp } from "./support/app.js";
import { DiscordStandIn, type DMessage, type DUser, type InteractionRecord } from "./support/discordStandIn.js";
import { TelegramStandIn, type TgChat, type TgMessage, type TgUser } from "./support/telegramStandIn.js";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { createCcxtExchange } from "../src/exchange/ccxtClient.js";
import { loadCandles } from "../src/market/candles.js";
import { CcxtMarketData } from "../src/market/ccxtMarket.js";
import { BinanceStandIn, candlesEndingNow } from "./support/exchangeStandIn.js";

const apps: TestApp[] = [];
const queues: Queue[] = [];
let tg: TelegramStandIn | undefined;
let dc: DiscordStandIn | undefined;
let telegram: TelegramChat | undefined;
let discord: DiscordChat | undefined;

afterEach(async () => {
  await telegram?.stop();
  await discord?.stop();
  await Promise.all(queues.splice(0).map((q) => q.close()));
  // Frontends first: a worker's queues close once nothing waits on it.
  for (const t of apps.splice(0).reverse()) await t.app.stop();
  await tg?.stop();
  await dc?.stop();
  telegram = discord = undefined;
  tg = dc = undefined;
});

async function app(edit: (c: Config) => void, opts: Parameters<typeof startTestApp>[1] = {}): Promise<TestApp> {
  const t = await startTestApp(testConfig(edit), opts);
  apps.push(t);
  return t;
}

function decisionsQueue(t: TestApp): Queue {
  const q = new Queue("decisions", { connection: t.app.bull.connection, prefix: t.app.bull.prefix });
  queues.push(q);
  return q;
}

const schedulerOf = async (t: TestApp, id: string) => (await decisionsQueue(t).getJobSchedulers()).find((s) => s.key === id);
const as = (t: TestApp, user: ChatUser) => (text: string): Promise<CommandReply> => handleCommand(text, { user, app: t.app }, t.app.redact);

describe("reading a duration, a symbol, and which way a limit loosens", () => {
  it("reads what a person types, and nothing else", () => {
    expect(["15m", "15min", "1h", "90s", "2h30m", "300", "1h0m5s"].map(parseInterval)).toEqual([900_000, 900_000, 3_600_000, 90_000, 9_000_000, 300_000, 3_605_000]);
    expect(["", "m", "soon", "-5m", "1.5h", "15 m", "5d", "1e3"].map(parseInterval)).toEqual(Array(8).fill(undefined));
    expect([900_000, 3_600_000, 90_000].map(intervalText)).toEqual(["15 min", "1 h", "90 s"]);
    expect([symbolOf("sol", "USDT"), symbolOf("ETH/btc", "USDT"), symbolOf("BT$", "USDT"), symbolOf("A/B/C", "USDT")]).toEqual(["SOL/USDT", "ETH/BTC", undefined, undefined]);
    expect([loosens("maxPositionPct", 10, 20), loosens("maxPositionPct", 10, 5), loosens("minOrderNotional", 10, 5), loosens("minOrderNotional", 10, 50), loosens("defaultTakeProfitPct", 5, 50), loosens("maxPositionPct", 10, 10)]).toEqual([true, false, true, false, false, false]);
  });
});

describe("/symbols and /interval", () => {
  it("change the schedule at once, refuse bad input changing nothing, are audited, and survive a restart", async () => {
    const t = await app((c) => (c.market.symbols = ["BTC/USDT"]));
    expect((await t.run("/symbols")).text).toMatch(/^Symbols: BTC\/USDT \(from SYMBOLS=BTC\/USDT \(no change from chat stored\)\)/);
    expect((await t.run("/interval")).text).toMatch(/^Decisions every 5 min \(from DECISION_INTERVAL_SECONDS=300/);

    const before = await stateSnapshot(t.url);
    const bad: [string, RegExp][] = [
      ["/symbols add SOL", /^Unknown symbol SOL\/USDT: the market does not list it \(it has [A-Z/, ]*BTC\/USDT[A-Z/, ]*\)\. Nothing was changed\.$/],
      ["/symbols add BT$", /^"BT\$" is not a symbol\. Usage: \/symbols \[add\|remove SYMBOL\]/],
      ["/symbols remove DOGE", /^DOGE\/USDT is not watched; nothing was changed/],
      ["/symbols remove BTC", /^BTC\/USDT is the only symbol left; add another before removing it\. Nothing was changed\./],
      ["/symbols drop BTC", /^Usage: \/symbols \[add\|remove SYMBOL\]/],
      ["/symbols add", /^Usage: \/symbols/],
      ["/interval 2s", /^The interval must be from 5 s to 24 h, got 2 s\. Nothing was changed\./],
      ["/interval 48h", /^The interval must be from 5 s to 24 h, got 48 h\. Nothing was changed\./],
      ["/interval soon", /^"soon" is not a duration\. Usage: \/interval \[DURATION\], e\.g\. \/interval 15m/],
      ["/interval 1 h", /^Usage: \/interval/],
    ];
    for (const [line, pattern] of bad) {
      const r = await t.run(line);
      expect(r.error, line).toBe(true);
      expect(r.text, line).toMatch(pattern);
    }
    expect((await t.run("/symbols add ETH", "trader")).text).toBe("Sorry, /symbols needs the admin role; you are a trader. Nothing was changed.");
    expect((await t.run("/interval 15m", "trader")).text).toMatch(/needs the admin role/);
    expect(await stateSnapshot(t.url)).toEqual(before);
    expect(t.app.symbols).toEqual(["BTC/USDT"]);

    const added = await t.run("/symbols add eth");
    expect(added.error).toBeUndefined();
    expect(added.text).toMatch(/^Added ETH\/USDT\. Symbols now: BTC, ETH, on every process \(kept across restarts\)\. Its first scheduled decision: \d\d:\d\d:\d\d UTC/);
    expect(t.app.symbols).toEqual(["BTC/USDT", "ETH/USDT"]);
    const eth = await schedulerOf(t, "decide:ETH/USDT");
    expect(Number(eth?.every)).toBe(300_000);
    // Added now, decided one interval from now: nobody is surprised by a trade in it.
    expect(eth!.next!).toBeGreaterThan(Date.now() + 250_000);

    expect((await t.run("/interval 15m")).text).toMatch(/^Decision interval: 5 min → 15 min, on every process \(kept across restarts\)\. Next scheduled decisions: \d\d:\d\d:\d\d UTC\.$/);
    expect(Number((await schedulerOf(t, "decide:BTC/USDT"))?.every)).toBe(900_000);
    expect(Number((await schedulerOf(t, "decide:ETH/USDT"))?.every)).toBe(900_000);
    const status = (await t.run("/status")).text;
    expect(status).toMatch(/Symbols: BTC\/USDT, ETH\/USDT \(set from chat by tester-admin, kept in Redis; wins over SYMBOLS\)/);
    expect(status).toMatch(/Decision interval: 900 s \(set from chat by tester-admin, kept in Redis; wins over DECISION_INTERVAL_SECONDS\)/);
    expect(status).toMatch(/decision ETH\/USDT: every 15 min/);

    expect((await t.run("/symbols remove BTC")).text).toMatch(/^Removed BTC\/USDT: no more scheduled decisions for it[\s\S]*Symbols now: ETH\.$/);
    expect(await schedulerOf(t, "decide:BTC/USDT")).toBeUndefined();
    expect((await t.run("/symbols add BTC")).text).toMatch(/^Added BTC\/USDT\. Symbols now: ETH, BTC/);

    const audited = (await ChatServices.of(t.app).audit.recent(50)).map((e) => `${e.command} → ${e.result}`);
    expect(audited).toEqual(expect.arrayContaining(["/symbols add eth → ok", "/interval 15m → ok", "/symbols remove BTC → ok", "/symbols add SOL → failed"]));

    // A restart with the same environment (SYMBOLS=BTC/USDT, 300 s): what chat chose stands.
    await t.app.stop();
    apps.splice(apps.indexOf(t), 1);
    const again = await app((c) => (c.market.symbols = ["BTC/USDT"]), { url: t.url });
    expect(again.app.symbols).toEqual(["ETH/USDT", "BTC/USDT"]);
    expect(again.app.control.intervalMs()).toBe(900_000);
    expect((await again.run("/interval")).text).toMatch(/^Decisions every 15 min \(set from chat by tester-admin at .* UTC, kept in Redis; DECISION_INTERVAL_SECONDS=300 applies only at a first start\)/);
    await again.app.startJobs();
    expect(Number((await schedulerOf(again, "decide:ETH/USDT"))?.every)).toBe(900_000);
    expect(again.app.scheduleOutcome?.note).toBeUndefined();
  });
});

describe("/symbols on a live market", () => {
  it("adds only what the exchange lists, then serves it", async () => {
    const data = fileURLToPath(new URL("../data/ohlcv/", import.meta.url));
    const standIn = await BinanceStandIn.start({
      apiKey: "unused",
      secret: "unused",
      symbols: [
        { id: "BTCUSDT", base: "BTC", quote: "USDT", candles: candlesEndingNow(loadCandles(join(data, "BTC_USDT_2h.csv")), 300) },
        { id: "ETHUSDT", base: "ETH", quote: "USDT", candles: candlesEndingNow(loadCandles(join(data, "ETH_USDT_2h.csv")), 300) },
      ],
    });
    try {
      const market = new CcxtMarketData({ exchange: createCcxtExchange({ id: "binance", sandbox: false, apiUrl: standIn.url }), symbols: ["BTC/USDT"], timeframe: "2h" });
      const t = await app((c) => (c.market.symbols = ["BTC/USDT"]), { market, clock: Date.now });
      const before = await stateSnapshot(t.url);
      expect((await t.run("/symbols add SOL")).text).toBe("Unknown symbol SOL/USDT: the market does not list it (it has BTC/USDT, ETH/USDT). Nothing was changed.");
      expect(await stateSnapshot(t.url)).toEqual(before);
      expect((await t.run("/symbols add ETH")).text).toMatch(/^Added ETH\/USDT/);
      expect(market.symbols()).toEqual(["BTC/USDT", "ETH/USDT"]);
      expect(await market.lastPrice("ETH/USDT")).toBeGreaterThan(0);
      expect((await t.run("/decide ETH", "trader")).text).toMatch(/^ETH\/USDT: /);
      // ccxt keeps the markets it read: the exchange is asked once, not at every /symbols add.
      expect((await t.run("/symbols add DOGE")).text).toMatch(/^Unknown symbol DOGE\/USDT/);
      expect(standIn.requests.filter((r) => r.path === "/api/v3/exchangeInfo")).toHaveLength(1);
      expect(t.app.symbols).toEqual(["BTC/USDT", "ETH/USDT"]);
    } finally {
      await standIn.stop().catch(() => {});
    }
  });
});

describe("two processes: a frontend changes, a worker acts on it", () => {
  it("a /limits change is in force on the worker's next order, a /symbols change reaches its schedule, /model its decisions", async () => {
    const url = await freshRedisUrl();
    const cfg = (role: "worker" | "frontend") => (c: Config) => {
      c.market.symbols = ["BTC/USDT"];
      c.cluster.role = role;
      c.schedule.decisionIntervalMs = 5_000;
      c.chat.tradeConfirmAbove = 1_000_000;
    };
    const worker = await app(cfg("worker"), { url, models: scriptedModels(() => buyReply(1)) });
    await worker.app.startJobs();
    const front = await app(cfg("frontend"), { url, models: scriptedModels(() => buyReply(1)) });

    // Under the old limits (minimum order 10) the worker buys 500.
    const first = await front.run("/trade buy BTC 500", "trader");
    expect(first.text).toMatch(/^Manual BUY 0\.\d+ BTC @ [\d,.]+ = 50\d\.\d\d USDT/);
    expect(worker.app.services.limits.minOrderNotional).toBe(10);

    // The frontend raises the minimum order (tightening: at once) and says it is in force...
    expect((await front.run("/limits min_order 1000")).text).toMatch(/^min_order \(smallest order, USDT\): 10 → 1000\. In force now on every process \(limits version 1\)\.$/);
    // ...and the worker's very next order is refused by it (no poll in between: the risk check reads the version).
    const second = await front.run("/trade buy BTC 500", "trader");
    expect(second.error).toBe(true);
    expect(second.text).toMatch(/under the minimum of 1,?000(\.00)? \(min-order rule\): no order/);
    expect(worker.app.services.limits.minOrderNotional).toBe(1000);
    expect((await worker.app.services.exchange.trades(10)).filter((o) => o.clientOrderId.startsWith("manual:"))).toHaveLength(1);

    // A symbol added on the frontend: the worker takes it over and decides on it.
    expect((await front.run("/symbols add ETH")).text).toMatch(/^Added ETH\/USDT/);
    await waitFor("the worker to take ETH over", async () => worker.app.symbols.includes("ETH/USDT"));
    const eth = await waitFor("a scheduled ETH decision on the worker", async () => (await worker.app.services.ledger.recent(50)).find((r) => r.symbol === "ETH/USDT" && r.trigger === "schedule"), 30_000);
    expect(eth.id).toMatch(/^sched:ETH\/USDT:/);

    // /model on the frontend: the worker's next decision uses it.
    expect((await front.run("/model offline-engine")).text).toMatch(/Decisions now use offline-engine first/);
    expect((await front.run("/decide BTC", "trader")).text).toMatch(/Model: offline-engine/);
  }, 60_000);
});

describe("/limits: loosening asks, tightening does not", () => {
  it("asks before a looser limit, applies a tighter one at once, and decides per limit which way is looser", async () => {
    const t = await app(() => {});
    const admin: ChatUser = { id: "a1", name: "ana", platform: "console", role: "admin" };
    const run = as(t, admin);
    expect((await run("/limits max_position 5")).text).toMatch(/^max_position .*: 10 → 5\. In force now/);
    const asked = await run("/limits daily_loss 100");
    expect(asked.text).toMatch(/^Loosen daily_loss \(daily loss that stops buying, %\) from \d+ to 100\? This allows more risk\.\nConfirm within 60 s/);
    expect(asked.buttons?.[0]?.map((b) => b.label)).toEqual(["Confirm", "Cancel"]);
    expect(t.app.services.limits.dailyLossLimitPct).not.toBe(100);
    expect((await run(`/confirm ${asked.confirmationId}`)).text).toMatch(/Confirmed by ana\.\ndaily_loss .* → 100\. In force now/);
    expect(t.app.services.limits.dailyLossLimitPct).toBe(100);
    // A lower minimum order lets more orders through: it asks. A take profit bounds no risk: it does not.
    expect((await run("/limits min_order 5")).confirmationId).toBeDefined();
    expect((await run("/limits min_order 50")).confirmationId).toBeUndefined();
    expect((await run("/limits take_profit 30")).confirmationId).toBeUndefined();
    expect((await run("/limits stop_loss 1")).confirmationId).toBeUndefined();
    expect((await run("/limits max_stop_loss 20")).confirmationId).toBeDefined();
  });
});

// ---- APPROVALS=2 on Telegram and Discord -------------------------------------------------------

const OVERSIGHT = -1001234567890;
const team: TgChat = { id: OVERSIGHT, type: "supergroup", title: "Trading team" };
const aliceTg: TgUser = { id: 101, is_bot: false, first_name: "Alice", username: "alice" }; // admin
const bobTg: TgUser = { id: 102, is_bot: false, first_name: "Bob", username: "bob" }; // trader
const carolTg: TgUser = { id: 104, is_bot: false, first_name: "Carol", username: "carol" }; // admin
const aliceDc: DUser = { id: "111", username: "alice_dc" }; // admin
const daveDc: DUser = { id: "112", username: "dave" }; // admin

const OPEN = new RateLimiter(() => ({ burst: 1e9, perSecond: 1e9 }), { burst: 1e9, perSecond: 1e9 });
const plain = (m: TgMessage | undefined) => (m?.text ?? "").replace(/<[^>]+>/g, "").replace(/&lt;/g, "<").replace(/&gt;/g, ">").replace(/&amp;/g, "&");
const dShown = (m: DMessage | undefined) => (m?.content ?? "").replace(/\\([\\*_~`|>[\]#.\-+])/g, "$1");
const idOf = (m: TgMessage | undefined) => /^cf:([^:]+):ok$/.exec(m?.reply_markup?.inline_keyboard[0]?.[0]?.callback_data ?? "")?.[1];

async function twoPlatforms(): Promise<TestApp> {
  tg = await new TelegramStandIn().start();
  dc = await new DiscordStandIn().start();
  const t = await app((c) => {
    c.chat.approvals = 2;
    c.chat.approvalsTimeoutMs = 600_000;
    c.chat.telegram = { ...c.chat.telegram, token: tg!.token, apiUrl: tg!.apiRoot, chatId: String(OVERSIGHT), allowedUsers: [{ id: "101", role: "admin" }, { id: "102", role: "trader" }, { id: "104", role: "admin" }] };
    c.chat.discord = { ...c.chat.discord, token: dc!.token, guildIds: [dc!.guildId], channelId: dc!.channelId, apiUrl: dc!.apiBase, allowedUsers: [{ id: "111", role: "admin" }, { id: "112", role: "admin" }] };
  });
  telegram = new TelegramChat(t.app, { token: tg.token, apiRoot: tg.apiRoot, chatId: String(OVERSIGHT), limiter: OPEN });
  discord = new DiscordChat(t.app, { token: dc.token, guildIds: [dc.guildId], channelId: dc.channelId, apiUrl: dc.apiBase });
  t.app.notifier.add(telegram);
  t.app.notifier.add(discord);
  await telegram.start();
  await discord.start();
  return t;
}

async function idle(): Promise<void> {
  await telegram!.idle();
  await discord!.idle();
}

/** Alice types on Telegram; resolves to the bot's reply to her message. */
async function tgAsk(from: TgUser, text: string): Promise<TgMessage> {
  const { messageId } = tg!.userSends(from, team, text);
  const reply = await waitFor(`the answer to ${text}`, async () => tg!.sent(OVERSIGHT).find((m) => m.reply_to === messageId));
  await idle();
  return tg!.sent(OVERSIGHT).find((m) => m.message_id === reply.message_id)!;
}

async function tgPress(from: TgUser, message: TgMessage, id: string, yes = true): Promise<{ text?: string; show_alert?: boolean }> {
  const pressed = tg!.userPresses(from, message, `cf:${id}:${yes ? "ok" : "no"}`);
  await waitFor("the button's answer", async () => tg!.answers.get(pressed));
  await idle();
  return tg!.answers.get(pressed)!;
}

async function dcPress(user: DUser, message: DMessage, id: string): Promise<InteractionRecord> {
  const r = dc!.press(user, message, `cf:${id}:ok`);
  await waitFor("the press to be acknowledged", async () => r.ackType !== undefined);
  await idle();
  return r;
}

async function dcSlash(user: DUser, name: string, options: Record<string, string | number>): Promise<string> {
  const r = dc!.slash(user, name, options);
  await waitFor(`the answer to /${name}`, async () => r.ackType !== undefined && ((r.original && r.original.content !== "") || r.deleted !== undefined) && (r.original?.content !== "" || r.followUps.length > 0));
  await idle();
  return [r.original, ...r.followUps].map(dShown).join("\n");
}

describe("/symbols and /interval on Telegram and Discord", () => {
  it("change the schedule from either platform, and refuse bad input there too", async () => {
    const t = await twoPlatforms();
    await dc!.connected();
    expect(plain(await tgAsk(aliceTg, "/symbols add SOL"))).toMatch(/^Unknown symbol SOL\/USDT: the market does not list it .*Nothing was changed\.$/);
    expect(plain(await tgAsk(aliceTg, "/interval 2s"))).toMatch(/^The interval must be from 5 s to 24 h, got 2 s\. Nothing was changed\.$/);
    expect(plain(await tgAsk(bobTg, "/symbols add ETH"))).toBe("Sorry, /symbols needs the admin role; you are a trader. Nothing was changed.");
    expect(plain(await tgAsk(aliceTg, "/symbols remove ETH"))).toMatch(/^Removed ETH\/USDT: no more scheduled decisions for it/);
    expect(t.app.symbols).not.toContain("ETH/USDT");
    // Discord's /decide offers the watched symbols as choices: registered again without ETH.
    const decideChoices = () => ((dc!.commands.get(`guild:${dc!.guildId}`) ?? []).find((c) => c.name === "decide")?.options as { choices?: { value: string }[] }[] | undefined)?.[0]?.choices?.map((c) => c.value).join(",");
    await waitFor("Discord's choices without ETH", async () => decideChoices() === "BTC,DOGE");

    expect(await dcSlash(aliceDc, "symbols", { change: "add", symbol: "SOL" })).toMatch(/Unknown symbol SOL\/USDT: the market does not list it/);
    expect(await dcSlash(aliceDc, "interval", { duration: "soon" })).toMatch(/"soon" is not a duration\. Usage: \/interval \[DURATION\]/);
    expect(await dcSlash(aliceDc, "symbols", { change: "add", symbol: "eth" })).toMatch(/^Added ETH\/USDT\. Symbols now: BTC, DOGE, ETH/);
    await waitFor("Discord's choices with ETH again", async () => decideChoices() === "BTC,DOGE,ETH");
    expect(await dcSlash(aliceDc, "interval", { duration: "15m" })).toMatch(/^Decision interval: 5 min → 15 min/);
    expect(t.app.control.intervalMs()).toBe(900_000);
    expect(plain(await tgAsk(aliceTg, "/interval"))).toMatch(/^Decisions every 15 min \(set from chat by @alice_dc at /);
  });
});

describe("APPROVALS=2: a second admin, on Telegram and Discord alike", () => {
  it("Telegram: loosening a limit waits for another admin; the asker pressing twice counts for nothing; both are audited", async () => {
    const t = await twoPlatforms();
    const reply = await tgAsk(aliceTg, "/limits max_position 20");
    expect(plain(reply)).toMatch(/^Loosen max_position \(largest position, % of equity\) from 10 to 20\? This allows more risk\.\nNeeds a second admin's approval \(APPROVALS=2\): an admin other than @alice presses Approve within 600 s, or types \/confirm \S+\. Unanswered, it is cancelled\.$/);
    expect(reply.reply_markup!.inline_keyboard[0]!.map((b) => b.text)).toEqual(["Approve", "Reject"]);
    const id = idOf(reply)!;
    // The other admins are told where they are: the alert chats of both platforms carry the buttons.
    await waitFor("the Discord copy", async () => dc!.messagesIn().find((m) => m.content.includes("needs a second admin")));
    const dcCopy = dc!.messagesIn().find((m) => m.content.includes("needs a second admin"))!;
    expect(dShown(dcCopy)).toMatch(/Asked by @alice: it needs a second admin\. An admin other than @alice can approve or reject until/);
    expect(dcCopy.components[0]!.components.map((c) => c.label)).toEqual(["Approve", "Reject"]);

    for (let i = 0; i < 2; i++) {
      const own = await tgPress(aliceTg, reply, id);
      expect(own.show_alert).toBe(true);
      expect(own.text).toMatch(/^You asked for this, so it needs another admin's approval \(APPROVALS=2\); your own press does not count\./);
      expect(t.app.services.limits.maxPositionPct).toBe(10);
    }
    // /confirm where there are no buttons: the asker's own counts for nothing there either.
    expect((await tgAsk(aliceTg, `/confirm ${id}`)).text).toMatch(/You asked for this/);
    expect((await tgPress(bobTg, reply, id)).text).toBe("Only @alice (who asked) or an admin can answer this. Nothing was changed.");
    expect(t.app.services.limits.maxPositionPct).toBe(10);

    const approved = await tgPress(carolTg, reply, id);
    expect(approved.text).toMatch(/^✅ Approved by @carol\./);
    expect(t.app.services.limits.maxPositionPct).toBe(20);
    expect(plain(tg!.sent(OVERSIGHT).find((m) => m.message_id === reply.message_id))).toMatch(/✅ Approved by @carol \(asked by @alice\)\.\nmax_position .*: 10 → 20\. In force now/);
    expect((await tgPress(carolTg, reply, id)).text).toMatch(/^Too late: this was already confirmed by @carol/);
    expect(t.app.services.limits.maxPositionPct).toBe(20);

    const audit = await ChatServices.of(t.app).audit.recent(20);
    expect(audit.find((e) => e.result === "asked")).toMatchObject({ user: "@alice", command: "/limits max_position 20" });
    expect(audit.find((e) => e.result === "confirmed")).toMatchObject({ user: "@carol", command: "/limits max_position 20" });
    expect(audit.find((e) => e.result === "confirmed")!.detail).toMatch(/^asked by @alice \(telegram 101\), approved by @carol \(telegram 104\)/);
  });

  it("Discord: a refill waits for another admin; the asker's press is refused, another admin's on the alert copy runs it once", async () => {
    const t = await twoPlatforms();
    await dc!.connected();
    const asked = dc!.slash(aliceDc, "refill", { amount: 5 });
    await waitFor("the question", async () => asked.original?.components?.[0]?.components[0]?.label === "Approve");
    await idle();
    expect(dShown(asked.original)).toMatch(/^Refill: add \$5\.00 to the paper USDC wallet[\s\S]*Needs a second admin's approval \(APPROVALS=2\): an admin other than @alice_dc presses Approve/);
    const id = /^cf:([^:]+):ok$/.exec(asked.original!.components[0]!.components[0]!.custom_id!)![1]!;
    const before = await t.app.services.balance.getBalance();

    const own = await dcPress(aliceDc, asked.original!, id);
    await waitFor("the refusal", async () => own.followUps.length > 0);
    expect(dShown(own.followUps[0])).toMatch(/^You asked for this, so it needs another admin's approval/);
    expect(dc!.isEphemeral(own.followUps[0])).toBe(true);
    expect(await t.app.services.balance.getBalance()).toBe(before);

    const copy = await waitFor("the alert channel's copy", async () => dc!.messagesIn().find((m) => m.content.includes("needs a second admin") && m.components.length > 0));
    await dcPress(daveDc, copy, id);
    await waitFor("the refill", async () => (await t.app.services.balance.getBalance()) === before + 5_000_000);
    // Pressed again by dave on the other copy: still one refill.
    const again = await dcPress(daveDc, asked.original!, id);
    await waitFor("the answer", async () => again.followUps.length > 0);
    expect(dShown(again.followUps[0])).toMatch(/^Too late: this was already confirmed by @dave/);
    expect(await t.app.services.balance.getBalance()).toBe(before + 5_000_000);
    // Telegram's copy says what became of it.
    await idle();
    expect(plain(tg!.sent(OVERSIGHT).find((m) => plain(m).includes("Refill: add $5.00")))).toMatch(/✅ Approved by @dave \(asked by @alice_dc\)\.\nRefilled \$5\.00/);
  });

  it("a large trade nobody else approves is cancelled at the timeout, and says so", async () => {
    const t = await twoPlatforms();
    const reply = await tgAsk(aliceTg, "/trade buy BTC 500");
    expect(plain(reply)).toMatch(/^Buy 500\.00 USDT of BTC\/USDT at about [\d,.]+ \[PAPER\]\? It is above the 100\.00 USDT that needs a confirmation\.\nNeeds a second admin's approval/);
    const id = idOf(reply)!;
    const copy = await waitFor("the Discord copy", async () => dc!.messagesIn().find((m) => m.content.includes("needs a second admin")));
    t.clock.advance(600_000);
    expect(await ChatServices.of(t.app).sweep()).toBe(1);
    await idle();
    expect(plain(tg!.sent(OVERSIGHT).find((m) => m.message_id === reply.message_id))).toMatch(/⌛ Expired at \d\d:\d\d:\d\d UTC\. No second admin approved in time: cancelled, nothing was done\.$/);
    const dcCopy = dc!.messagesIn().find((m) => m.id === copy.id)!;
    expect(dShown(dcCopy)).toMatch(/No second admin approved in time/);
    expect(dcCopy.components).toEqual([]);
    expect(await t.app.services.exchange.trades(10)).toHaveLength(0);
    expect((await tgPress(carolTg, reply, id)).text).toMatch(/^Too late: this was expired/);
    expect((await ChatServices.of(t.app).audit.recent(10)).some((e) => e.result === "expired" && e.command === "/trade buy BTC 500")).toBe(true);
  });
});

// ---- First start -------------------------------------------------------------------------------

describe("first start", () => {
  it("on a fresh install waits one interval before the first decision, says so in the banner, and a restart keeps the schedule", async () => {
    const fresh = (c: Config) => {
      c.market.symbols = ["BTC/USDT"];
      c.schedule.firstDecision = "interval";
    };
    const t = await app(fresh, { models: scriptedModels(() => buyReply(3.7)) });
    const startedAt = Date.now();
    await t.app.startJobs();
    expect(t.app.firstDecisionAt).toBeGreaterThanOrEqual(startedAt + 300_000);
    const btc = await schedulerOf(t, "decide:BTC/USDT");
    expect(btc!.next!).toBeGreaterThanOrEqual(startedAt + 300_000);
    // The workers run: a monitor job scheduled at once completes; the decision job does not run.
    const monitors = new Queue("monitors", { connection: t.app.bull.connection, prefix: t.app.bull.prefix });
    queues.push(monitors);
    await waitFor("a monitor job to run", async () => (await monitors.getCompletedCount()) > 0);
    const decisions = decisionsQueue(t);
    expect(await decisions.getJobCounts("waiting", "active", "completed", "failed")).toEqual({ waiting: 0, active: 0, completed: 0, failed: 0 });
    const [delayed] = await decisions.getDelayed();
    expect(delayed!.timestamp + delayed!.delay).toBeGreaterThanOrEqual(startedAt + 300_000);
    expect(await t.app.services.exchange.trades(10)).toHaveLength(0);
    expect(await t.app.services.ledger.recent(10)).toHaveLength(0);
    expect(await banner(t.app, "test")).toMatch(/\n {2}First decision: \d\d:\d\d:\d\d UTC \(in about 5 min\): a first start waits one decision interval, so nothing trades before you have read this \(FIRST_DECISION=now starts at once\)\n/);

    // A restart keeps the schedule it had: no new wait, no earlier decision.
    await t.app.stop();
    apps.splice(apps.indexOf(t), 1);
    const again = await app(fresh, { url: t.url, models: scriptedModels(() => buyReply(3.7)) });
    await again.app.startJobs();
    expect(again.app.firstDecisionAt).toBeUndefined();
    expect((await schedulerOf(again, "decide:BTC/USDT"))!.next).toBe(btc!.next);
    expect(await banner(again.app, "test")).toMatch(/\n {2}First decision: \d\d:\d\d:\d\d UTC \(in about [45] min\)\n/);
  });

  it("with FIRST_DECISION=now decides at once (what the default prevents)", async () => {
    const t = await app((c) => (c.market.symbols = ["BTC/USDT"]), { models: scriptedModels(() => buyReply(3.7)) });
    await t.app.startJobs();
    await waitFor("the first scheduled order", async () => (await t.app.services.exchange.trades(10)).length > 0);
    expect(t.app.firstDecisionAt).toBeUndefined();
  });
});
