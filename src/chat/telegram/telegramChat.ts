import { createHash } from "node:crypto";
import { createServer, type Server } from "node:http";
import { Bot, GrammyError, InputFile, webhookCallback } from "grammy";
import type { CallbackQuery, InlineKeyboardMarkup, Message } from "grammy/types";
import type { ChatUser, CommandCall, CommandReply, PlatformHealth, PressOutcome } from "../types.js";
import type { ChatHost } from "../host.js";
import type { MessageRef } from "../confirmations.js";
import { NOTICE_LABEL, type Notice } from "../notifier.js";
import type { ChatPlatform } from "../platform.js";
import { escapeHtml, splitMessage, TELEGRAM_CAPTION_MAX, TELEGRAM_MAX, truncate } from "../render.js";
import { telegramLimiter, type RateLimiter } from "../outbox.js";
import { wakeableSleep } from "../../sleep.js";
import type { ChatServices } from "../services.js";
import { floodControl } from "./flood.js";

export interface TelegramOptions {
  token: string;
  /** Bot API server; Telegram's own when unset. */
  apiRoot?: string;
  /** The oversight chat (and forum topic) that receives notices. */
  chatId?: string;
  threadId?: number;
  /** Webhook mode instead of long polling. */
  webhook?: { url: string; host: string; port: number };
  /** Paces outgoing posts; Telegram's limits when unset. */
  limiter?: RateLimiter;
  /** Seconds a getUpdates call waits for news (Telegram allows up to 50). */
  pollTimeoutS?: number;
  /** Polling down this long (409 Conflict, network) sends an alert to the other platforms; 60 s when unset. */
  downAlertAfterMs?: number;
  /** Waits between polling restarts after a 409 or a rejected token: doubling from `firstMs` up to `maxMs`. */
  retry?: { firstMs: number; maxMs: number };
  /** A press not decided within this long is answered "Working on it…" meanwhile; 2 s when unset. */
  pressAnswerWithinMs?: number;
  /** A chat marked failing is tried again at most this often; a minute when unset. */
  failingChatRetryMs?: number;
}

interface Outage {
  since: number;
  reason: string;
  alerted: boolean;
  timer?: NodeJS.Timeout;
}

/** A chat that notices do not reach: blocked, left, or failing time after time. */
interface FailingChat {
  since: number;
  reason: string;
  /** Failures in a row; past FAILURES_TO_MARK (or at once when it cannot get better by itself) it is marked. */
  failures: number;
  /** Marked failing: told to the other platforms, shown by health(), and posted to at most once a minute. */
  marked: boolean;
  triedAt: number;
  /** Notices it did not get since it started failing. */
  lost: number;
}

// A notice that fails this many times in a row to one chat (after auto-retry's own retries) marks the chat failing.
const FAILURES_TO_MARK = 3;
// A chat marked failing is tried again at most this often, so an unblocked bot is noticed without posting into a wall.
const RETRY_FAILING_CHAT_MS = 60_000;

/** Why Telegram refuses posts to a chat, in words that say what to do; `lasting` when it will not get better by itself. */
function whyRefused(err: unknown, redact: (s: string) => string): { reason: string; lasting: boolean } {
  if (!(err instanceof GrammyError)) return { reason: redact(String(err)), lasting: false };
  const said = `${err.error_code} ${err.description}`;
  if (err.error_code === 403 && /blocked by the user/i.test(err.description)) return { reason: `the user blocked the bot (${said}): unblock it in Telegram, or set TELEGRAM_CHAT_ID to another chat`, lasting: true };
  if (err.error_code === 403 && /deactivated/i.test(err.description)) return { reason: `that account is deleted (${said}): set TELEGRAM_CHAT_ID to another chat`, lasting: true };
  if (err.error_code === 403) return { reason: `the bot is not in that chat, or may not post there (${said}): add it again, or set TELEGRAM_CHAT_ID to another chat`, lasting: true };
  if (err.error_code === 400 && /chat not found/i.test(err.description)) return { reason: `no such chat, or the bot was never in it (${said}): check TELEGRAM_CHAT_ID`, lasting: true };
  return { reason: said, lasting: false };
}



/** What goes out: a reply or a notice, whichever platform-neutral shape it came in. */
interface Outgoing {
  text: string;
  buttons?: CommandReply["buttons"];
  image?: CommandReply["image"];
  files?: CommandReply["files"];
  confirmationId?: string;
  /** Bold, before the text (a notice's kind). */
  label?: string;
}

