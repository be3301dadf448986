// Approval mode, end to end: a scheduled decision above the limit waits for a trader's button on
// Telegram or Discord (grammy and discord.js against their stand-ins), and never trades twice.
import { afterEach, describe, expect, it } from "vitest";
import { runDecisionJob } from "../jobs/decisionJob.js";
import { DiscordChat } from "../src/chat/discord/discordChat.js";
import { RateLimiter } from "../src/chat/outbox.js";
import { ChatServices } from "../src/chat/services.js";
import { TelegramChat } from "../src/chat/telegram/telegramChat.js";
import { buyReply, scriptedModels, startTestApp, testConfig, waitFor, type TestApp } from "./support/app.js";
import { DiscordStandIn, type DMessage } from "./support/discordStandIn.js";
import { TelegramStandIn, type TgMessage, type TgUser } from "./support/telegramStandIn.js";

const GROUP = -1009999;
const bobTg: TgUser = { id: 102, is_bot: false, first_name: "Bob", username: "bob" }; // trader
const veraTg: TgUser = { id: 103, is_bot: false, first_name: "Vera" }; // viewer
const bobDc = { id: "222", username: "bob_dc" }; // trader

let t: TestApp | undefined;
let tg: TelegramStandIn | undefined;
let dc: DiscordStandIn | undefined;
let telegram: TelegramChat | undefined;
let discord: DiscordChat | undefined;

afterEach(async () => {
  await telegram?.stop();
  await discord?.stop();
  await t?.app.stop();
  await tg?.stop();
  await dc?.stop();
  telegram = discord = undefined;
  t = undefined;
  tg = dc = undefined;
});

const fast = () => new RateLimiter(() => ({ burst: 1000, perSecond: 1000 }), { burst: 1000, perSecond: 1000 });

async function start(sizePct: number): Promise<TestApp> {
  tg = await new TelegramStandIn().start();
  dc = await new DiscordStandIn().start();
  t = await startTestApp(
    testConfig((c) => {
      c.market.symbols = ["BTC/USDT"];
      c.chat.approval = { above: 100, timeoutMs: 300_000 };
      c.chat.telegram.allowedUsers = [{ id: "102", role: "trader" }, { id: "103", role: "viewer" }];
      c.chat.discord.allowedUsers = [{ id: "222", role: "trader" }];
    }),
    { models: scriptedModels(() => buyReply(sizePct), 0.05) },
  );
  telegram = new TelegramChat(t.app, { token: tg.token, apiRoot: tg.apiRoot, chatId: String(GROUP), limiter: fast() });
  discord = new DiscordChat(t.app, { token: dc.token, guildIds: [dc.guildId], channelId: dc.channelId, apiUrl: dc.apiBase });
  t.app.notifier.add(telegram);
  t.app.notifier.add(discord);
  await telegram.start();
  await discord.start();
  return t;
}

const tgRequest = (): TgMessage | undefined => tg!.sent(GROUP).find((m) => m.reply_markup?.inline_keyboard[0]?.[0]?.text === "Approve");
const dcRequest = (): DMessage | undefined => dc!.messagesIn().find((m) => m.components[0]?.components[0]?.label === "Approve");
const orders = async () => (await t!.app.services.exchange.trades(100)).filter((o) => o.clientOrderId.startsWith("sched:"));
const plain = (m: TgMessage | undefined) => (m?.text ?? "").replace(/<[^>]+>/g, "").replace(/&amp;/g, "&").replace(/&lt;/g, "<").replace(/&gt;/g, ">");

async function idle(): Promise<void> {
  await telegram!.idle();
  await discord!.idle();
}

