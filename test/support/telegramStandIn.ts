// A Telegram Bot API server on 127.0.0.1 for tests and benchmarks. grammy talks to it exactly as
// to api.telegram.org (POST /bot<token>/<method>, JSON or multipart), and it answers as the real
// one does, errors included: 401 for a wrong token, 400 for a message over 4096 characters (after
// entity parsing), bad HTML or an unchanged edit, 429 with retry_after when told to flood, and
// 409 Conflict when two long polls meet on one token (another bot instance): by default the newer
// poll is refused; with `conflicts: "newest-wins"` the waiting one is ended with the 409 and the
// newer one waits, as the Bot API server itself does (tdlib/telegram-bot-api, Client.cpp:
// do_get_updates calls abort_long_poll on the waiting query; a 409 within 3 s of the last one is
// held back 3 s). Updates are kept until confirmed, as the Bot API does: getUpdates returns those
// with update_id >= offset, and a call with an offset forgets every update below it; until then
// each poller (another bot instance, after a failover) is handed the same updates again.
import { createServer, request as httpRequest, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { parseMultipart } from "./multipart.js";

export interface TgUser {
  id: number;
  is_bot: boolean;
  first_name: string;
  username?: string;
}

export interface TgChat {
  id: number;
  type: "private" | "group" | "supergroup";
  title?: string;
  first_name?: string;
  is_forum?: boolean;
}

export interface TgMessage {
  message_id: number;
  date: number;
  chat: TgChat;
  from?: TgUser;
  text?: string;
  caption?: string;
  photo?: { file_id: string; file_unique_id: string; width: number; height: number; file_size: number }[];
  document?: { file_id: string; file_unique_id: string; file_name?: string; mime_type?: string; file_size: number };
  message_thread_id?: number;
  is_topic_message?: boolean;
  reply_markup?: { inline_keyboard: { text: string; callback_data?: string }[][] };
  edit_date?: number;
  [key: string]: unknown;
}

export interface ApiCall {
  method: string;
  params: Record<string, unknown>;
  /** performance.now() when the request arrived. */
  at: number;
  status: number;
  /** Set for sendPhoto and sendDocument: the uploaded bytes. */
  file?: Uint8Array;
  /** Set for sendDocument: the uploaded file's name, as the multipart part gave it. */
  fileName?: string;
}

interface Waiter {
  offset: number;
  limit: number;
  res: ServerResponse;
  timer: NodeJS.Timeout;
  call: ApiCall;
}

export interface TelegramStandInOptions {
  /** Two long polls on the token: refuse the newer (default), or end the waiting one as Telegram does. */
  conflicts?: "refuse-newcomer" | "newest-wins";
}

const ALLOWED_TAGS = new Set(["b", "strong", "i", "em", "u", "ins", "s", "strike", "del", "code", "pre", "a", "tg-spoiler", "blockquote", "span"]);

/** What Telegram counts: the text after HTML entity parsing, in UTF-16 code units. Throws on bad HTML. */
export function parsedLength(text: string, parseMode: unknown): number {
  if (parseMode !== "HTML") return text.length;
  const stack: string[] = [];
  let visible = "";
  const re = /<\/?([a-zA-Z-]+)[^>]*>|&(amp|lt|gt|quot|#\d+|#x[0-9a-fA-F]+);|[<>&]|[^<>&]+/g;
  for (const m of text.matchAll(re)) {
    const token = m[0];
    if (token.startsWith("<") && m[1]) {
      const tag = m[1].toLowerCase();
      if (!ALLOWED_TAGS.has(tag)) throw new Error(`Unsupported start tag "${tag}"`);
      if (token.startsWith("</")) {
        if (stack.pop() !== tag) throw new Error(`Unmatched end tag "${tag}"`);
      } else stack.push(tag);
    } else if (token === "<" || token === ">" || token === "&") {
      throw new Error(`Unexpected "${token}"`);
    } else if (token.startsWith("&")) {
      visible += "x";
    } else visible += token;
  }
  if (stack.length) throw new Error(`Unclosed tag "${stack.at(-1)}"`);
  return visible.length;
}

/** Reads a request body as Bot API parameters: JSON, multipart (with files) or a query string. */
async function readParams(req: IncomingMessage, url: URL): Promise<{ params: Record<string, unknown>; files: Map<string, Uint8Array>; fileNames: Map<string, string> }> {
  const chunks: Buffer[] = [];
  for await (const c of req) chunks.push(c as Buffer);
  const body = Buffer.concat(chunks);
  const type = req.headers["content-type"] ?? "";
  const params: Record<string, unknown> = Object.fromEntries(url.searchParams);
  const files = new Map<string, Uint8Array>();
  const fileNames = new Map<string, string>();
  if (type.includes("application/json") && body.length) Object.assign(params, JSON.parse(body.toString("utf8")));
  else if (type.includes("multipart/form-data")) {
    for (const part of parseMultipart(body, type)) {
      if (part.filename === undefined) {
        const v = part.data.toString("utf8");
        params[part.name] = /^[[{]/.test(v) ? JSON.parse(v) : v;
      } else {
        files.set(part.name, new Uint8Array(part.data));
        fileNames.set(part.name, part.filename);
      }
    }
  } else if (type.includes("x-www-form-urlencoded")) Object.assign(params, Object.fromEntries(new URLSearchParams(body.toString("utf8"))));
  return { params, files, fileNames };
}

export class TelegramStandIn {
  readonly token: string;
  readonly bot: TgUser = { id: 7000000001, is_bot: true, first_name: "Trading Agent", username: "trading_agent_test_bot" };
  readonly calls: ApiCall[] = [];
  /** Every message the bot sent, by chat, in order (edits change them in place). */
  readonly messages = new Map<number, TgMessage[]>();
  /** Answers to button presses, by callback query id. */
  readonly answers = new Map<string, { text?: string; show_alert?: boolean }>();
  /**
   * Telegram refuses a callback answer that comes too late (400 "query is too old"); it does not
   * say after how long (reports put it at 5 to 15 s). Counted from when the press was handed over.
   */
  callbackAnswerDeadlineMs = 10_000;
  /** The update that carried each callback query, by its id. */
  readonly callbackUpdates = new Map<string, number>();
  /** performance.now() when each update was handed to the bot (getUpdates answer or webhook post). */
  readonly deliveredAt = new Map<number, number>();
  webhook: { url: string; secret?: string } | undefined;
  commands: { command: string; description: string }[] = [];

  private server: Server | undefined;
  private updates: { update_id: number; [k: string]: unknown }[] = [];
  private nextUpdateId = 1;
  private nextMessageId = 1000;
  private nextCallbackId = 1;
  private waiters: Waiter[] = [];
  private readonly floods = new Map<string, { times: number; retryAfter: number }>();
  private readonly refusals = new Map<string, { code: number; description: string; times: number }>();
  private readonly conflictMode: NonNullable<TelegramStandInOptions["conflicts"]>;
  private lastConflictAt = -Infinity;

  constructor(token = "123456789:TEST-token_for_the_stand_in_only", opts: TelegramStandInOptions = {}) {
    this.token = token;
    this.conflictMode = opts.conflicts ?? "refuse-newcomer";
  }

  get apiRoot(): string {
    const a = this.server?.address() as AddressInfo;
    return `http://127.0.0.1:${a.port}`;
  }

  async start(): Promise<this> {
    this.server = createServer((req, res) => void this.handle(req, res));
    await new Promise<void>((r) => this.server!.listen(0, "127.0.0.1", () => r()));
    return this;
  }

  async stop(): Promise<void> {
    for (const w of this.waiters) {
      clearTimeout(w.timer);
      this.reply(w.res, 200, { ok: true, result: [] });
    }
    this.waiters = [];
    this.server?.closeAllConnections();
    await new Promise<void>((r) => (this.server ? this.server.close(() => r()) : r()));
  }

  /** How many getUpdates calls were refused with 409 because another poller was waiting. */
  conflicts = 0;

  /** Methods this server answers as unknown (404), as an emulator that lacks them does. */
  readonly lacking = new Set<string>();

  /** Groups upgraded to supergroups: old id to new. Telegram answers anything sent to the old id with 400 and the new id. */
  readonly migrated = new Map<number, number>();
  /** Users who blocked the bot: their private chat answers every post with 403. */
  readonly blockedBy = new Set<number>();

  /** A group becomes a supergroup (enough members, or visible history): it gets a new id, and the old one is gone. */
  upgradeToSupergroup(groupId: number, supergroupId: number): void {
    this.migrated.set(groupId, supergroupId);
  }

  /** The next `times` calls of `method` are refused with this error, as Telegram words it. */
  refuse(method: string, code: number, description: string, times = 1): void {
    this.refusals.set(method, { code, description, times });
  }

  /** The next `times` calls of `method` get a 429 with this retry_after. */
  flood(method: string, retryAfter: number, times = 1): void {
    this.floods.set(method, { times, retryAfter });
  }

  callsOf(method: string): ApiCall[] {
    return this.calls.filter((c) => c.method === method && c.status === 200);
  }

  sent(chatId: number): TgMessage[] {
    return this.messages.get(chatId) ?? [];
  }

  // ---- what users do -------------------------------------------------------------------------

  /** A user types `text` in `chat` (in forum topic `threadId`, if given). */
  userSends(from: TgUser, chat: TgChat, text: string, threadId?: number): { updateId: number; messageId: number } {
    const command = /^\/\S+/.exec(text)?.[0];
    const message: TgMessage = {
      message_id: this.nextMessageId++,
      date: Math.floor(Date.now() / 1000),
      chat,
      from,
      text,
      ...(threadId ? { message_thread_id: threadId, is_topic_message: true } : {}),
      ...(command ? { entities: [{ type: "bot_command", offset: 0, length: command.length }] } : {}),
    };
    return { updateId: this.push({ message }), messageId: message.message_id };
  }

  /** A user presses the button with `data` under `message`. Returns the callback query id. */
  userPresses(from: TgUser, message: TgMessage, data: string): string {
    const id = String(this.nextCallbackId++);
    this.callbackUpdates.set(id, this.push({ callback_query: { id, from, message, chat_instance: String(message.chat.id), data } }));
    return id;
  }

  private push(content: Record<string, unknown>): number {
    const update = { update_id: this.nextUpdateId++, ...content };
    if (this.webhook) {
      void this.postWebhook(update);
      return update.update_id;
    }
    this.updates.push(update);
    this.wake();
    return update.update_id;
  }

  private async postWebhook(update: { update_id: number }): Promise<void> {
    const url = new URL(this.webhook!.url);
    if (url.hostname !== "127.0.0.1") throw new Error("the stand-in only posts to 127.0.0.1");
    const body = JSON.stringify(update);
    this.deliveredAt.set(update.update_id, performance.now());
    await new Promise<void>((resolve, reject) => {
      const req = httpRequest(
        url,
        { method: "POST", headers: { "content-type": "application/json", "content-length": Buffer.byteLength(body), ...(this.webhook!.secret ? { "x-telegram-bot-api-secret-token": this.webhook!.secret } : {}) } },
        (res) => {
          res.resume();
          res.on("end", () => resolve());
        },
      );
      req.on("error", reject);
      req.end(body);
    });
  }

  /** Posts an update to the webhook with a wrong secret; resolves with the HTTP status. */
  async postWithWrongSecret(): Promise<number> {
    const body = JSON.stringify({ update_id: 999_999, message: { message_id: 1, date: 0, chat: { id: 1, type: "private" }, text: "/status" } });
    return new Promise((resolve, reject) => {
      const req = httpRequest(new URL(this.webhook!.url), { method: "POST", headers: { "content-type": "application/json", "x-telegram-bot-api-secret-token": "wrong" } }, (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      });
      req.on("error", reject);
      req.end(body);
    });
  }

  // ---- the Bot API ---------------------------------------------------------------------------

  private reply(res: ServerResponse, status: number, body: unknown): void {
    if (res.writableEnded) return;
    const text = JSON.stringify(body);
    res.writeHead(status, { "content-type": "application/json", "content-length": Buffer.byteLength(text) });
    res.end(text);
  }

  private fail(res: ServerResponse, call: ApiCall, code: number, description: string, parameters?: Record<string, unknown>): void {
    call.status = code;
    this.reply(res, code, { ok: false, error_code: code, description, ...(parameters ? { parameters } : {}) });
  }

  private wake(): void {
    for (const w of [...this.waiters]) {
      const ready = this.updates.filter((u) => u.update_id >= w.offset).slice(0, w.limit);
      if (!ready.length) continue;
      clearTimeout(w.timer);
      this.waiters = this.waiters.filter((x) => x !== w);
      this.answerUpdates(w.res, ready);
    }
  }

  private answerUpdates(res: ServerResponse, ready: { update_id: number }[]): void {
    const now = performance.now();
    for (const u of ready) if (!this.deliveredAt.has(u.update_id)) this.deliveredAt.set(u.update_id, now);
    this.reply(res, 200, { ok: true, result: ready });
  }

  private store(chatId: number, m: TgMessage): TgMessage {
    const list = this.messages.get(chatId) ?? [];
    list.push(m);
    this.messages.set(chatId, list);
    return m;
  }

  private find(chatId: number, messageId: number): TgMessage | undefined {
    return this.messages.get(chatId)?.find((m) => m.message_id === messageId);
  }

  private chatOf(id: number): TgChat {
    return id > 0 ? { id, type: "private", first_name: "user" } : { id, type: "supergroup", title: "Trading team", is_forum: true };
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? "/", "http://127.0.0.1");
    const m = /^\/bot([^/]+)\/([A-Za-z]+)$/.exec(url.pathname);
    const at = performance.now();
    if (!m) return this.reply(res, 404, { ok: false, error_code: 404, description: "Not Found" });
    const { params, files, fileNames } = await readParams(req, url);
    const method = m[2]!;
    const call: ApiCall = { method, params, at, status: 200 };
    this.calls.push(call);
    if (m[1] !== this.token) return this.fail(res, call, 401, "Unauthorized");

    if (this.lacking.has(method)) return this.fail(res, call, 404, "Not Found: method not found");
    const flood = this.floods.get(method);
    if (flood && flood.times > 0) {
      flood.times--;
      return this.fail(res, call, 429, `Too Many Requests: retry after ${flood.retryAfter}`, { retry_after: flood.retryAfter });
    }

    const refusal = this.refusals.get(method);
    if (refusal && refusal.times > 0) {
      refusal.times--;
      return this.fail(res, call, refusal.code, refusal.description);
    }
    const ok = (result: unknown) => this.reply(res, 200, { ok: true, result });
    const chatId = Number(params.chat_id);
    // As the Bot API answers them (its errors are passed on from the server, e.g. CHAT_MIGRATED and USER_IS_BLOCKED).
    if (params.chat_id !== undefined && this.migrated.has(chatId)) {
      return this.fail(res, call, 400, "Bad Request: group chat was upgraded to a supergroup chat", { migrate_to_chat_id: this.migrated.get(chatId) });
    }
    if (params.chat_id !== undefined && this.blockedBy.has(chatId)) return this.fail(res, call, 403, "Forbidden: bot was blocked by the user");
    const now = Math.floor(Date.now() / 1000);
    const checkText = (text: unknown, max: number, what: string): string | undefined => {
      if (typeof text !== "string" || text.length === 0) return `Bad Request: ${what} is empty`;
      // Half an emoji (a lone UTF-16 surrogate, which JSON carries as "\ud83d") is no UTF-8 text.
      if (/[\uD800-\uDFFF]/u.test(text)) return "Bad Request: text must be encoded in UTF-8";
      try {
        if (parsedLength(text, params.parse_mode) > max) return `Bad Request: ${what} is too long`;
      } catch (err) {
        return `Bad Request: can't parse entities: ${(err as Error).message}`;
      }
      return undefined;
    };

    switch (method) {
      case "getMe":
        return ok({ ...this.bot, can_join_groups: true, can_read_all_group_messages: false, supports_inline_queries: false });
      case "setMyCommands":
        this.commands = params.commands as { command: string; description: string }[];
        return ok(true);
      case "deleteWebhook":
        this.webhook = undefined;
        return ok(true);
      case "setWebhook": {
        const target = String(params.url);
        this.webhook = { url: target, ...(params.secret_token ? { secret: String(params.secret_token) } : {}) };
        return ok(true);
      }
      case "getUpdates": {
        if (this.webhook) return this.fail(res, call, 409, "Conflict: can't use getUpdates method while webhook is active; use deleteWebhook to delete the webhook first");
        const offset = Number(params.offset ?? 0);
        const limit = Number(params.limit ?? 100);
        // One poller per token: a long poll while another one waits is another instance of the bot.
        // (A poll with no timeout, such as grammy's last one on stop to confirm the offset, passes.)
        const conflict = "Conflict: terminated by other getUpdates request; make sure that only one bot instance is running";
        if (this.conflictMode === "refuse-newcomer" && Number(params.timeout ?? 0) > 0 && this.waiters.length > 0) {
          this.conflicts++;
          return this.fail(res, call, 409, conflict);
        }
        if (offset > 0) this.updates = this.updates.filter((u) => u.update_id >= offset);
        const ready = this.updates.slice(0, limit);
        const timeout = Number(params.timeout ?? 0);
        if (ready.length || timeout <= 0) return this.answerUpdates(res, ready);
        for (const old of this.waiters.splice(0)) {
          clearTimeout(old.timer);
          this.conflicts++;
          const now = performance.now();
          const hold = now - this.lastConflictAt < 3000 ? 3000 : 0;
          this.lastConflictAt = now;
          setTimeout(() => this.fail(old.res, old.call, 409, conflict), hold);
        }
        const waiter: Waiter = {
          offset,
          limit,
          res,
          call,
          timer: setTimeout(() => {
            this.waiters = this.waiters.filter((w) => w !== waiter);
            this.answerUpdates(res, []);
          }, timeout * 1000),
        };
        this.waiters.push(waiter);
        // The poller gave up (grammy aborts its long poll on stop): the connection closes.
        res.on("close", () => {
          clearTimeout(waiter.timer);
          this.waiters = this.waiters.filter((w) => w !== waiter);
        });
        return;
      }
      case "sendMessage": {
        const bad = checkText(params.text, 4096, "message text");
        if (bad) return this.fail(res, call, 400, bad);
        const thread = params.message_thread_id ? Number(params.message_thread_id) : undefined;
        const msg = this.store(chatId, {
          message_id: this.nextMessageId++,
          date: now,
          chat: this.chatOf(chatId),
          from: this.bot,
          text: String(params.text),
          ...(thread ? { message_thread_id: thread, is_topic_message: true } : {}),
          ...(params.reply_markup ? { reply_markup: params.reply_markup as TgMessage["reply_markup"] } : {}),
          ...(params.disable_notification ? { silent: true } : {}),
          ...(params.reply_parameters ? { reply_to: Number((params.reply_parameters as { message_id: number }).message_id) } : {}),
        });
        return ok(msg);
      }
      case "editMessageText": {
        const bad = checkText(params.text, 4096, "message text");
        if (bad) return this.fail(res, call, 400, bad);
        const msg = this.find(chatId, Number(params.message_id));
        if (!msg) return this.fail(res, call, 400, "Bad Request: message to edit not found");
        const markup = (params.reply_markup as TgMessage["reply_markup"]) ?? undefined;
        const sameMarkup = JSON.stringify(markup?.inline_keyboard?.length ? markup : undefined) === JSON.stringify(msg.reply_markup?.inline_keyboard?.length ? msg.reply_markup : undefined);
        if (msg.text === params.text && sameMarkup) {
          return this.fail(res, call, 400, "Bad Request: message is not modified: specified new message content and reply markup are exactly the same as a current content and reply markup of the message");
        }
        msg.text = String(params.text);
        if (markup?.inline_keyboard?.length) msg.reply_markup = markup;
        else delete msg.reply_markup;
        msg.edit_date = now;
        return ok(msg);
      }
      case "answerCallbackQuery": {
        const queryId = String(params.callback_query_id);
        const update = this.callbackUpdates.get(queryId);
        const handedAt = update === undefined ? undefined : this.deliveredAt.get(update);
        if (update === undefined || this.answers.has(queryId) || (handedAt !== undefined && at - handedAt > this.callbackAnswerDeadlineMs)) {
          return this.fail(res, call, 400, "Bad Request: query is too old and response timeout expired or query ID is invalid");
        }
        if (typeof params.text === "string" && params.text.length > 200) return this.fail(res, call, 400, "Bad Request: MESSAGE_TOO_LONG");
        this.answers.set(String(params.callback_query_id), { ...(params.text ? { text: String(params.text) } : {}), ...(params.show_alert ? { show_alert: Boolean(params.show_alert) } : {}) });
        return ok(true);
      }
      case "sendPhoto": {
        const ref = params.photo;
        const name = typeof ref === "string" && ref.startsWith("attach://") ? ref.slice(9) : "photo";
        const file = files.get(name);
        if (!file) return this.fail(res, call, 400, "Bad Request: there is no photo in the request");
        if (typeof params.caption === "string" && parsedLength(params.caption, params.parse_mode) > 1024) return this.fail(res, call, 400, "Bad Request: message caption is too long");
        call.file = file;
        const thread = params.message_thread_id ? Number(params.message_thread_id) : undefined;
        const msg = this.store(chatId, {
          message_id: this.nextMessageId++,
          date: now,
          chat: this.chatOf(chatId),
          from: this.bot,
          ...(params.caption ? { caption: String(params.caption) } : {}),
          photo: [{ file_id: `photo-${this.nextMessageId}`, file_unique_id: `u${this.nextMessageId}`, width: 900, height: 450, file_size: file.length }],
          ...(thread ? { message_thread_id: thread, is_topic_message: true } : {}),
        });
        return ok(msg);
      }
      case "sendDocument": {
        // Bot API: `document` is a file_id, a URL, or "attach://<part>" naming a multipart file; 50 MB at most.
        const ref = params.document;
        const name = typeof ref === "string" && ref.startsWith("attach://") ? ref.slice(9) : "document";
        const file = files.get(name);
        if (!file) return this.fail(res, call, 400, "Bad Request: there is no document in the request");
        if (file.length === 0) return this.fail(res, call, 400, "Bad Request: file must be non-empty");
        if (file.length > 50 * 1024 * 1024) return this.fail(res, call, 400, "Bad Request: file is too big");
        if (typeof params.caption === "string" && parsedLength(params.caption, params.parse_mode) > 1024) return this.fail(res, call, 400, "Bad Request: message caption is too long");
        call.file = file;
        const fileName = fileNames.get(name);
        if (fileName) call.fileName = fileName;
        const thread = params.message_thread_id ? Number(params.message_thread_id) : undefined;
        const msg = this.store(chatId, {
          message_id: this.nextMessageId++,
          date: now,
          chat: this.chatOf(chatId),
          from: this.bot,
          ...(params.caption ? { caption: String(params.caption) } : {}),
          document: { file_id: `doc-${this.nextMessageId}`, file_unique_id: `d${this.nextMessageId}`, ...(fileName ? { file_name: fileName } : {}), mime_type: fileName?.endsWith(".csv") ? "text/csv" : "application/octet-stream", file_size: file.length },
          ...(thread ? { message_thread_id: thread, is_topic_message: true } : {}),
        });
        return ok(msg);
      }
      default:
        return this.fail(res, call, 404, "Not Found: method not found");
    }
  }
}