interface Target {
  chatId: number | string;
  threadId?: number;
  replyTo?: number;
  silent?: boolean;
}

// Telegram refuses a callback answer after some seconds (it does not say how many: 400 "query is
// too old and response timeout expired or query ID is invalid"); a press still undecided by then is
// answered with a holding toast.
const PRESS_ANSWER_WITHIN_MS = 2000;

// Telegram sends messages from anonymous group admins as this user: nobody can be identified by it.
const GROUP_ANONYMOUS_BOT = 1087968824;

const nameOf = (u: { username?: string; first_name: string; last_name?: string }) => (u.username ? `@${u.username}` : [u.first_name, u.last_name].filter(Boolean).join(" "));

/** The label, then the text, escaped for Telegram's HTML mode. */
const html = (chunk: string, label?: string) => (label ? `<b>${escapeHtml(label)}</b>\n` : "") + escapeHtml(chunk);

function keyboard(buttons: CommandReply["buttons"]): InlineKeyboardMarkup | undefined {
  if (!buttons?.length) return undefined;
  return { inline_keyboard: buttons.map((row) => row.map((b) => (b.webAppUrl ? { text: b.label, web_app: { url: b.webAppUrl } } : { text: b.label, callback_data: b.action }))) };
}

/**
 * Telegram, through grammy: long polling by default, a webhook when configured. Commands come in
 * private chats, groups and forum topics, and each reply goes back to the chat and topic it came
 * from. Every command is the registry's; this class only turns Telegram updates into command
 * lines and replies into messages (split at 4096 characters, HTML-escaped, paced, 429-safe).
 */
export class TelegramChat implements ChatPlatform {
  readonly name = "telegram";
  readonly bot: Bot;
  private readonly inFlight = new Set<Promise<unknown>>();
  private server: Server | undefined;
  private polling: Promise<void> | undefined;
  private readonly chat: ChatServices;
  private stopping = false;
  private wakeRetry: (() => void) | undefined;
  /** The next wait before polling again; back to the shortest once a poll is taken. */
  private retryWaitMs: number | undefined;
  /** Polling is failing since then (epoch ms), and why; undefined while it works. */
  private down: Outage | undefined;
  private startProblem: string | undefined;
  /** Chats that moved to a new id (a group upgraded to a supergroup), old id to new; from Redis at start, then as Telegram tells. */
  private readonly moved = new Map<string, string>();
  private readonly failing = new Map<string, FailingChat>();
  /** Notices no chat here took (the alert chat is failing); /metrics can read it. */
  undelivered = 0;

  constructor(
    private readonly app: ChatHost,
    private readonly opts: TelegramOptions,
  ) {
    this.bot = new Bot(opts.token, { client: { ...(opts.apiRoot ? { apiRoot: opts.apiRoot } : {}) } });
    this.bot.api.config.use(
      ...floodControl({ limiter: opts.limiter ?? telegramLimiter(), onWait: (method, s) => app.log.warn(`Telegram flood control: ${method} retries in ${s} s`) }),
    );
    // Every getUpdates tells whether polling works: a 409 (another poller), a network error and a
    // rejected token mark it down; the first answer after that marks it up again.
    this.bot.api.config.use(async (prev, method, payload, signal) => {
      if (method !== "getUpdates") return prev(method, payload, signal);
      // A refused poll is answered at once; one still waiting after a second was taken.
      const taken = setTimeout(() => this.pollingUp(), 1000);
      try {
        const res = await prev(method, payload, signal).finally(() => clearTimeout(taken));
        if (res.ok) this.pollingUp();
        else this.pollingDown(res.error_code === 409 ? "another process is polling with this bot token (409 Conflict)" : `getUpdates answered ${res.error_code}: ${res.description}`);
        return res;
      } catch (err) {
        if (!signal?.aborted) this.pollingDown(`cannot reach the Bot API (${app.redact(String(err))})`);
        throw err;
      }
    });
    this.chat = app.chat;
    this.bot.on("message", (ctx) => {
      this.track(this.once(ctx.update.update_id, () => this.onMessage(ctx.message)));
    });
    this.bot.on("callback_query:data", (ctx) => {
      this.track(this.once(ctx.update.update_id, () => this.onButton(ctx.callbackQuery)));
    });
    this.bot.catch((err) => app.log.error("telegram update failed", app.redact(String(err.error))));
    // Outermost, so a post sent again to a chat's new id is paced and retried like any other.
    this.bot.api.config.use(async (prev, method, payload, signal) => {
      const chatId = (payload as { chat_id?: unknown } | undefined)?.chat_id;
      if (chatId === undefined) return prev(method, payload, signal);
      const to = this.moved.get(String(chatId));
      const res = await prev(method, to ? { ...payload, chat_id: Number(to) } : payload, signal);
      // A group upgraded to a supergroup answers 400 with its new id: follow it, once.
      const next = res.ok ? undefined : res.parameters?.migrate_to_chat_id;
      if (next === undefined) return res;
      this.chatMoved(String(to ?? chatId), String(next));
      return prev(method, { ...payload, chat_id: next }, signal);
    });
  }

