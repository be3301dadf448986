// grammy itself, over loopback, against a Bot API stand-in (test/support/telegramStandIn.ts).
import { loadImage } from "@napi-rs/canvas";
import { afterEach, describe, expect, it } from "vitest";
import { COMMANDS, handleCommand } from "../commands/registry.js";
import { runBalanceMonitor } from "../jobs/balanceMonitor.js";
import { isPng } from "../src/chat/charts/render.js";
import { installNoticeCharts } from "../src/chat/charts/hooks.js";
import { ChatServices } from "../src/chat/services.js";
import { RateLimiter } from "../src/chat/outbox.js";
import { TelegramChat, type TelegramOptions } from "../src/chat/telegram/telegramChat.js";
import { USDC } from "../src/domain/types.js";
import type { Notice } from "../src/chat/notices.js";
import { Redis } from "ioredis";
import type { Config } from "../src/config/config.js";
import { freePort } from "../bench/results.js";
import { snapshot, startTestApp, testConfig, waitFor, type TestApp } from "./support/app.js";
import type { AppOptions } from "../src/app.js";
import { runPositionMonitor } from "../jobs/positionMonitor.js";
import { SteeredMarket } from "./support/market.js";
import { parsedLength, TelegramStandIn, type TgChat, type TgMessage, type TgUser } from "./support/telegramStandIn.js";

const alice: TgUser = { id: 101, is_bot: false, first_name: "Alice", username: "alice" }; // admin
const bob: TgUser = { id: 102, is_bot: false, first_name: "Bob", username: "bob" }; // trader
const vera: TgUser = { id: 103, is_bot: false, first_name: "Vera" }; // viewer
const carol: TgUser = { id: 104, is_bot: false, first_name: "Carol", username: "carol" }; // admin
const mallory: TgUser = { id: 666, is_bot: false, first_name: "Mallory", username: "mallory" }; // not allowed

/** Pacing wide open: every post still goes through it, none waits. */
const OPEN = new RateLimiter(() => ({ burst: 1e9, perSecond: 1e9 }), { burst: 1e9, perSecond: 1e9 });

const OVERSIGHT = -1001234567890;
const team: TgChat = { id: OVERSIGHT, type: "supergroup", title: "Trading team", is_forum: true };
const dm = (u: TgUser): TgChat => ({ id: u.id, type: "private", first_name: u.first_name });

let t: TestApp | undefined;
let tg: TelegramStandIn | undefined;
let chat: TelegramChat | undefined;

afterEach(async () => {
  await chat?.stop();
  await t?.app.stop();
  await tg?.stop();
  chat = undefined;
  t = undefined;
  tg = undefined;
});

async function start(edit: (c: Config) => void = () => {}, opts: Partial<TelegramOptions> = {}, appOpts: AppOptions = {}): Promise<{ t: TestApp; tg: TelegramStandIn; chat: TelegramChat }> {
  tg = await new TelegramStandIn().start();
  t = await startTestApp(
    testConfig((c) => {
      c.chat.telegram.token = tg!.token;
      c.chat.telegram.apiUrl = tg!.apiRoot;
      c.chat.telegram.chatId = String(OVERSIGHT);
      c.chat.telegram.allowedUsers = [
        { id: "101", role: "admin" },
        { id: "102", role: "trader" },
        { id: "103", role: "viewer" },
        { id: "104", role: "admin" },
      ];
      edit(c);
    }),
    appOpts,
  );
  // Pacing has a test of its own; here Telegram's limits would only slow the tests down.
  chat = new TelegramChat(t.app, { token: tg.token, apiRoot: tg.apiRoot, chatId: String(OVERSIGHT), limiter: OPEN, ...opts });
  t.app.notifier.add(chat);
  await chat.start();
  return { t, tg, chat };
}

/** Visible text of a message sent in HTML mode. */
const plain = (m: TgMessage | undefined) =>
  (m?.text ?? m?.caption ?? "").replace(/<[^>]+>/g, "").replace(/&lt;/g, "<").replace(/&gt;/g, ">").replace(/&amp;/g, "&");

/** A user sends a command; resolves when the bot has answered it (and finished any edits and photos). */
async function ask(from: TgUser, where: TgChat, text: string, thread?: number): Promise<TgMessage[]> {
  const before = new Set(tg!.sent(where.id).map((m) => m.message_id));
  const { messageId } = tg!.userSends(from, where, text, thread);
  await waitFor(`the answer to ${text}`, async () => tg!.sent(where.id).some((m) => m.reply_to === messageId));
  await chat!.idle();
  // Copies, so a later edit does not change what the test saw; notices (which start with their
  // bold label) are not answers, even when they land in the same chat.
  return structuredClone(tg!.sent(where.id).filter((m) => !before.has(m.message_id) && !isNotice(m)));
}

const isNotice = (m: TgMessage) => (m.text ?? "").startsWith("<b>");

const confirmationIdOf = (m: TgMessage | undefined) => /^cf:([^:]+):ok$/.exec(m?.reply_markup?.inline_keyboard[0]?.[0]?.callback_data ?? "")?.[1];

async function press(from: TgUser, message: TgMessage, yes = true): Promise<{ text?: string; show_alert?: boolean }> {
  const id = tg!.userPresses(from, message, `cf:${confirmationIdOf(message)}:${yes ? "ok" : "no"}`);
  await waitFor("the button's answer", async () => tg!.answers.get(id));
  await chat!.idle();
  return tg!.answers.get(id)!;
}

const paperBalance = async () => (await t!.app.services.balance.getBalance()) / 1_000_000;
// Like the audit log, the claims of updates received (src/chat/deliveries.ts) record what came in, not state a command changed.
const withoutAudit = async () => Object.fromEntries(Object.entries(await snapshot(t!.url)).filter(([k]) => !k.startsWith("audit:") && !k.startsWith("chat:telegram:update:")));

