// A frontend that dies after answering a Telegram update but before confirming it (its next
// getUpdates offset): the Bot API stand-in hands the update to the next poller, as Telegram does,
// and the standby frontend that takes over must not answer it (and decide, and pay) a second time.
// Two agents on one Redis, each with its own grammy bot on the same token: two frontends.
import { Redis } from "ioredis";
import { afterEach, describe, expect, it } from "vitest";
import { RateLimiter } from "../src/chat/outbox.js";
import { TelegramChat } from "../src/chat/telegram/telegramChat.js";
import { buyReply, freshRedisUrl, scriptedModels, startTestApp, testConfig, waitFor, type TestApp } from "./support/app.js";
import { TelegramStandIn, type TgChat, type TgUser } from "./support/telegramStandIn.js";

const bob: TgUser = { id: 102, is_bot: false, first_name: "Bob", username: "bob" };
const GROUP = -1001234567890;
const team: TgChat = { id: GROUP, type: "supergroup", title: "Trading team", is_forum: true };
const PREFIX = "desk1:";
const OPEN = () => new RateLimiter(() => ({ burst: 1e9, perSecond: 1e9 }), { burst: 1e9, perSecond: 1e9 });

const apps: TestApp[] = [];
const chats: TelegramChat[] = [];
let tg: TelegramStandIn | undefined;

afterEach(async () => {
  for (const c of chats.splice(0)) await c.stop();
  for (const a of apps.splice(0)) await a.app.stop();
  await tg?.stop();
  tg = undefined;
});

/** One frontend: an agent on the shared Redis with its Telegram adapter; counts its paid model calls. */
async function frontend(url: string, role: "all" | "frontend" = "all"): Promise<{ t: TestApp; chat: TelegramChat; modelCalls: () => number }> {
  const { t, modelCalls } = await agent(url, role);
  const chat = new TelegramChat(t.app, { token: tg!.token, apiRoot: tg!.apiRoot, limiter: OPEN() });
  chats.push(chat);
  return { t, chat, modelCalls };
}

async function agent(url: string, role: "all" | "frontend"): Promise<{ t: TestApp; modelCalls: () => number }> {
  let calls = 0;
  const t = await startTestApp(
    testConfig((c) => {
      c.cluster.role = role;
      c.redis.keyPrefix = PREFIX;
      c.market.symbols = ["BTC/USDT"];
      c.chat.telegram.allowedUsers = [{ id: "102", role: "trader" }];
    }),
    {
      url,
      models: scriptedModels(() => {
        calls++;
        return buyReply(5);
      }, 0.05),
    },
  );
  apps.push(t);
  return { t, modelCalls: () => calls };
}

/**
 * From the update `updateId` on, this bot's polls never reach Telegram: the process died right
 * after taking that batch, so the poll that would have confirmed it (offset = update_id + 1) was
 * never sent. Its handlers still run, so it answers first, as a frontend killed mid-way would have.
 */
function dieBeforeConfirming(chat: TelegramChat, updateId: () => number | undefined): void {
  let dead = false;
  chat.bot.api.config.use(async (prev, method, payload, signal) => {
    if (method !== "getUpdates") return prev(method, payload, signal);
    if (dead) {
      // The long poll hangs until stop() aborts it; stop's own confirming call fails at once.
      return new Promise<never>((_, reject) => {
        if (!signal) return reject(new Error("this frontend is dead"));
        signal.addEventListener("abort", () => reject(new Error("aborted")), { once: true });
      });
    }
    const res = await prev(method, payload, signal);
    const id = updateId();
    if (res.ok && id !== undefined && (res.result as { update_id: number }[]).some((u) => u.update_id === id)) dead = true;
    return res;
  });
}

/** Sends /decide BTC to the dying frontend A; resolves once A answered it, with the ids. */
async function answeredByA(a: Awaited<ReturnType<typeof frontend>>): Promise<{ updateId: number; messageId: number }> {
  let sent: { updateId: number; messageId: number } | undefined;
  dieBeforeConfirming(a.chat, () => sent?.updateId);
  await a.chat.start();
  sent = tg!.userSends(bob, team, "/decide BTC");
  await waitFor("A's answer", async () => tg!.sent(GROUP).some((m) => m.reply_to === sent!.messageId && /BTC\/USDT: BUY/.test(m.text ?? "")));
  await a.chat.idle();
  return sent;
}