  /** Posts to `from` go to `to` from now on, in every frontend and after a restart; the team is told once. */
  private chatMoved(from: string, to: string): void {
    if (this.moved.get(from) === to) return;
    this.moved.set(from, to);
    for (const [old, now] of this.moved) if (now === from) this.moved.set(old, to);
    const isAlertChat = this.opts.chatId !== undefined && (this.opts.chatId === from || this.moved.get(this.opts.chatId) === to);
    this.app.log.warn(`Telegram: chat ${from} became a supergroup with the new id ${to}; posting there from now on`);
    void this.chat.moves.record("telegram", from, to).catch((err: unknown) => this.app.log.warn(`Telegram: could not keep the new id of chat ${from} in Redis; it is followed until the next restart`, this.app.redact(String(err))));
    void this.app.notifier.notify({ type: "chat-moved", platform: "telegram", from, to, ...(isAlertChat ? { hint: `It is the alert chat: set TELEGRAM_CHAT_ID=${to} so the configuration says so too.` } : {}) });
  }

  /** Handlers run beside the polling loop, so a slow /decide never holds up the next update. */
  private track(p: Promise<unknown>): void {
    const done = p.catch((err: unknown) => this.app.log.error("telegram handler failed", this.app.redact(String(err))));
    this.inFlight.add(done);
    void done.finally(() => this.inFlight.delete(done));
  }

  /**
   * Runs `handle` unless this update was taken already. Telegram hands an update out again until
   * some poller confirms it, so a standby that takes over from a frontend which died between
   * answering and confirming gets it a second time; the claim in Redis makes it answered once.
   * The claim is not awaited by the polling loop (it runs in the handler), so a slow Redis never
   * holds up getUpdates.
   */
  private async once(updateId: number, handle: () => Promise<void>): Promise<void> {
    let first = true;
    try {
      first = await this.chat.deliveries.claim(`telegram:update:${this.bot.botInfo.id}:${updateId}`);
    } catch (err) {
      // Dropping a command because its claim could not be written would lose it for sure; running
      // it risks a second answer only, and its request id (from the message) keeps a decision or
      // an order it starts from being made twice.
      this.app.log.warn(`Telegram: could not claim update ${updateId}; handling it anyway`, this.app.redact(String(err)));
    }
    if (!first) {
      this.app.log.debug(`Telegram: update ${updateId} was already taken by a frontend; skipped`);
      return;
    }
    await handle();
  }

  async start(): Promise<void> {
    try {
      for (const [from, to] of await this.chat.moves.all("telegram")) this.moved.set(from, to);
    } catch (err) {
      // Telegram says the new id again on the first post to the old one.
      this.app.log.warn("Telegram: could not read the chats that moved to a new id from Redis", this.app.redact(String(err)));
    }
    await this.bot.init();
    this.chat.addEditor("telegram", (ref, text) => this.edit(ref, text));
    // The menu is a convenience: typed commands work without it, so failing to publish it (a Bot
    // API server that lacks the method, say) must not keep the bot from starting.
    await this.bot.api.setMyCommands(this.app.commands.list().map((c) => ({ command: c.name, description: c.summary.slice(0, 256) }))).catch((err: unknown) => {
      this.app.log.warn("Telegram: could not publish the command menu; commands still work when typed", this.app.redact(String(err)));
    });
    const allowed_updates = ["message", "callback_query"] as const;
    if (this.opts.webhook) {
      const { url, host, port } = this.opts.webhook;
      // Derived from the token, so it needs no setting of its own and never leaves this process.
      const secret = createHash("sha256").update(`webhook:${this.opts.token}`).digest("hex").slice(0, 48);
      this.server = createServer(webhookCallback(this.bot, "http", { secretToken: secret }));
      await new Promise<void>((resolve, reject) => {
        this.server!.once("error", reject);
        this.server!.listen(port, host, () => resolve());
      });
      await this.bot.api.setWebhook(url, { secret_token: secret, allowed_updates: [...allowed_updates] });
      this.app.log.info(`Telegram: webhook at ${url}`);
    } else {
      let started!: () => void;
      const ready = new Promise<void>((r) => (started = r));
      this.polling = this.keepPolling([...allowed_updates], () => started());
      await Promise.race([ready, this.polling]);
    }
  }