describe("approval mode", () => {
  it("holds a large scheduled decision, posts Approve/Reject everywhere, and trades once when a trader approves", async () => {
    const t = await start(8);
    const held = await runDecisionJob(t.app, "BTC/USDT", "job-1");
    expect(held!.outcome).toBe("decided");
    expect(held!.error).toMatch(/^Awaiting approval \S+ until \d\d:\d\d:\d\d UTC: no order yet\./);
    expect(await orders()).toHaveLength(0);
    await idle();
    // One request, on both platforms, instead of the usual "Scheduled decision" notice.
    expect(plain(tgRequest())).toMatch(/^Decision\nApproval needed \[PAPER\]: this scheduled decision trades about 8[\d,.]+ USDT, above the 100\.00 USDT approval limit\.\nBTC\/USDT: BUY 8\.0% of equity/);
    expect(dcRequest()!.components[0]!.components.map((c) => c.label)).toEqual(["Approve", "Reject"]);
    expect(tg!.sent(GROUP).filter((m) => plain(m).includes("Scheduled decision"))).toHaveLength(0);

    // A retried job asks nobody again, and still places nothing.
    expect((await runDecisionJob(t.app, "BTC/USDT", "job-1"))!.outcome).toBe("decided");
    await idle();
    expect(tg!.sent(GROUP).filter((m) => m.reply_markup)).toHaveLength(1);

    // A viewer cannot approve.
    const id = /^cf:([^:]+):ok$/.exec(tgRequest()!.reply_markup!.inline_keyboard[0]![0]!.callback_data!)![1]!;
    const refused = tg!.userPresses(veraTg, tgRequest()!, `cf:${id}:ok`);
    await waitFor("the refusal", async () => tg!.answers.get(refused));
    expect(tg!.answers.get(refused)!.text).toBe("Only a trader or above can answer this. Nothing was changed.");
    expect(await orders()).toHaveLength(0);

    // A trader approves on Discord: the order goes out, and both copies say so.
    const press = dc!.press(bobDc, dcRequest()!, `cf:${id}:ok`);
    await waitFor("the approval", async () => press.ackType !== undefined);
    await idle();
    expect(await orders()).toHaveLength(1);
    const tgEdited = tg!.sent(GROUP).find((m) => plain(m).includes("Approval needed"))!;
    expect(plain(tgEdited)).toMatch(/✅ Approved by @bob_dc\.\nBTC\/USDT: BUY 8\.0% of equity[\s\S]*Order: BUY [\d.]+ BTC @ [\d,.]+/);
    expect(tgEdited.reply_markup).toBeUndefined();
    expect(dc!.messagesIn().find((m) => m.content.includes("Approval needed"))!.components).toEqual([]);
    expect((await t.app.services.ledger.get("sched:BTC/USDT:job-1"))!.outcome).toBe("order");

    // Pressed again on Telegram, or the job retried once more: still one order.
    const again = tg!.userPresses(bobTg, tgRequest() ?? tgEdited, `cf:${id}:ok`);
    await waitFor("the second answer", async () => tg!.answers.get(again));
    expect(tg!.answers.get(again)!.text).toMatch(/^Too late: this was already approved by @bob_dc/);
    await runDecisionJob(t.app, "BTC/USDT", "job-1");
    expect(await orders()).toHaveLength(1);
  });

  it("drops a rejected decision: no order, then or on a retry", async () => {
    const t = await start(8);
    await runDecisionJob(t.app, "BTC/USDT", "job-2");
    await idle();
    const request = tgRequest()!;
    const id = /^cf:([^:]+):/.exec(request.reply_markup!.inline_keyboard[0]![1]!.callback_data!)![1]!;
    const pressed = tg!.userPresses(bobTg, request, `cf:${id}:no`);
    await waitFor("the rejection", async () => tg!.answers.get(pressed));
    await idle();
    expect(plain(tg!.sent(GROUP).find((m) => m.message_id === request.message_id))).toMatch(/✖ Rejected by @bob\.\nRejected by @bob: no order\./);
    const record = (await t.app.services.ledger.get("sched:BTC/USDT:job-2"))!;
    expect(record.outcome).toBe("no-order");
    expect(record.risk!.message).toBe("Rejected by @bob: no order.");
    await runDecisionJob(t.app, "BTC/USDT", "job-2");
    expect(await orders()).toHaveLength(0);
  });

  it("drops a decision nobody answers in time", async () => {
    const t = await start(8);
    await runDecisionJob(t.app, "BTC/USDT", "job-3");
    await idle();
    t.clock.advance(300_000);
    expect(await ChatServices.of(t.app).sweep()).toBe(1);
    await idle();
    expect(plain(tg!.sent(GROUP).find((m) => plain(m).includes("Approval needed")))).toMatch(/⌛ Expired at .* Not approved within 300 s: dropped, no order\./);
    expect(dc!.messagesIn().find((m) => m.content.includes("Approval needed"))!.content).toMatch(/Expired at/);
    expect((await t.app.services.ledger.get("sched:BTC/USDT:job-3"))!.outcome).toBe("no-order");
    expect(await orders()).toHaveLength(0);
  });

  it("lets a decision under the limit trade without asking", async () => {
    const t = await start(0.5);
    const record = await runDecisionJob(t.app, "BTC/USDT", "job-4");
    expect(record!.outcome).toBe("order");
    await idle();
    expect(tgRequest()).toBeUndefined();
    expect(await orders()).toHaveLength(1);
  });

  it("places one order when an approval races a retried job and a second press", async () => {
    const t = await start(8);
    await runDecisionJob(t.app, "BTC/USDT", "job-5");
    await idle();
    expect(tg!.sent(GROUP).filter((m) => m.reply_markup)).toHaveLength(1);
    const request = tgRequest()!;
    const id = /^cf:([^:]+):ok$/.exec(request.reply_markup!.inline_keyboard[0]![0]!.callback_data!)![1]!;
    const a = tg!.userPresses(bobTg, request, `cf:${id}:ok`);
    const b = dc!.press(bobDc, dcRequest()!, `cf:${id}:ok`);
    await Promise.all([runDecisionJob(t.app, "BTC/USDT", "job-5"), waitFor("both presses", async () => tg!.answers.has(a) && b.ackType !== undefined)]);
    await idle();
    await runDecisionJob(t.app, "BTC/USDT", "job-5");
    expect(await orders()).toHaveLength(1);
    // Exactly one press won; the loser was told it came too late.
    const telegramWon = tg!.answers.get(a)!.text!.startsWith("✅ Approved by");
    const discordWon = b.followUps.length === 0;
    expect(Number(telegramWon) + Number(discordWon)).toBe(1);
    const loser = telegramWon ? b.followUps[0]!.content : tg!.answers.get(a)!.text!;
    expect(loser).toMatch(/^Too late: this was already approved/);
  });
});