/** Starts frontend B and waits until it took the redelivered update and confirmed it. */
async function redeliveredToB(b: Awaited<ReturnType<typeof frontend>>, updateId: number): Promise<void> {
  const pollsBefore = tg!.calls.length;
  await b.chat.start();
  // B's poll with a higher offset is the confirmation: it got the update, and its handler has started.
  await waitFor("B to confirm the update", async () => tg!.calls.slice(pollsBefore).some((c) => c.method === "getUpdates" && Number(c.params.offset) === updateId + 1));
  expect(tg!.deliveredAt.has(updateId)).toBe(true);
  await b.chat.idle();
}

const answersTo = (messageId: number) => tg!.sent(GROUP).filter((m) => m.reply_to === messageId);
const chatDecisions = async (t: TestApp) => (await t.app.services.ledger.recent(50)).filter((r) => r.trigger === "chat");

describe("Telegram: an update redelivered to another frontend", () => {
  it("is answered once: the standby finds it claimed and skips it, and one decision is made and paid", async () => {
    tg = await new TelegramStandIn().start();
    const url = await freshRedisUrl();
    const a = await frontend(url);
    const b = await frontend(url);

    const { updateId, messageId } = await answeredByA(a);
    // Telegram still holds it: A never confirmed.
    const getUpdatesOffsets = tg.callsOf("getUpdates").map((c) => Number(c.params.offset ?? 0));
    expect(Math.max(...getUpdatesOffsets)).toBeLessThanOrEqual(updateId);

    await redeliveredToB(b, updateId);

    expect(answersTo(messageId)).toHaveLength(1);
    const decisions = await chatDecisions(b.t);
    expect(decisions).toHaveLength(1);
    expect(decisions[0]!.id).toBe(`chat:BTC/USDT:tg:${tg.bot.id}:${GROUP}:${messageId}`);
    expect(a.modelCalls() + b.modelCalls()).toBe(1);
    expect(b.modelCalls()).toBe(0);
    // The claim is the chat module's key, under the agent's prefix, and lasts past Telegram's 24 h.
    const raw = new Redis(url);
    try {
      const ttl = await raw.ttl(`${PREFIX}chat:telegram:update:${tg.bot.id}:${updateId}`);
      expect(ttl).toBeGreaterThan(24 * 3600);
    } finally {
      await raw.quit();
    }
  });

  it.each([
    ["in the frontend", "all"],
    ["on a worker", "frontend"],
  ] as const)("makes no second decision %s even when the claim is gone: the decision id comes from the message", async (_where, role) => {
    tg = await new TelegramStandIn().start();
    const url = await freshRedisUrl();
    const a = await frontend(url, role);
    const b = await frontend(url, role);
    // Frontends only: /decide runs on this worker, one BullMQ job per delivery.
    const worker = role === "frontend" ? await agent(url, "all") : undefined;
    if (worker) {
      await worker.t.app.startJobs();
      // The worker's schedule decides on BTC at once, with the same model: that call is not ours.
      await waitFor("the first scheduled decision", async () => (await worker.t.app.services.ledger.recent(10)).some((r) => r.trigger === "schedule"));
    }
    const modelCalls = () => a.modelCalls() + b.modelCalls() + (worker?.modelCalls() ?? 0);

    const { updateId, messageId } = await answeredByA(a);
    const callsBefore = modelCalls();
    // As if the claim were never written (the frontend could not reach Redis and handled it anyway).
    const raw = new Redis(url);
    try {
      expect(await raw.del(`${PREFIX}chat:telegram:update:${tg.bot.id}:${updateId}`)).toBe(1);
    } finally {
      await raw.quit();
    }

    await redeliveredToB(b, updateId);

    // Answered twice now, but both answers are the one decision, asked of the model and paid once.
    const answers = answersTo(messageId);
    expect(answers).toHaveLength(2);
    for (const m of answers) expect(m.text).toMatch(/BTC\/USDT: BUY/);
    const decisions = await chatDecisions(b.t);
    expect(decisions.map((d) => d.id)).toEqual([`chat:BTC/USDT:tg:${tg.bot.id}:${GROUP}:${messageId}`]);
    expect(modelCalls()).toBe(callsBefore);
    const charges = await b.t.app.services.ledger.charges(0, Number.MAX_SAFE_INTEGER);
    // A charge is booked per decision and model ("<decision id>:<model>").
    expect(charges.filter((c) => c.decisionId.startsWith(`${decisions[0]!.id}:`))).toHaveLength(1);
  });
});