  /**
   * grammy's polling loop ends for good on a 409 (another poller on the token) or a 401; it is
   * started again here after a wait that doubles up to a cap, until stop(). Network errors never
   * end it: grammy retries those itself every 3 s (the transformer above marks them down).
   */
  private async keepPolling(allowed_updates: ("message" | "callback_query")[], onStart: () => void): Promise<void> {
    const { firstMs, maxMs } = this.opts.retry ?? { firstMs: 1000, maxMs: 30_000 };
    while (!this.stopping) {
      try {
        await this.bot.start({ allowed_updates, timeout: this.opts.pollTimeoutS ?? 30, onStart });
        if (this.stopping) return;
        // Ended without stop() (it does not, today): poll again.
      } catch (err) {
        if (this.stopping) return;
        const conflict = err instanceof GrammyError && err.error_code === 409;
        const rejected = err instanceof GrammyError && err.error_code === 401;
        if (!conflict) this.pollingDown(rejected ? "Telegram rejected the bot token (401): check TELEGRAM_BOT_TOKEN" : this.app.redact(String(err)));
        const wait = this.retryWaitMs ?? firstMs;
        const line = conflict
          ? `Telegram: another process polls with this bot token (409 Conflict); trying again in ${(wait / 1000).toFixed(1)} s. Run one frontend per token.`
          : `Telegram polling failed: ${this.app.redact(String(err))}; trying again in ${(wait / 1000).toFixed(1)} s`;
        if (conflict) this.app.log.warn(line);
        else this.app.log.error(line);
        // Jitter, so two processes in conflict do not retry in lock step.
        await this.sleep(wait * (0.8 + Math.random() * 0.4));
        this.retryWaitMs = Math.min(maxMs, wait * 2);
      }
    }
  }

  private sleep(ms: number): Promise<void> {
    return wakeableSleep(ms, (wake) => (this.wakeRetry = wake));
  }

  private pollingDown(reason: string): void {
    if (this.stopping) return;
    if (this.down) {
      this.down.reason = reason;
      return;
    }
    const down: Outage = { since: Date.now(), reason, alerted: false };
    this.down = down;
    down.timer = setTimeout(() => {
      if (this.down !== down || this.stopping) return;
      down.alerted = true;
      this.app.log.error(`Telegram polling down for ${Math.round((Date.now() - down.since) / 1000)} s: ${down.reason}`);
      void this.app.notifier.notify({ type: "chat-down", platform: "telegram", since: down.since, reason: down.reason });
    }, this.opts.downAlertAfterMs ?? 60_000);
    down.timer.unref();
  }

  private pollingUp(): void {
    this.retryWaitMs = undefined;
    const down = this.down;
    if (!down) return;
    this.down = undefined;
    clearTimeout(down.timer);
    if (!down.alerted) return;
    const downMs = Date.now() - down.since;
    this.app.log.info(`Telegram polling is back after ${Math.round(downMs / 1000)} s`);
    void this.app.notifier.notify({ type: "chat-up", platform: "telegram", since: down.since, downMs });
  }

  readyLine(): string {
    return `@${this.bot.botInfo.username} ready (${this.opts.webhook ? "webhook" : "long polling"})`;
  }

  /** Set by the registry when start() failed. */
  failedToStart(reason: string): void {
    this.startProblem = reason;
  }

  health(): PlatformHealth {
    const problems: string[] = [];
    if (this.startProblem) problems.push(`Telegram did not start: ${this.startProblem}`);
    if (this.down) problems.push(`Telegram polling down for ${Math.round((Date.now() - this.down.since) / 1000)} s: ${this.down.reason}`);
    for (const [chatId, f] of this.failing) {
      if (f.marked) problems.push(`Telegram: cannot post in chat ${chatId} since ${new Date(f.since).toISOString().slice(11, 19)} UTC: ${f.reason}; ${f.lost} notice(s) not delivered there`);
    }
    return { ok: problems.length === 0, problems };
  }