describe("Telegram: startup", () => {
  it("sets the command menu and long-polls", async () => {
    const { tg } = await start();
    expect(tg.commands.map((c) => c.command).sort()).toEqual(COMMANDS.map((c) => c.name).sort());
    for (const c of tg.commands) expect(c.description.length).toBeGreaterThan(3);
    expect(tg.callsOf("deleteWebhook")).toHaveLength(1);
    await waitFor("a long poll", async () => tg.callsOf("getUpdates").some((c) => Number(c.params.timeout) > 0));
  });

  it("starts and answers commands when the server lacks setMyCommands, saying so in the log", async () => {
    tg = await new TelegramStandIn().start();
    tg.lacking.add("setMyCommands");
    const warnings: string[] = [];
    const log = { debug() {}, info() {}, error() {}, warn: (m: string, e?: unknown) => void warnings.push(`${m} ${String(e)}`) };
    t = await startTestApp(
      testConfig((c) => {
        c.chat.telegram.token = tg!.token;
        c.chat.telegram.allowedUsers = [{ id: "101", role: "admin" }];
      }),
      { log },
    );
    chat = new TelegramChat(t.app, { token: tg.token, apiRoot: tg.apiRoot, limiter: OPEN });
    await chat.start();
    expect(tg.calls.filter((c) => c.method === "setMyCommands").map((c) => c.status)).toEqual([404]);
    expect(tg.commands).toEqual([]);
    expect(warnings.join("\n")).toMatch(/could not publish the command menu.*method not found/);
    expect(warnings.join("\n")).not.toContain(tg.token);
    const [reply] = await ask(alice, dm(alice), "/balance");
    expect(plain(reply)).toContain("USDC for model calls: $10.00");
  });

  it("takes updates by webhook when configured, and refuses a post without the secret", async () => {
    const port = await freePort();
    const webhook = { url: `http://127.0.0.1:${port}/telegram`, host: "127.0.0.1", port };
    const { tg } = await start(() => {}, { webhook });
    expect(tg.webhook?.url).toBe(webhook.url);
    expect(tg.webhook?.secret).toMatch(/^[0-9a-f]{48}$/);
    expect(tg.webhook?.secret).not.toContain(tg.token);
    expect(tg.callsOf("getUpdates")).toHaveLength(0);
    const replies = await ask(alice, dm(alice), "/balance");
    expect(plain(replies[0])).toContain("USDC for model calls: $10.00");
    expect(await tg.postWithWrongSecret()).toBe(401);
    await chat!.stop();
    // Deleted on stop, so Telegram stops posting to a dead address and a poller can start.
    expect(tg.webhook).toBeUndefined();
    expect(tg.callsOf("deleteWebhook").length).toBeGreaterThanOrEqual(1);
  });
});

describe("Telegram: two pollers on one token", () => {
  it("backs the second poller off on 409, alerts past the threshold, and takes over when the first stops", async () => {
    const { t, tg, chat: first } = await start();
    await waitFor("the first long poll", async () => tg.callsOf("getUpdates").some((c) => Number(c.params.timeout) > 0));
    const alerts: { type: string; at: number; since?: number }[] = [];
    t.app.notifier.add({ name: "capture", deliver: async (n) => void (n.event?.type.startsWith("chat-") && alerts.push({ type: n.event.type, at: Date.now(), ...("since" in n.event ? { since: n.event.since } : {}) })) });
    const second = new TelegramChat(t.app, { token: tg.token, apiRoot: tg.apiRoot, limiter: OPEN, retry: { firstMs: 50, maxMs: 400 }, downAlertAfterMs: 400 });
    try {
      await second.start();
      await waitFor("the second poller to be refused four times", async () => tg.conflicts >= 4);
      const refused = tg.calls.filter((c) => c.method === "getUpdates" && c.status === 409);
      expect(refused.length).toBe(tg.conflicts);
      // It waits longer each time (doubling, with jitter), instead of hammering the API.
      expect(refused[3]!.at - refused[2]!.at).toBeGreaterThan(refused[1]!.at - refused[0]!.at);
      expect(second.health()).toMatchObject({ ok: false, problems: [expect.stringMatching(/polling down .*409 Conflict/)] });
      expect(first.health()).toEqual({ ok: true, problems: [] });
      // Past the threshold the other platforms hear of it (here the first poller's oversight chat).
      await waitFor("the down alert", async () => tg.sent(OVERSIGHT).some((m) => plain(m).includes("Telegram is down since")));
      const down = alerts.find((a) => a.type === "chat-down")!;
      expect(down.at - down.since!).toBeGreaterThanOrEqual(400);
      // Meanwhile the first poller answers as before, and nobody answers twice.
      const [reply] = await ask(alice, dm(alice), "/balance");
      expect(plain(reply)).toContain("USDC for model calls");
      expect(tg.sent(alice.id)).toHaveLength(1);

      await first.stop();
      await waitFor("the second poller to take over", async () => second.health().ok);
      await waitFor("the recovery notice", async () => alerts.some((a) => a.type === "chat-up"));
      const { messageId } = tg.userSends(bob, dm(bob), "/status");
      await waitFor("the second poller's answer", async () => tg.sent(bob.id).some((m) => m.reply_to === messageId));
      expect(plain(tg.sent(bob.id)[0])).toMatch(/^Trading: running/);
    } finally {
      await second.stop();
    }
  });
});