  /** The address the webhook server listens on (port 0 picks a free one). */
  webhookAddress(): { host: string; port: number } | undefined {
    const a = this.server?.address();
    return a && typeof a === "object" ? { host: a.address, port: a.port } : undefined;
  }

  /** Resolves when no update is being handled. */
  async idle(): Promise<void> {
    while (this.inFlight.size > 0) await Promise.allSettled([...this.inFlight]);
  }

  async stop(): Promise<void> {
    this.stopping = true;
    clearTimeout(this.down?.timer);
    this.wakeRetry?.();
    if (this.bot.isRunning()) await this.bot.stop().catch(() => {});
    await this.polling;
    if (this.server) {
      // Telegram would go on posting updates to an address nobody answers, and a later long-polling
      // start (or another frontend) would be refused with 409 until the webhook is gone.
      await this.bot.api.deleteWebhook().catch((err: unknown) => this.app.log.warn("Telegram: could not delete the webhook on stop", this.app.redact(String(err))));
      await new Promise<void>((r) => this.server!.close(() => r()));
      this.server = undefined;
    }
    await this.idle();
  }

  private async userOf(from: { id: number; is_bot: boolean; username?: string; first_name: string; last_name?: string }): Promise<ChatUser | undefined> {
    const role = await this.chat.access.roleOf("telegram", String(from.id));
    return role ? { id: String(from.id), name: nameOf(from), platform: "telegram", role } : undefined;
  }

  private where(chat: Message["chat"], threadId?: number): string {
    const kind = chat.type === "private" ? "private chat" : `${chat.type} "${"title" in chat ? chat.title : ""}"`;
    return `telegram ${kind} (${chat.id})${threadId ? ` topic ${threadId}` : ""}`;
  }

  private async onMessage(msg: Message): Promise<void> {
    // Telegram's "Start" button sends /start: answer it with the command list.
    const text = msg.text?.replace(/^\/start(@\S+)?(\s|$)/, "/help$1$2");
    if (!text || !msg.from || msg.from.is_bot) return;
    const threadId = msg.is_topic_message ? msg.message_thread_id : undefined;
    const target: Target = { chatId: msg.chat.id, ...(threadId ? { threadId } : {}), replyTo: msg.message_id };
    const isPrivate = msg.chat.type === "private";
    if (!text.startsWith("/")) {
      if (isPrivate) await this.send(target, { text: "Commands start with /. Type /help for the list." });
      return;
    }
    // In a group, "/status@other_bot" is for another bot.
    const addressed = /^\/[^\s@]+@(\S+)/.exec(text)?.[1];
    if (addressed && addressed.toLowerCase() !== this.bot.botInfo.username.toLowerCase()) return;

    const where = this.where(msg.chat, threadId);
    if (msg.from.id === GROUP_ANONYMOUS_BOT || msg.sender_chat) {
      await this.send(target, { text: "Sorry, I cannot tell who an anonymous admin (or a channel) is, so I take no commands from them. Nothing was changed." });
      return;
    }
    const user = await this.userOf(msg.from);
    if (!user) {
      const name = this.app.commands.parseLine(text)?.name;
      const command = name ? this.app.commands.find(name) : undefined;
      if (command?.mutates) {
        await this.chat.audit.record({ platform: "telegram", userId: String(msg.from.id), user: nameOf(msg.from), role: "none", where, command: text, result: "refused", detail: "not on the allow-list" });
      }
      await this.send(target, {
        text: `Sorry, you are not on this bot's allow-list, so I can't run that. Nothing was changed.\nAn admin can add you with: /grant telegram ${msg.from.id} viewer`,
      });
      return;
    }

    let progressId: number | undefined;
    const ctx: CommandCall = {
      user,
      where,
      // The message, not the delivery: the same on a redelivery, so what it starts dedupes.
      requestId: `tg:${this.bot.botInfo.id}:${msg.chat.id}:${msg.message_id}`,
      // Progress is a courtesy: failing to show it must not fail the command.
      progress: async (t) => {
        try {
          const sent = await this.send(target, { text: t });
          progressId = sent[0]?.message_id;
        } catch (err) {
          this.app.log.warn("telegram progress", this.app.redact(String(err)));
        }
      },
    };
    const prepared = await this.app.commands.prepare(text, ctx);
    if (!prepared.ok) {
      await this.send(target, prepared.reply);
      return;
    }
    const reply = await this.app.commands.execute(prepared, ctx);
    await this.send(target, reply, progressId);
  }

  /**
   * A press is answered (answerCallbackQuery) as soon as it is decided: refused, too late, or won,
   * and the work it starts (a refill waiting for its receipt) runs after that; the message is
   * edited with the outcome when the work is done. Telegram shows the presser a spinner until the
   * answer and refuses one that comes late (400 "query is too old"), which would lose the toast.
   */
  private async onButton(q: CallbackQuery): Promise<void> {
    const msg = q.message;
    const threadId = msg && "message_thread_id" in msg && msg.is_topic_message ? msg.message_thread_id : undefined;
    let answering: Promise<void> | undefined;
    const answer = (text: string, alert: boolean): boolean => {
      if (answering) return false;
      answering = this.bot.api.answerCallbackQuery(q.id, { text: truncate(text, 200), show_alert: alert }).then(
        () => {},
        (err: unknown) => this.app.log.warn("Telegram: answerCallbackQuery failed", this.app.redact(String(err))),
      );
      return true;
    };
    // Deciding takes a few Redis round trips; should Redis be slow, the presser still gets an answer in time.
    const slow = setTimeout(() => answer("Working on it…", false), this.opts.pressAnswerWithinMs ?? PRESS_ANSWER_WITHIN_MS);
    let out: PressOutcome;
    try {
      const user = await this.userOf(q.from);
      const where = msg ? this.where(msg.chat, threadId) : "telegram";
      out = await this.app.commands.press(q.data ?? "", user, where, (toast) => {
        clearTimeout(slow);
        answer(toast, false);
      });
    } finally {
      clearTimeout(slow);
    }
    // Settled: the message now says how it ended. Refused or late: only the presser is told why.
    if (!answer(out.toast, out.alert) && out.alert && out.final === undefined && msg) {
      // The answer went out already ("Working on it…"), so the refusal goes to the chat, addressed to the presser.
      await this.send({ chatId: msg.chat.id, ...(threadId ? { threadId } : {}), replyTo: msg.message_id }, { text: `${nameOf(q.from)}: ${out.toast}` });
    }
    await answering;
  }

  /**
   * Posts a reply: split on line boundaries, buttons under the last part, the picture after it.
   * With `editId`, the first part replaces that message (the "working on it" one).
   */
  private async send(target: Target, out: Outgoing, editId?: number): Promise<Message[]> {
    const room = TELEGRAM_MAX - (out.label ? escapeHtml(out.label).length + 8 : 0);
    const chunks = splitMessage(out.text, room, (s) => escapeHtml(s).length);
    const markup = keyboard(out.buttons);
    const sent: Message[] = [];
    for (const [i, chunk] of chunks.entries()) {
      const last = i === chunks.length - 1;
      const body = html(chunk, i === 0 ? out.label : undefined);
      const common = { parse_mode: "HTML" as const, link_preview_options: { is_disabled: true }, ...(last && markup ? { reply_markup: markup } : {}) };
      if (i === 0 && editId !== undefined) {
        const edited = await this.bot.api.editMessageText(target.chatId, editId, body, common).catch((err: unknown) => {
          if (err instanceof GrammyError && /not modified/.test(err.description)) return true;
          throw err;
        });
        if (typeof edited === "object") sent.push(edited);
        continue;
      }
      sent.push(
        await this.bot.api.sendMessage(target.chatId, body, {
          ...common,
          ...(target.threadId ? { message_thread_id: target.threadId } : {}),
          ...(target.silent ? { disable_notification: true } : {}),
          ...(i === 0 && target.replyTo ? { reply_parameters: { message_id: target.replyTo, allow_sending_without_reply: true } } : {}),
        }),
      );
    }
    const withButtons = sent.at(-1);
    if (out.confirmationId && withButtons) {
      await this.chat.confirmations.addRef(out.confirmationId, { platform: "telegram", chatId: withButtons.chat.id, messageId: withButtons.message_id });
    }
    if (out.image) {
      await this.bot.api.sendPhoto(target.chatId, new InputFile(Buffer.from(out.image.png), out.image.name), {
        caption: truncate(out.image.alt, TELEGRAM_CAPTION_MAX),
        ...(target.threadId ? { message_thread_id: target.threadId } : {}),
        ...(target.silent ? { disable_notification: true } : {}),
      });
    }
    for (const file of out.files ?? []) {
      await this.bot.api.sendDocument(target.chatId, new InputFile(Buffer.from(file.data), file.name), {
        caption: truncate(file.caption, TELEGRAM_CAPTION_MAX),
        ...(target.threadId ? { message_thread_id: target.threadId } : {}),
        ...(target.silent ? { disable_notification: true } : {}),
      });
    }
    return sent;
  }