describe("Telegram: every command", () => {
  it("answers every command for an allowed user, in a forum topic, in the topic", async () => {
    const { t } = await start();
    const expected: Record<string, [string, RegExp][]> = {
      help: [["/help", /Commands:[\s\S]*\/decide SYMBOL[\s\S]*\/audit/]],
      decide: [["/decide BTC", /BTC\/USDT: (BUY|SELL|HOLD|CLOSE)[\s\S]*Model: offline-engine/]],
      balance: [["/balance", /USDC for model calls: \$10\.00 — OK/]],
      refill: [["/refill 5", /Refill: add \$5\.00 to the paper USDC wallet[\s\S]*Confirm within 60 s/]],
      confirm: [["/confirm REFILL", /Confirmed by @alice[\s\S]*Refilled \$5\.00\. USDC balance now \$15\.00/]],
      cancel: [["/refill 7", /Refill: add \$7\.00/], ["/cancel REFILL", /Cancelled by @alice\. Nothing was done/]],
      pause: [["/pause", /Trading paused/]],
      resume: [["/resume", /Trading resumed/]],
      model: [["/model", /1\. offline-engine/]],
      status: [["/status", /Trading: running · PAPER/]],
      positions: [["/positions", /No open positions \[PAPER\]/]],
      report: [["/report", /Cost report \(today/]],
      profit: [["/profit", /Profit \[PAPER\], from the books\nSince start: realized [+-]\d+\.\d\d USDT/]],
      daily: [["/daily 3", /Daily profit \[PAPER\], USDT \(AI in USDC\), UTC:\nDay +Realized +Trades +Fees +AI +Net(\n\d{4}-\d\d-\d\d .*){3}\nTotal/]],
      weekly: [["/weekly", /Weekly profit \[PAPER\][\s\S]*Week of[\s\S]*Total/]],
      monthly: [["/monthly 2", /Monthly profit \[PAPER\][\s\S]*Month[\s\S]*Total/]],
      // /decide BTC ran first, and the offline engine may have bought.
      performance: [["/performance", /Performance \[PAPER\]|No trades on the books yet/]],
      trades: [["/trades 5", /Last \d trade\(s\) \[PAPER\]|No trades on the books yet/]],
      export: [["/export trades", /trade\(s\) \[PAPER\] as CSV|No trades on the books: no file sent/]],
      session: [["/session", /No permit sessions: the router is not paid from a wallet by permit/]],
      trade: [["/trade buy BTC 50", /Manual BUY 0\.\d+ BTC @ [\d,.]+ = 50\.0\d USDT[\s\S]*\[PAPER\][\s\S]*Stop loss/]],
      orders: [["/trade buy BTC 20 @ 1000", /Limit BUY 0\.020000 BTC @ 1,000(\.00)? placed, order [0-9a-f]{6} \[PAPER\]/], ["/orders", /Open orders \[PAPER\]:\n {2}[0-9a-f]{6} {2}BUY 0\.020000 BTC @ 1,000/]],
      cancel_order: [["/cancel_order abcdef", /No open order with id abcdef: nothing was cancelled/], ["/cancel_order x", /Usage: \/cancel_order ID/]],
      stop: [["/stop BTC 1", /wider than the 10% allowed/], ["/stop BTC 99999999", /at or above the price now/], ["/stop XYZ 1", /Unknown symbol "XYZ"/]],
      tp: [["/tp BTC 1", /at or below the price now/]],
      close: [["/close BTC", /Closed BTC\/USDT: Manual SELL 0\.\d+ BTC/], ["/close BTC", /There is no open BTC\/USDT position to close/]],
      stopentry: [["/stopentry", /New entries stopped/], ["/trade buy BTC 20", /New entries are stopped/], ["/stopentry off", /New entries allowed again/]],
      limits: [["/limits", /Risk limits:[\s\S]*position ≤ 10%/], ["/limits max_position 8", /max_position \(largest position, % of equity\): 10 → 8/]],
      symbols: [["/symbols", /Symbols: BTC\/USDT, ETH\/USDT, DOGE\/USDT \(from SYMBOLS=/], ["/symbols add SOL", /Unknown symbol SOL\/USDT: the market does not list it[\s\S]*Nothing was changed/]],
      interval: [["/interval", /Decisions every 5 min \(from DECISION_INTERVAL_SECONDS=300/], ["/interval 2s", /The interval must be from 5 s to 24 h, got 2 s\. Nothing was changed/]],
      users: [["/users", /telegram 101: admin \(configuration\)/]],
      grant: [["/grant telegram 555 trader", /telegram user 555 is now a trader/]],
      revoke: [["/revoke telegram 555", /telegram user 555 has no access any more/]],
      dashboard: [["/dashboard", /Ask \/dashboard in your private chat with the bot: a personal link posted here would be seen by everyone/]],
      whoami: [["/whoami", /You are @alice \(telegram user 101\), an admin\.\nHere: telegram supergroup "Trading team" \(-1001234567890\) topic 9\./]],
      audit: [["/audit 50", /Audit log, last \d+[\s\S]*@alice \(telegram 101, admin\) in telegram supergroup "Trading team" \(-1001234567890\) topic 9: \/limits max_position 8 → ok/]],
    };
    expect(Object.keys(expected).sort()).toEqual(COMMANDS.map((c) => c.name).sort());
    let refillId: string | undefined;
    for (const name of COMMANDS.map((c) => c.name)) {
      for (const [line, pattern] of expected[name]!) {
        const replies = await ask(alice, team, line.replace("REFILL", refillId ?? ""), 9);
        const text = replies.map(plain).join("\n");
        expect(text, line).toMatch(pattern);
        // Every part of the answer went to the topic it was asked in.
        for (const m of replies) expect(m.message_thread_id, line).toBe(9);
        refillId = confirmationIdOf(replies.at(-1)) ?? refillId;
      }
    }
    expect(await paperBalance()).toBe(15);
    expect(t.app.services.limits.maxPositionPct).toBe(8);
  });

  it("refuses every command, politely and changing nothing, from someone not on the allow-list", async () => {
    const { t } = await start();
    await ask(alice, dm(alice), "/balance"); // seeds the paper wallet and the day's starting equity
    const before = await withoutAudit();
    for (const c of COMMANDS) {
      const line = `/${c.name}${c.example ? c.example.slice(c.name.length + 1) : ""}`;
      const replies = await ask(mallory, team, line);
      expect(replies, line).toHaveLength(1);
      expect(plain(replies[0]), line).toBe(`Sorry, you are not on this bot's allow-list, so I can't run that. Nothing was changed.\nAn admin can add you with: /grant telegram 666 viewer`);
    }
    expect(await withoutAudit()).toEqual(before);
    // The attempts at state-changing commands are in the audit log, with who and where.
    const audit = await ChatServices.of(t.app).audit.recent(50);
    expect(audit.filter((e) => e.userId === "666").map((e) => e.command)).toEqual(expect.arrayContaining(["/refill 10", "/decide BTC", "/pause", "/trade buy BTC 50"]));
    for (const e of audit.filter((e) => e.userId === "666")) expect(e.result).toBe("refused");
  });

  it("refuses commands above a user's role, and a revoked user, changing nothing", async () => {
    await start();
    await ask(alice, dm(alice), "/balance");
    const before = await withoutAudit();
    for (const [user, line, role] of [
      [vera, "/decide BTC", "trader"],
      [vera, "/pause", "trader"],
      [vera, "/trade buy BTC 50", "trader"],
      [bob, "/refill 10", "admin"],
      [bob, "/limits max_position 50", "admin"],
      [bob, "/grant telegram 102 admin", "admin"],
      [bob, "/audit", "admin"],
    ] as const) {
      const [reply] = await ask(user, team, line);
      expect(plain(reply), line).toMatch(new RegExp(`needs the ${role} role; you are a (viewer|trader)\\. Nothing was changed\\.`));
    }
    expect(await withoutAudit()).toEqual(before);
    expect(plain((await ask(alice, team, "/revoke telegram 102"))[0])).toMatch(/no access any more/);
    expect(plain((await ask(bob, team, "/status"))[0])).toMatch(/not on this bot's allow-list/);
    expect(plain((await ask(alice, team, "/revoke telegram 101"))[0])).toMatch(/cannot revoke yourself/);
  });

  it("answers Telegram's /start with the command list", async () => {
    await start();
    const [reply] = await ask(vera, dm(vera), "/start");
    expect(plain(reply)).toMatch(/^Commands:\n {2}\/decide SYMBOL|^Commands:/);
    expect(plain(reply)).not.toContain("/refill");
  });

  it("ignores commands for another bot in a group, and answers its own by name", async () => {
    const { tg } = await start();
    tg.userSends(alice, team, "/status@some_other_bot");
    const mine = await ask(alice, team, "/status@trading_agent_test_bot");
    expect(plain(mine[0])).toMatch(/^Trading: running/);
    expect(tg.sent(OVERSIGHT).filter((m) => plain(m).startsWith("Trading: running"))).toHaveLength(1);
  });
});

describe("Telegram: confirmation buttons", () => {
  it("runs /refill when the requester presses in time, and only once", async () => {
    const { tg } = await start();
    const [question] = await ask(alice, team, "/refill 10");
    expect(question!.reply_markup?.inline_keyboard[0]!.map((b) => b.text)).toEqual(["Confirm", "Cancel"]);
    expect(await paperBalance()).toBe(10);

    const answer = await press(alice, question!);
    expect(answer.show_alert).toBeFalsy();
    expect(answer.text).toMatch(/Confirmed by @alice/);
    expect(await paperBalance()).toBe(20);
    const edited = tg.sent(OVERSIGHT).find((m) => m.message_id === question!.message_id)!;
    expect(plain(edited)).toMatch(/^Refill: add \$10\.00[\s\S]*✅ Confirmed by @alice\.\nRefilled \$10\.00\. USDC balance now \$20\.00\./);
    expect(edited.reply_markup).toBeUndefined();

    const again = await press(alice, question!);
    expect(again.show_alert).toBe(true);
    expect(again.text).toMatch(/Too late: this was already confirmed by @alice/);
    expect(await paperBalance()).toBe(20);
  });

  it("answers the press as soon as it is decided, before the slow work it starts, then edits the message with the outcome", async () => {
    const { t, tg } = await start();
    // A refill that waits for its receipt (an on-chain one waits up to 60 s) until the test lets it go.
    const balance = t.app.services.balance;
    const refill = balance.refill.bind(balance);
    let entered!: () => void;
    const working = new Promise<void>((r) => (entered = r));
    let release!: () => void;
    const released = new Promise<void>((r) => (release = r));
    balance.refill = async (...args) => {
      entered();
      await released;
      return refill(...args);
    };
    const [question] = await ask(alice, team, "/refill 10");
    const id = tg.userPresses(alice, question!, `cf:${confirmationIdOf(question)}:ok`);
    await working;
    // The refill is under way and cannot end: the presser has their answer all the same.
    await waitFor("the button's answer while the refill waits", async () => tg.answers.get(id));
    expect(tg.answers.get(id)).toEqual({ text: "✅ Confirmed by @alice. Working on it…" });
    expect(tg.calls.filter((c) => c.method === "answerCallbackQuery").map((c) => c.status)).toEqual([200]);
    expect(await paperBalance()).toBe(10);
    expect(plain(tg.sent(OVERSIGHT).find((m) => m.message_id === question!.message_id))).not.toContain("Confirmed");

    release();
    await waitFor("the message edited with the outcome", async () => plain(tg.sent(OVERSIGHT).find((m) => m.message_id === question!.message_id)).includes("Refilled $10.00"));
    await chat!.idle();
    expect(await paperBalance()).toBe(20);
    const edited = tg.sent(OVERSIGHT).find((m) => m.message_id === question!.message_id)!;
    expect(plain(edited)).toMatch(/✅ Confirmed by @alice\.\nRefilled \$10\.00\. USDC balance now \$20\.00\./);
    expect(edited.reply_markup).toBeUndefined();
    // One answer only: a second would be refused as "query is too old".
    expect(tg.calls.filter((c) => c.method === "answerCallbackQuery")).toHaveLength(1);
  });

  it("answers a press that is slow to decide (a slow Redis) in time, and tells a refusal that comes after in the chat", async () => {
    const { t, tg } = await start(() => {}, { pressAnswerWithinMs: 50 });
    const [question] = await ask(bob, team, "/trade buy BTC 500");
    // Who pressed is looked up in Redis: held here until the presser has been answered.
    const access = t.app.chat.access;
    const roleOf = access.roleOf.bind(access);
    let release!: () => void;
    const released = new Promise<void>((r) => (release = r));
    access.roleOf = async (...args) => {
      await released;
      return roleOf(...args);
    };
    const id = tg.userPresses(vera, question!, `cf:${confirmationIdOf(question)}:ok`);
    await waitFor("the holding answer", async () => tg.answers.get(id));
    expect(tg.answers.get(id)).toEqual({ text: "Working on it…" });
    release();
    await waitFor("the refusal in the chat", async () => tg.sent(OVERSIGHT).find((m) => m.reply_to === question!.message_id && plain(m).includes("Only @bob")));
    await chat!.idle();
    expect(plain(tg.sent(OVERSIGHT).find((m) => m.reply_to === question!.message_id && plain(m).includes("Only @bob")))).toBe("Vera: Only @bob (who asked) or an admin can answer this. Nothing was changed.");
    expect(tg.calls.filter((c) => c.method === "answerCallbackQuery")).toHaveLength(1);
    expect(await t.app.services.portfolio.positions()).toHaveLength(0);
  });

  it("refuses a press by someone else, then lets an admin confirm", async () => {
    const { tg } = await start();
    const [question] = await ask(bob, team, "/trade buy BTC 500");
    expect(plain(question)).toMatch(/Buy 500\.00 USDT of BTC\/USDT at about [\d,.]+ \[PAPER\]\? It is above the 100\.00 USDT/);
    const vote = await press(vera, question!);
    expect(vote.show_alert).toBe(true);
    expect(vote.text).toBe("Only @bob (who asked) or an admin can answer this. Nothing was changed.");
    const stranger = await press(mallory, question!);
    expect(stranger.text).toMatch(/not on this bot's allow-list/);
    expect(await t!.app.services.portfolio.positions()).toHaveLength(0);
    expect(tg.sent(OVERSIGHT).find((m) => m.message_id === question!.message_id)!.reply_markup).toBeDefined();

    const admin = await press(carol, question!);
    expect(admin.text).toMatch(/Confirmed by @carol/);
    const positions = await t!.app.services.portfolio.positions();
    expect(positions).toHaveLength(1);
    expect(positions[0]!.qty * positions[0]!.entryPrice).toBeCloseTo(500, -1);
    expect(plain(tg.sent(OVERSIGHT).find((m) => m.message_id === question!.message_id))).toMatch(/Confirmed by @carol\.\nManual BUY/);
  });

  it("refuses a press after the deadline, and the sweep marks an unanswered one expired", async () => {
    const { t, tg } = await start();
    const [late] = await ask(alice, team, "/refill 10");
    t.clock.advance(61_000);
    const answer = await press(alice, late!);
    expect(answer.show_alert).toBe(true);
    expect(answer.text).toMatch(/^Too late: this expired at \d\d:\d\d:\d\d UTC\. Nothing was done\.$/);
    expect(await paperBalance()).toBe(10);
    const edited = tg.sent(OVERSIGHT).find((m) => m.message_id === late!.message_id)!;
    expect(plain(edited)).toMatch(/⌛ Expired at \d\d:\d\d:\d\d UTC\. Nobody confirmed in time: nothing was done\./);
    expect(edited.reply_markup).toBeUndefined();

    const [unanswered] = await ask(alice, team, "/pause all");
    // No positions: nothing to close, so /pause all needs no confirmation.
    expect(plain(unanswered)).toMatch(/Full stop: trading paused; there were no open positions/);
    await ask(alice, team, "/resume");
    await ask(alice, team, "/trade buy ETH 50");
    const [stop] = await ask(alice, team, "/pause all");
    expect(plain(stop)).toMatch(/Full stop \[PAPER\]: pause trading AND close 1 open position\(s\) at market\?\n {2}ETH\/USDT/);
    t.clock.advance(60_000);
    expect(await ChatServices.of(t.app).sweep()).toBe(1);
    await chat!.idle();
    expect(plain(tg.sent(OVERSIGHT).find((m) => m.message_id === stop!.message_id))).toMatch(/⌛ Expired/);
    expect(await t.app.services.state.isPaused()).toBe(false);
    expect(await t.app.services.portfolio.positions()).toHaveLength(1);
    const audit = (await ChatServices.of(t.app).audit.recent(20)).map((e) => `${e.command} ${e.result}`);
    expect(audit).toContain("/pause all expired");
  });

  it("confirms a full stop that closes positions", async () => {
    const { t, tg } = await start();
    await ask(bob, team, "/trade buy BTC 50");
    const [stop] = await ask(bob, team, "/pause all");
    const answer = await press(bob, stop!);
    expect(answer.text).toMatch(/Confirmed by @bob/);
    expect(await t.app.services.portfolio.positions()).toHaveLength(0);
    expect(await t.app.services.state.isPaused()).toBe(true);
    expect(plain(tg.sent(OVERSIGHT).find((m) => m.message_id === stop!.message_id))).toMatch(/Full stop: trading paused, and positions closed:\n {2}BTC\/USDT: sold/);
  });

  it("lets exactly one of two racing presses win", async () => {
    const { tg } = await start();
    for (let round = 0; round < 5; round++) {
      const [question] = await ask(alice, team, "/refill 1");
      const id = confirmationIdOf(question);
      const a = tg.userPresses(alice, question!, `cf:${id}:ok`);
      const c = tg.userPresses(carol, question!, `cf:${id}:ok`);
      await waitFor("both answers", async () => tg.answers.has(a) && tg.answers.has(c));
      await chat!.idle();
      const texts = [tg.answers.get(a)!.text!, tg.answers.get(c)!.text!];
      expect(texts.filter((x) => /^✅ Confirmed by/.test(x)), texts.join(" | ")).toHaveLength(1);
      expect(texts.filter((x) => /^Too late: this was already confirmed/.test(x))).toHaveLength(1);
    }
    expect(await paperBalance()).toBe(15);
  });
});

describe("Telegram: platform limits", () => {
  it("splits a reply of over 5,000 characters on line boundaries, each part within 4096", async () => {
    const { t, tg } = await start();
    const audit = ChatServices.of(t.app).audit;
    for (let i = 0; i < 24; i++) {
      await audit.record({ platform: "telegram", userId: "101", user: "@alice", role: "admin", where: "telegram <b>group</b> & friends", command: `/decide ${"BTC".repeat(20)}-${i}`, result: "failed", detail: `Unknown symbol <${"x".repeat(40)}> & more` });
    }
    const full = (await handleCommand("/audit 24", { user: { id: "101", name: "@alice", platform: "telegram", role: "admin" }, app: t.app })).text;
    expect(full.length).toBeGreaterThan(5000);
    expect(full.length).toBeLessThan(6000);
    const parts = await ask(alice, dm(alice), "/audit 24");
    expect(parts.length).toBe(2);
    for (const p of parts) expect(parsedLength(p.text!, "HTML")).toBeLessThanOrEqual(4096);
    // Nothing lost, nothing cut mid-line, and the <, > and & came through as typed.
    expect(parts.map(plain).join("\n")).toBe(full);
    expect(plain(parts[0]).split("\n").every((line) => full.split("\n").includes(line))).toBe(true);
    expect(tg.callsOf("sendMessage").every((c) => c.params.parse_mode === "HTML")).toBe(true);
  });

  it("waits out a 429 for as long as retry_after says, then sends", async () => {
    const { tg } = await start();
    tg.flood("sendMessage", 1);
    const [reply] = await ask(alice, dm(alice), "/status");
    expect(plain(reply)).toMatch(/^Trading: running/);
    const sends = tg.calls.filter((c) => c.method === "sendMessage");
    expect(sends.map((c) => c.status)).toEqual([429, 200]);
    expect(sends[1]!.at - sends[0]!.at).toBeGreaterThanOrEqual(990);
  });
});

describe("Telegram: flood pacing", () => {
  it("lets a burst of 10 through to a private chat at once, then paces it at one a second", async () => {
    // Telegram's own limits (no `pacing` override), on notices to a private oversight chat.
    const { t, tg } = await start(() => {}, { limiter: undefined, chatId: String(alice.id) });
    await Promise.all(Array.from({ length: 12 }, (_, i) => t.app.notifier.notify({ kind: "info", text: `notice ${i}` })));
    await waitFor("12 notices", async () => tg.sent(alice.id).length === 12);
    const at = tg.callsOf("sendMessage").filter((c) => Number(c.params.chat_id) === alice.id).map((c) => c.at);
    expect(at[9]! - at[0]!).toBeLessThan(500);
    expect(at[10]! - at[0]!).toBeGreaterThanOrEqual(900);
    expect(at[11]! - at[10]!).toBeGreaterThanOrEqual(900);
    expect(tg.calls.filter((c) => c.status === 429)).toHaveLength(0);
  });
});

describe("Telegram: notifications", () => {
  it("delivers a critical alert to the oversight chat, with sound", async () => {
    const { t, tg } = await start();
    await t.app.services.balance.trackCost("drain", "test/model", USDC(9.7), t.clock.now);
    await runBalanceMonitor(t.app);
    await waitFor("the alert", async () => tg.sent(OVERSIGHT).find((m) => plain(m).includes("CRITICAL")));
    const alert = tg.sent(OVERSIGHT).find((m) => plain(m).includes("CRITICAL"))!;
    expect(plain(alert)).toMatch(/^🚨 CRITICAL\nCRITICAL: USDC balance \$0\.30 is under \$0\.50\. Trading is paused/);
    expect(alert.text).toMatch(/^<b>🚨 CRITICAL<\/b>\n/);
    expect(alert.silent).toBeUndefined();
  });

  it("marks trades as paper, sends silent kinds silently and leaves out the ones turned off", async () => {
    const { tg } = await start((c) => {
      c.chat.notify = { ...c.chat.notify, info: "silent", alert: "off" };
    });
    await ask(bob, dm(bob), "/trade buy BTC 50");
    await ask(bob, dm(bob), "/pause");
    await t!.app.notifier.notify({ kind: "alert", text: "Low balance: this kind is off" });
    await chat!.idle();
    const trade = tg.sent(OVERSIGHT).find((m) => plain(m).startsWith("Trade"));
    expect(plain(trade)).toMatch(/^Trade\nManual BUY .*\[PAPER\] by @bob/);
    const info = tg.sent(OVERSIGHT).find((m) => plain(m).includes("Trading paused by @bob"));
    expect(info?.silent).toBe(true);
    expect(tg.sent(OVERSIGHT).some((m) => plain(m).includes("this kind is off"))).toBe(false);
  });

  it("posts /decide at once, edits it with the result, and sends the chart as a PNG photo", async () => {
    const { tg } = await start();
    const replies = await ask(bob, dm(bob), "/decide ETH");
    const first = tg.callsOf("sendMessage").find((c) => c.params.chat_id === bob.id)!;
    expect(first.params.text).toBe("Deciding on ETH with offline-engine…");
    const decision = replies.find((m) => m.text)!;
    expect(decision.edit_date).toBeDefined();
    expect(plain(decision)).toMatch(/^ETH\/USDT: (BUY|SELL|HOLD|CLOSE)/);
    const photo = tg.callsOf("sendPhoto").at(-1)!;
    expect(photo.params.caption).toMatch(/^ETH\/USDT: price, SMA20\/50, Bollinger bands, and the decision/);
    expect(isPng(photo.file!)).toBe(true);
    const image = await loadImage(Buffer.from(photo.file!));
    expect([image.width, image.height]).toEqual([900, 450]);
  });

  it("sends the daily report with its cost chart", async () => {
    const { t, tg } = await start();
    installNoticeCharts(t.app);
    await t.app.services.balance.trackCost("d1", "openai/gpt-4o", USDC(0.1), t.clock.now - 86_400_000);
    await t.app.notifier.notify({ kind: "report", text: await t.app.costReport() });
    await chat!.idle();
    await waitFor("the report chart", async () => tg.callsOf("sendPhoto").length > 0);
    const photo = tg.callsOf("sendPhoto")[0]!;
    expect(Number(photo.params.chat_id)).toBe(OVERSIGHT);
    expect(isPng(photo.file!)).toBe(true);
    expect(photo.params.caption).toMatch(/Model spend per day and per model/);
  });
});

describe("Telegram as it really behaves: chats that change under it", () => {
  const OLD_GROUP = -4001234;
  const SUPERGROUP = -1004001234567;

  it("follows a group upgraded to a supergroup (400 migrate_to_chat_id), keeps the new id across a restart, and says so", async () => {
    const { t, tg } = await start((c) => (c.chat.telegram.chatId = String(OLD_GROUP)), { chatId: String(OLD_GROUP) });
    const seen: Notice[] = [];
    t.app.notifier.add({ name: "other-platforms", deliver: async (n) => void seen.push(n) });
    tg.upgradeToSupergroup(OLD_GROUP, SUPERGROUP);

    await t.app.notifier.notify({ kind: "alert", text: "first alert after the upgrade" });
    await chat!.idle();
    // Refused at the old id with the new one, and sent there.
    const sends = tg.calls.filter((c) => c.method === "sendMessage").map((c) => [Number(c.params.chat_id), c.status]);
    expect(sends.slice(0, 2)).toEqual([[OLD_GROUP, 400], [SUPERGROUP, 200]]);
    expect(tg.sent(SUPERGROUP).some((m) => plain(m).includes("first alert after the upgrade"))).toBe(true);
    expect(chat!.health()).toEqual({ ok: true, problems: [] });
    // The team hears of it, on every platform, with what to change.
    await waitFor("the notice about the move", async () => seen.find((n) => n.event?.type === "chat-moved"));
    const moved = seen.find((n) => n.event?.type === "chat-moved")!;
    expect(moved.text).toBe(`Telegram: chat ${OLD_GROUP} became a supergroup with the new id ${SUPERGROUP}. Messages for it go to the new chat from now on (kept across restarts). It is the alert chat: set TELEGRAM_CHAT_ID=${SUPERGROUP} so the configuration says so too.`);
    await waitFor("the move told in the new chat too", async () => tg.sent(SUPERGROUP).some((m) => plain(m).includes("became a supergroup")));
    expect(seen.filter((n) => n.event?.type === "chat-moved")).toHaveLength(1);
    // Kept in Redis, where every frontend and the next start read it.
    const redis = new Redis(t.url);
    expect(await redis.hgetall("chat:moved:telegram")).toEqual({ [String(OLD_GROUP)]: String(SUPERGROUP) });
    await redis.quit();

    // A restart, with TELEGRAM_CHAT_ID still the old group: the first notice goes to the new chat at once.
    await chat!.stop();
    t.app.notifier.remove(chat!);
    chat = new TelegramChat(t.app, { token: tg.token, apiRoot: tg.apiRoot, chatId: String(OLD_GROUP), limiter: OPEN });
    t.app.notifier.add(chat);
    await chat.start();
    const before = tg.calls.length;
    await t.app.notifier.notify({ kind: "alert", text: "after the restart" });
    await chat.idle();
    expect(tg.calls.slice(before).filter((c) => c.method === "sendMessage").map((c) => [Number(c.params.chat_id), c.status])).toEqual([[SUPERGROUP, 200]]);
  });

  it("marks a private alert chat whose user blocked the bot (403) failing: health, the other platforms told once, no posting into the wall", async () => {
    const { t, tg } = await start((c) => (c.chat.telegram.chatId = String(alice.id)), { chatId: String(alice.id), failingChatRetryMs: 60_000 });
    const seen: Notice[] = [];
    t.app.notifier.add({ name: "other-platforms", deliver: async (n) => void seen.push(n) });
    await t.app.notifier.notify({ kind: "info", text: "before" });
    await chat!.idle();
    expect(chat!.health().ok).toBe(true);

    tg.blockedBy.add(alice.id);
    for (const text of ["one", "two", "three"]) await t.app.notifier.notify({ kind: "alert", text });
    await chat!.idle();
    const health = chat!.health();
    expect(health.ok).toBe(false);
    expect(health.problems).toEqual([
      expect.stringMatching(/^Telegram: cannot post in chat 101 since \d\d:\d\d:\d\d UTC: the user blocked the bot \(403 Forbidden: bot was blocked by the user\): unblock it in Telegram, or set TELEGRAM_CHAT_ID to another chat; 3 notice\(s\) not delivered there$/),
    ]);
    // Told once, to the other platforms, saying what to do.
    const told = seen.filter((n) => n.event?.type === "chat-problem").map((n) => n.text);
    expect(told).toEqual([expect.stringMatching(/^Telegram: cannot post alerts in chat 101: the user blocked the bot .*Alerts and approvals reach the other platforms only\.$/)]);
    // One refused post, not one per notice: the chat is tried again after a minute.
    expect(tg.calls.filter((c) => c.method === "sendMessage" && c.status === 403)).toHaveLength(1);
    expect(chat!.undelivered).toBe(3);
  });

  it("tries a failing chat again and clears it when the user unblocks the bot", async () => {
    const { t, tg } = await start((c) => (c.chat.telegram.chatId = String(alice.id)), { chatId: String(alice.id), failingChatRetryMs: 0 });
    tg.blockedBy.add(alice.id);
    await t.app.notifier.notify({ kind: "alert", text: "lost" });
    await chat!.idle();
    expect(chat!.health().ok).toBe(false);
    tg.blockedBy.delete(alice.id);
    await t.app.notifier.notify({ kind: "alert", text: "back" });
    await chat!.idle();
    expect(chat!.health()).toEqual({ ok: true, problems: [] });
    expect(tg.sent(alice.id).some((m) => plain(m).includes("back"))).toBe(true);
  });

  it("marks the alert chat failing after three notices in a row fail for another reason", async () => {
    const { t, tg } = await start();
    const seen: Notice[] = [];
    t.app.notifier.add({ name: "other-platforms", deliver: async (n) => void seen.push(n) });
    // The bot may no longer post there (an admin restricted it), which an admin can also lift again.
    tg.refuse("sendMessage", 400, "Bad Request: not enough rights to send text messages to the chat", 100);
    for (const text of ["one", "two"]) await t.app.notifier.notify({ kind: "alert", text });
    await chat!.idle();
    expect(chat!.health().ok).toBe(true);
    await t.app.notifier.notify({ kind: "alert", text: "three" });
    await chat!.idle();
    expect(chat!.health().problems).toEqual([expect.stringContaining(`Telegram: cannot post in chat ${OVERSIGHT}`)]);
    expect(seen.filter((n) => n.event?.type === "chat-problem").map((n) => n.text)).toEqual([expect.stringContaining("400 Bad Request: not enough rights to send text messages to the chat")]);
  });
});

describe("Telegram: orders from chat", () => {
  it("places a limit order, lists it, cancels one by id, moves a stop, and announces a limit filled later", async () => {
    const market = new SteeredMarket(["BTC/USDT", "ETH/USDT"]);
    market.set("BTC/USDT", { open: 50_000 });
    const { t, tg } = await start((c) => {
      c.market.symbols = ["BTC/USDT", "ETH/USDT"];
      c.risk.maxVar95Pct = undefined;
    }, {}, { market });
    const before = await withoutAudit();
    for (const [line, error] of [
      ["/trade buy BTC 50 @ 0", /limit price must be above 0/],
      ["/trade buy BTC 50 @ -1", /limit price "-1" is not a number/],
      ["/trade buy DOGEX 50 @ 1", /Unknown symbol "DOGEX"/],
      ["/cancel_order abcdef", /No open order with id abcdef/],
      ["/stop BTC 60000", /No open BTC\/USDT position|There is no open BTC\/USDT position/],
    ] as const) {
      const [reply] = await ask(bob, team, line);
      expect(plain(reply), line).toMatch(error);
    }
    expect(await withoutAudit()).toEqual(before);

    const [placed] = await ask(bob, team, "/trade buy BTC 50 @ 49000");
    const id = /order ([0-9a-f]{6})/.exec(plain(placed))![1]!;
    const [second] = await ask(bob, team, "/trade buy BTC 30 @ 48000");
    const other = /order ([0-9a-f]{6})/.exec(plain(second))![1]!;
    const [listed] = await ask(vera, team, "/orders");
    expect(plain(listed)).toContain(`${id}  BUY`);
    expect(plain(listed)).toContain(`${other}  BUY`);
    expect(plain((await ask(vera, team, `/cancel_order ${other}`))[0])).toMatch(/needs the trader role/);
    expect(plain((await ask(bob, team, `/cancel_order ${other}`))[0])).toMatch(/^Cancelled the limit BUY/);

    // The price falls through the first order's limit: the monitor fills and books it, and the team is told.
    market.set("BTC/USDT", { open: 48_800 });
    await runPositionMonitor(t.app);
    await chat!.idle();
    const filled = tg.sent(OVERSIGHT).find((m) => plain(m).includes(`(order ${id},`));
    expect(plain(filled)).toMatch(/^Trade\nLimit BUY BTC @ 49,000(\.00)? \(order [0-9a-f]{6}, \/trade buy BTC 50 @ 49000 by @bob\) FILLED \[PAPER\]/);
    const [wrongSide] = await ask(bob, team, "/stop BTC 49000");
    expect(plain(wrongSide)).toMatch(/stop loss at 49,000 is at or above the price now \(48,800\)/);
    const [moved] = await ask(bob, team, "/stop BTC 47000");
    expect(plain(moved)).toMatch(/^BTC\/USDT stop loss moved from 47,530(\.00)? to 47,000(\.00)? by @bob/);
    expect((await t.app.services.portfolio.position("BTC/USDT"))!.stopLoss).toBe(47_000);
  });
});