  /** Shows how a confirmation ended, in place of its question; the buttons go. */
  private async edit(ref: MessageRef, text: string): Promise<void> {
    if (ref.platform !== "telegram") return;
    const body = escapeHtml(truncate(text, TELEGRAM_MAX, (s) => escapeHtml(s).length));
    await this.bot.api
      .editMessageText(ref.chatId, ref.messageId, body, { parse_mode: "HTML", link_preview_options: { is_disabled: true }, reply_markup: { inline_keyboard: [] } })
      .catch((err: unknown) => {
        if (!(err instanceof GrammyError && /not modified/.test(err.description))) throw err;
      });
  }

  /** A notice for the oversight chat: on, silent (no sound) or off by kind; trades say when they are simulated. */
  async deliver(notice: Notice): Promise<void> {
    if (!this.opts.chatId) return;
    const how = notice.confirmationId ? "on" : this.app.config.chat.notify[notice.kind];
    if (how === "off") return;
    const chatId = this.moved.get(this.opts.chatId) ?? this.opts.chatId;
    // The notice about this very chat went to the other platforms; it is not one more lost here.
    const aboutUs = notice.event && "platform" in notice.event && notice.event.platform === "telegram";
    const failing = this.failing.get(chatId);
    if (failing?.marked && Date.now() - failing.triedAt < (this.opts.failingChatRetryMs ?? RETRY_FAILING_CHAT_MS)) {
      if (!aboutUs) this.lose(failing);
      return;
    }
    // A typed notice says [PAPER] in its own text; a plain trade notice gets the tag here.
    const paper = !notice.event && this.app.mode.trading === "paper" && notice.kind === "trade" && !notice.text.includes("[PAPER]");
    try {
      await this.send(
        { chatId, ...(this.opts.threadId ? { threadId: this.opts.threadId } : {}), silent: how === "silent" },
        { ...notice, label: `${NOTICE_LABEL[notice.kind]}${paper ? " [PAPER]" : ""}` },
      );
    } catch (err) {
      this.noticeFailed(this.moved.get(chatId) ?? chatId, err, Boolean(aboutUs));
      return;
    }
    this.noticeDelivered(chatId);
  }

  private lose(f: FailingChat): void {
    f.lost++;
    this.undelivered++;
  }

  /**
   * A chat that refuses the bot for good (blocked, removed: 403) is marked failing at once; any
   * other failure after FAILURES_TO_MARK in a row. Marked, it shows in health() (so /status,
   * /metrics and /healthz), the other platforms are told once, and it is tried once a minute.
   */
  private noticeFailed(chatId: string, err: unknown, aboutUs: boolean): void {
    const { reason, lasting } = whyRefused(err, this.app.redact);
    const now = Date.now();
    const f = this.failing.get(chatId) ?? { since: now, reason, failures: 0, marked: false, triedAt: now, lost: 0 };
    this.failing.set(chatId, f);
    Object.assign(f, { reason, triedAt: now, failures: f.failures + 1 });
    if (!aboutUs) this.lose(f);
    if (f.marked || (!lasting && f.failures < FAILURES_TO_MARK)) {
      this.app.log.warn(`Telegram: a notice to chat ${chatId} failed (${f.failures} in a row): ${reason}`);
      return;
    }
    f.marked = true;
    const problem = `cannot post alerts in chat ${chatId}: ${reason}. Alerts and approvals reach the other platforms only.`;
    this.app.log.error(`Telegram: ${problem}`);
    void this.app.notifier.notify({ type: "chat-problem", platform: "telegram", problem });
  }

  private noticeDelivered(chatId: string): void {
    const f = this.failing.get(chatId);
    if (!f) return;
    this.failing.delete(chatId);
    if (f.marked) this.app.log.info(`Telegram: chat ${chatId} takes notices again (${f.lost} were not delivered while it failed)`);
  }
}
