// Discord on 127.0.0.1 for tests and benchmarks: the REST API (/api/v10/...) and the gateway
// (a WebSocket speaking HELLO, IDENTIFY, READY, GUILD_CREATE, heartbeats and INTERACTION_CREATE).
// discord.js connects to it as to discord.com: it asks GET /gateway/bot for the gateway address,
// which points back here. It answers as Discord does, errors included: 401 without the bot token,
// 400 for content over 2000 characters or an invalid slash command, 40060 for an interaction
// answered twice, 10062 for one answered after 3 s. Rate limits as Discord sends them: every post
// to a channel carries the X-RateLimit-* headers of its bucket (5 per 5 s per channel by default),
// a post over the bucket gets a 429, and `flood` forces 429s (per route or global), each with a
// JSON body holding a fractional retry_after and `global`, and a Retry-After header in whole seconds;
// `globalLimit` sets a real global limit across routes. And as real Discord does: 403 50001 Missing
// Access to registering commands in a server the bot is not in, 404 10003 Unknown Channel and 403
// 50001 / 50013 Missing Permissions to a channel the bot cannot see or post in (from the channel's
// permission overwrites for the bot's role), 401 50027 Invalid Webhook Token once an interaction's
// token is past its 15 minutes, guild commands only in their guild (never in DMs), autocomplete
// interactions, and a gateway close with a chosen code (4004, 4010-4014) on IDENTIFY.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { WebSocketServer, type WebSocket } from "ws";
import { parseMultipart } from "./multipart.js";

export interface DUser {
  id: string;
  username: string;
  global_name?: string | null;
}

export interface RestCall {
  method: string;
  path: string;
  body: Record<string, unknown> | undefined;
  files: { name: string; filename: string; data: Buffer; contentType?: string }[];
  /** performance.now() when the request arrived. */
  at: number;
  status: number;
}

export interface DMessage {
  id: string;
  channel_id: string;
  content: string;
  flags: number;
  components: { type: number; components: { type: number; custom_id?: string; label?: string; style?: number }[] }[];
  attachments: { id: string; filename: string; size: number; content_type?: string }[];
  edited_timestamp: string | null;
  /** Stand-in bookkeeping: the bytes of each attachment, and the interaction this answers. */
  files: Buffer[];
  interaction?: string;
  [key: string]: unknown;
}

export interface InteractionRecord {
  id: string;
  token: string;
  type: number;
  user: DUser;
  /** Component interactions: the id of the message the button is on. */
  messageId?: string;
  /** Autocomplete interactions: the suggestions the bot answered with. */
  choices?: { name: string; value: unknown }[];
  /** performance.now() when INTERACTION_CREATE was sent, and when the first callback arrived. */
  sentAt: number;
  ackAt?: number;
  ackType?: number;
  original?: DMessage;
  /** The original response, once the bot deleted it (DELETE .../messages/@original). */
  deleted?: DMessage;
  followUps: DMessage[];
}

interface Flood {
  times: number;
  retryAfter: number;
  global: boolean;
}

interface Bucket {
  used: number;
  resetAt: number;
}

const EPHEMERAL = 64;
const EVERYONE_PERMISSIONS = 1071698660928n;
const VIEW_CHANNEL = 1n << 10n;
const SEND_MESSAGES = 1n << 11n;
const ATTACH_FILES = 1n << 15n;
const NAME = /^[-_\p{L}\p{N}]{1,32}$/u;

const invalid = (field: string, message: string) => ({ code: 50035, message: "Invalid Form Body", errors: { [field]: { _errors: [{ code: "BASE_TYPE_INVALID", message }] } } });

/** Checks a slash command as Discord does when it is registered; returns the first problem. */
export function commandProblem(c: Record<string, unknown>): string | undefined {
  const name = String(c.name ?? "");
  if (!NAME.test(name) || name !== name.toLowerCase()) return `name "${name}" is not a valid command name`;
  const desc = String(c.description ?? "");
  if (desc.length < 1 || desc.length > 100) return `description of ${name} must be 1 to 100 characters`;
  const options = (c.options ?? []) as Record<string, unknown>[];
  if (options.length > 25) return `${name} has more than 25 options`;
  let optionalSeen = false;
  for (const o of options) {
    const oname = String(o.name ?? "");
    if (!NAME.test(oname) || oname !== oname.toLowerCase()) return `option "${oname}" of ${name} is not a valid name`;
    const odesc = String(o.description ?? "");
    if (odesc.length < 1 || odesc.length > 100) return `option ${oname} of ${name}: description must be 1 to 100 characters`;
    if (![3, 4, 5, 10].includes(Number(o.type))) return `option ${oname} of ${name}: unsupported type ${String(o.type)}`;
    if (o.required) {
      if (optionalSeen) return `${name}: required options must be placed before non-required options`;
    } else optionalSeen = true;
    const choices = (o.choices ?? []) as { name: string; value: unknown }[];
    if (o.autocomplete && choices.length) return `option ${oname} of ${name}: autocomplete may not be set to true if choices are present`;
    if (choices.length > 25) return `option ${oname} of ${name} has more than 25 choices`;
    for (const ch of choices) if (!ch.name || ch.name.length > 100) return `a choice of ${oname} in ${name} has a bad name`;
  }
  return undefined;
}

export class DiscordStandIn {
  /** A throwaway token in Discord's three-part shape. */
  readonly token = "MTAwMDAwMDAwMDAwMDAwMDAx.GtEsT0.stand-in-token_for-tests-only";
  readonly appId = "1000000000000000001";
  readonly bot: DUser = { id: "1000000000000000001", username: "trading-agent", global_name: "Trading Agent" };
  readonly guildId = "2000000000000000001";
  readonly channelId = "3000000000000000001";
  /** Server roles a member can hold (their ids are what DISCORD_ROLE_MAP maps). */
  readonly roles = { trader: "4000000000000000001", admin: "4000000000000000002" };
  /** The bot's own (managed) role in the server. */
  readonly botRoleId = "4000000000000000009";
  /** A channel in a server the bot is not in: it exists, the bot may not see it. */
  readonly foreignChannelId = "3000000000000000099";
  /** Permissions the channel's overwrite denies the bot's role in the alert channel (ViewChannel 1024, SendMessages 2048, AttachFiles 32768). */
  channelDeny = 0n;
  /** An interaction's token works this long (Discord: 15 minutes). */
  tokenLifetimeMs = 15 * 60_000;
  /** Tokens of interactions sent before this (performance.now()) have run out: 15 minutes passed for them, without a test waiting them out. */
  tokensExpiredBefore: number | undefined;
  /** Set: the gateway closes with this code on IDENTIFY (4004, 4010-4014), as Discord does. */
  closeOnIdentify: number | undefined;
  /** Requests allowed per window across every route before a global 429 (Discord: 50 a second). */
  globalLimit: { limit: number; windowMs: number } | undefined;
  readonly calls: RestCall[] = [];
  /** Registered slash commands, by "guild:<id>" or "global". */
  readonly commands = new Map<string, Record<string, unknown>[]>();
  /** Messages the bot posted in channels. */
  readonly channelMessages = new Map<string, DMessage[]>();
  readonly interactions = new Map<string, InteractionRecord>();
  identified = false;
  /** IDENTIFY payloads received (a client logging in again counts again). */
  identifies = 0;
  heartbeats = 0;
  /** Discord forgets an interaction not answered within 3 s; a test about something else may allow more. */
  ackDeadlineMs = 3000;
  /** The rate-limit bucket of posting in one channel. */
  channelBucket = { limit: 5, windowMs: 5000 };
  /** How many 429s were sent, forced or earned. */
  rateLimited = 0;

  private server: Server | undefined;
  private wss: WebSocketServer | undefined;
  private sockets = new Set<WebSocket>();
  private seq = 0;
  private nextId = 5_000_000_000_000_000_000n;
  private readonly floods = new Map<string, Flood>();
  private readonly buckets = new Map<string, Bucket>();
  private readonly byToken = new Map<string, InteractionRecord>();
  private global: Bucket | undefined;

  get port(): number {
    return (this.server!.address() as AddressInfo).port;
  }

  /** What DISCORD_API_URL (the REST client's `api` option) points at. */
  get apiBase(): string {
    return `http://127.0.0.1:${this.port}/api`;
  }

  private snowflake(): string {
    this.nextId += 1n;
    return String(this.nextId);
  }

  async start(): Promise<this> {
    this.server = createServer((req, res) => void this.handle(req, res));
    this.wss = new WebSocketServer({ noServer: true });
    this.server.on("upgrade", (req, socket, head) => {
      if (!(req.url ?? "").startsWith("/gateway")) return socket.destroy();
      this.wss!.handleUpgrade(req, socket, head, (ws) => this.onSocket(ws));
    });
    await new Promise<void>((r) => this.server!.listen(0, "127.0.0.1", () => r()));
    return this;
  }

  async stop(): Promise<void> {
    for (const ws of this.sockets) ws.terminate();
    this.wss?.close();
    this.server?.closeAllConnections();
    await new Promise<void>((r) => (this.server ? this.server.close(() => r()) : r()));
  }

  /** The next `times` requests whose "METHOD /path" starts with `route` get a 429 (a global one if asked). */
  flood(route: string, retryAfter: number, times = 1, opts: { global?: boolean } = {}): void {
    this.floods.set(route, { times, retryAfter, global: opts.global ?? false });
  }

  /** Counts a post against its channel's bucket: the X-RateLimit-* headers, and whether it is over. */
  private takeBucket(channelId: string, now: number, route = "channel-messages", rate = this.channelBucket): { headers: Record<string, string>; over: number | undefined } {
    const { limit, windowMs } = rate;
    const key = `${route}:${channelId}`;
    let b = this.buckets.get(key);
    if (!b || now >= b.resetAt) b = { used: 0, resetAt: now + windowMs };
    this.buckets.set(key, b);
    const resetAfter = (b.resetAt - now) / 1000;
    const over = b.used >= limit ? resetAfter : undefined;
    if (over === undefined) b.used++;
    const headers = {
      "x-ratelimit-limit": String(limit),
      "x-ratelimit-remaining": String(limit - b.used),
      "x-ratelimit-reset": ((Date.now() + (b.resetAt - now)) / 1000).toFixed(3),
      "x-ratelimit-reset-after": resetAfter.toFixed(3),
      "x-ratelimit-bucket": `stand-in-${route}`,
    };
    return { headers, over };
  }

  private tooMany(retryAfter: number, global: boolean, headers: Record<string, string> = {}) {
    this.rateLimited++;
    return {
      body: { message: "You are being rate limited.", retry_after: Number(retryAfter.toFixed(3)), global },
      headers: {
        ...headers,
        "retry-after": String(Math.ceil(retryAfter)),
        "x-ratelimit-scope": global ? "global" : "user",
        ...(global ? { "x-ratelimit-global": "true" } : {}),
      },
    };
  }

  callsTo(route: string): RestCall[] {
    return this.calls.filter((c) => `${c.method} ${c.path}`.startsWith(route) && c.status < 300);
  }

  messagesIn(channelId = this.channelId): DMessage[] {
    return this.channelMessages.get(channelId) ?? [];
  }

  // ---- the gateway ---------------------------------------------------------------------------

  private send(ws: WebSocket, payload: Record<string, unknown>): void {
    ws.send(JSON.stringify({ s: null, t: null, ...payload }));
  }

  private dispatch(t: string, d: unknown): void {
    this.seq++;
    for (const ws of this.sockets) this.send(ws, { op: 0, t, s: this.seq, d });
  }

  private onSocket(ws: WebSocket): void {
    this.sockets.add(ws);
    ws.on("close", () => this.sockets.delete(ws));
    this.send(ws, { op: 10, d: { heartbeat_interval: 41_250 } });
    ws.on("message", (raw) => {
      const msg = JSON.parse(String(raw)) as { op: number; d: Record<string, unknown> };
      if (msg.op === 1) {
        this.heartbeats++;
        this.send(ws, { op: 11 });
      } else if (msg.op === 2) {
        this.identifies++;
        if (msg.d.token !== this.token) return ws.close(4004, "Authentication failed.");
        if (this.closeOnIdentify !== undefined) return ws.close(this.closeOnIdentify, "Closed by the stand-in.");
        this.identified = true;
        this.dispatch("READY", {
          v: 10,
          user: { ...this.bot, discriminator: "0", avatar: null, bot: true, verified: true, flags: 0 },
          guilds: [{ id: this.guildId, unavailable: true }],
          session_id: "stand-in-session",
          resume_gateway_url: `ws://127.0.0.1:${this.port}/gateway`,
          shard: [0, 1],
          application: { id: this.appId, flags: 0 },
          private_channels: [],
        });
        this.dispatch("GUILD_CREATE", this.guild());
      }
    });
  }

  private channelJson(): Record<string, unknown> {
    const overwrites = this.channelDeny ? [{ id: this.botRoleId, type: 0, allow: "0", deny: String(this.channelDeny) }] : [];
    return { id: this.channelId, type: 0, name: "trading", guild_id: this.guildId, position: 0, permission_overwrites: overwrites, parent_id: null, nsfw: false, topic: null, last_message_id: null, rate_limit_per_user: 0, flags: 0 };
  }

  /** What the bot may do in the alert channel: the @everyone role's permissions less the overwrite. */
  private botMay(bit: bigint): boolean {
    return (EVERYONE_PERMISSIONS & ~this.channelDeny & bit) === bit;
  }

  private guild(): Record<string, unknown> {
    return {
      id: this.guildId,
      name: "Trading desk",
      icon: null,
      owner_id: "9000000000000000001",
      afk_timeout: 300,
      verification_level: 0,
      default_message_notifications: 0,
      explicit_content_filter: 0,
      mfa_level: 0,
      system_channel_flags: 0,
      premium_tier: 0,
      preferred_locale: "en-US",
      nsfw_level: 0,
      features: [],
      roles: [
        { id: this.guildId, name: "@everyone", permissions: "1071698660928", position: 0, color: 0, hoist: false, managed: false, mentionable: false, flags: 0 },
        ...Object.entries(this.roles).map(([name, id], i) => ({ id, name, permissions: "0", position: i + 1, color: 0, hoist: false, managed: false, mentionable: false, flags: 0 })),
        { id: this.botRoleId, name: "trading-agent", permissions: "0", position: 9, color: 0, hoist: false, managed: true, mentionable: false, flags: 0, tags: { bot_id: this.bot.id } },
      ],
      emojis: [],
      stickers: [],
      channels: [this.channelJson()],
      threads: [],
      // Discord includes the bot's own member in GUILD_CREATE.
      members: [this.member(this.bot, [this.botRoleId])],
      voice_states: [],
      presences: [],
      stage_instances: [],
      guild_scheduled_events: [],
      soundboard_sounds: [],
      member_count: 5,
      joined_at: new Date().toISOString(),
      large: false,
      unavailable: false,
      lazy: true,
    };
  }

  /** Closes every gateway connection with `code`, as Discord does when it ends a session. */
  closeGateway(code: number): void {
    for (const ws of this.sockets) ws.close(code, "Closed by the stand-in.");
  }

  /** Waits until discord.js has identified and received READY. */
  async connected(timeoutMs = 10_000): Promise<void> {
    const end = Date.now() + timeoutMs;
    while (!this.identified) {
      if (Date.now() > end) throw new Error("discord.js did not identify");
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  // ---- what users do -------------------------------------------------------------------------

  private member(user: DUser, roles: string[]): Record<string, unknown> {
    return {
      user: { ...user, discriminator: "0", avatar: null, global_name: user.global_name ?? null },
      roles,
      permissions: "1071698660928",
      joined_at: new Date(0).toISOString(),
      deaf: false,
      mute: false,
      flags: 0,
      nick: null,
      avatar: null,
      premium_since: null,
      pending: false,
      communication_disabled_until: null,
    };
  }

  private interaction(type: number, user: DUser, data: Record<string, unknown>, opts: { roles?: string[]; dm?: boolean; message?: DMessage }): InteractionRecord {
    const id = this.snowflake();
    const token = `itoken-${id}-${Math.random().toString(36).slice(2)}`;
    const record: InteractionRecord = { id, token, type, user, sentAt: performance.now(), followUps: [], ...(opts.message ? { messageId: opts.message.id } : {}) };
    this.interactions.set(id, record);
    this.byToken.set(token, record);
    const where = opts.dm
      ? { channel_id: `dm-${user.id}`, channel: { id: `dm-${user.id}`, type: 1, recipients: [{ ...user, discriminator: "0", avatar: null }] }, user: { ...user, discriminator: "0", avatar: null }, context: 1 }
      : { guild_id: this.guildId, channel_id: this.channelId, channel: { id: this.channelId, type: 0, guild_id: this.guildId, name: "trading" }, member: this.member(user, opts.roles ?? []), guild_locale: "en-US", context: 0 };
    this.dispatch("INTERACTION_CREATE", {
      id,
      application_id: this.appId,
      type,
      token,
      version: 1,
      app_permissions: "1071698660928",
      locale: "en-US",
      entitlements: [],
      authorizing_integration_owners: opts.dm ? { "1": user.id } : { "0": this.guildId },
      attachment_size_limit: 8_388_608,
      data,
      ...where,
      ...(opts.message ? { message: this.wire(opts.message) } : {}),
    });
    return record;
  }

  /**
   * A user runs a slash command. Options are typed as the registered command says, and checked
   * against it (as Discord does before the bot ever sees them).
   */
  slash(user: DUser, name: string, options: Record<string, string | number> = {}, opts: { roles?: string[]; dm?: boolean } = {}): InteractionRecord {
    const registered = this.registered(name, opts.dm);
    const defs = (registered.options ?? []) as { name: string; type: number; required?: boolean; choices?: { value: unknown }[]; min_value?: number; max_value?: number }[];
    const typed = Object.entries(options).map(([k, v]) => {
      const def = defs.find((d) => d.name === k);
      if (!def) throw new Error(`/${name} has no option ${k}`);
      if (def.choices && !def.choices.some((c) => c.value === v)) throw new Error(`${String(v)} is not a choice of ${k}`);
      if ((def.type === 10 || def.type === 4) && typeof v !== "number") throw new Error(`${k} must be a number`);
      if (typeof v === "number" && ((def.min_value !== undefined && v < def.min_value) || (def.max_value !== undefined && v > def.max_value))) throw new Error(`${k} out of range`);
      return { name: k, type: def.type, value: v };
    });
    for (const d of defs) if (d.required && !(d.name in options)) throw new Error(`/${name} needs ${d.name}`);
    return this.interaction(2, user, { id: String(registered.id), name, type: 1, options: typed, ...(opts.dm ? {} : { guild_id: this.guildId }) }, opts);
  }

  /**
   * The command a user can see: in a DM only global commands allowed in the bot's DMs (context 1);
   * guild commands exist only in their guild, so Discord never sends them from a DM.
   */
  private registered(name: string, dm = false): Record<string, unknown> {
    const global = (this.commands.get("global") ?? []).find((c) => c.name === name && (!dm || !c.contexts || (c.contexts as number[]).includes(1)));
    const guild = dm ? undefined : (this.commands.get(`guild:${this.guildId}`) ?? []).find((c) => c.name === name);
    const found = guild ?? global;
    if (!found) throw new Error(dm ? `/${name} is not offered in DMs: only global commands are (guild commands stay in their server)` : `/${name} is not registered`);
    return found;
  }

  /** A user types into option `option` of /`name`: Discord asks the bot for suggestions (an autocomplete interaction). */
  autocomplete(user: DUser, name: string, option: string, typed: string, opts: { roles?: string[] } = {}): InteractionRecord {
    const registered = this.registered(name);
    const def = ((registered.options ?? []) as { name: string; type: number; autocomplete?: boolean }[]).find((o) => o.name === option);
    if (!def?.autocomplete) throw new Error(`option ${option} of /${name} does not autocomplete`);
    return this.interaction(4, user, { id: String(registered.id), name, type: 1, options: [{ name: option, type: def.type, value: typed, focused: true }], guild_id: this.guildId }, opts);
  }

  /** Every message the bot can be asked to edit: channel posts and interaction answers. */
  private findMessage(id: string): DMessage | undefined {
    for (const list of this.channelMessages.values()) for (const m of list) if (m.id === id) return m;
    for (const r of this.interactions.values()) for (const m of [r.original, ...r.followUps]) if (m?.id === id) return m;
    return undefined;
  }

  /** A user presses a button under `message`. */
  press(user: DUser, message: DMessage, customId: string, opts: { roles?: string[] } = {}): InteractionRecord {
    return this.interaction(3, user, { custom_id: customId, component_type: 2 }, { ...opts, message });
  }

  // ---- REST ----------------------------------------------------------------------------------

  private wire(m: DMessage): Record<string, unknown> {
    const { files: _files, interaction: _interaction, ...rest } = m;
    return rest;
  }

  private reply(res: ServerResponse, status: number, body?: unknown, headers: Record<string, string> = {}): void {
    if (res.writableEnded) return;
    if (body === undefined) {
      res.writeHead(status, headers);
      res.end();
      return;
    }
    const text = JSON.stringify(body);
    res.writeHead(status, { "content-type": "application/json", "content-length": String(Buffer.byteLength(text)), ...headers });
    res.end(text);
  }

  private makeMessage(channelId: string, body: Record<string, unknown>, files: RestCall["files"], extra: Partial<DMessage> = {}): DMessage {
    return {
      id: this.snowflake(),
      type: 0,
      channel_id: channelId,
      ...(channelId === this.channelId ? { guild_id: this.guildId } : {}),
      author: { ...this.bot, discriminator: "0", avatar: null, bot: true },
      content: String(body.content ?? ""),
      flags: Number(body.flags ?? 0),
      components: (body.components ?? []) as DMessage["components"],
      attachments: files.map((f, i) => ({ id: String(i), filename: f.filename, size: f.data.length, ...(f.contentType ? { content_type: f.contentType } : {}), url: `http://127.0.0.1/${f.filename}`, proxy_url: `http://127.0.0.1/${f.filename}` })),
      files: files.map((f) => f.data),
      embeds: [],
      mentions: [],
      mention_roles: [],
      mention_everyone: false,
      pinned: false,
      tts: false,
      timestamp: new Date().toISOString(),
      edited_timestamp: null,
      ...extra,
    };
  }

  private applyEdit(m: DMessage, body: Record<string, unknown>, files: RestCall["files"]): void {
    if (body.content !== undefined) m.content = String(body.content ?? "");
    if (body.components !== undefined) m.components = body.components as DMessage["components"];
    if (files.length) {
      m.files = files.map((f) => f.data);
      m.attachments = files.map((f, i) => ({ id: String(i), filename: f.filename, size: f.data.length }));
    }
    m.edited_timestamp = new Date().toISOString();
  }

  /** Discord's checks on a message body; returns an error body when it would refuse it. */
  private messageProblem(body: Record<string, unknown>): unknown {
    if (typeof body.content === "string" && body.content.length > 2000) return invalid("content", "Must be 2000 or fewer in length.");
    for (const row of (body.components ?? []) as DMessage["components"]) {
      for (const c of row.components) {
        if ((c.custom_id ?? "").length > 100) return invalid("components", "custom_id must be 100 or fewer in length.");
        if ((c.label ?? "").length > 80) return invalid("components", "label must be 80 or fewer in length.");
      }
    }
    return undefined;
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const at = performance.now();
    const url = new URL(req.url ?? "/", "http://127.0.0.1");
    const path = decodeURIComponent(url.pathname).replace(/^\/api\/v10/, "");
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const raw = Buffer.concat(chunks);
    const type = req.headers["content-type"] ?? "";
    let body: Record<string, unknown> | undefined;
    const files: RestCall["files"] = [];
    if (type.includes("multipart/form-data")) {
      for (const part of parseMultipart(raw, type)) {
        if (part.name === "payload_json") body = JSON.parse(part.data.toString("utf8")) as Record<string, unknown>;
        else if (part.filename) files.push({ name: part.name, filename: part.filename, data: part.data, ...(part.contentType ? { contentType: part.contentType } : {}) });
      }
    } else if (raw.length) body = JSON.parse(raw.toString("utf8")) as Record<string, unknown>;
    const method = req.method ?? "GET";
    const call: RestCall = { method, path, body, files, at, status: 200 };
    this.calls.push(call);
    const done = (status: number, out?: unknown, headers?: Record<string, string>) => {
      call.status = status;
      this.reply(res, status, out, headers);
    };

    // Discord refuses a message whose files pass the upload limit (10 MiB for a bot in a server without boosts).
    if (files.reduce((n, f) => n + f.data.length, 0) > 10 * 1024 * 1024) return done(413, { message: "Request entity too large", code: 40005 });
    for (const [route, flood] of this.floods) {
      if (flood.times > 0 && `${method} ${path}`.startsWith(route)) {
        flood.times--;
        const limited = this.tooMany(flood.retryAfter, flood.global);
        return done(429, limited.body, limited.headers);
      }
    }

    const interactionRoute = /^\/(interactions|webhooks)\//.test(path);
    if (!interactionRoute && req.headers.authorization !== `Bot ${this.token}`) return done(401, { message: "401: Unauthorized", code: 0 });
    // The global limit counts the bot's requests on every route; interaction endpoints are exempt.
    if (this.globalLimit && !interactionRoute) {
      const { limit, windowMs } = this.globalLimit;
      if (!this.global || at >= this.global.resetAt) this.global = { used: 0, resetAt: at + windowMs };
      if (this.global.used >= limit) {
        const limited = this.tooMany((this.global.resetAt - at) / 1000, true);
        return done(429, limited.body, limited.headers);
      }
      this.global.used++;
    }
    const b = body ?? {};
    let m: RegExpExecArray | null;

    if (method === "GET" && path === "/gateway/bot") {
      return done(200, { url: `ws://127.0.0.1:${this.port}/gateway`, shards: 1, session_start_limit: { total: 1000, remaining: 999, reset_after: 86_400_000, max_concurrency: 1 } });
    }
    if (method === "PUT" && (m = /^\/applications\/(\d+)\/(?:guilds\/(\d+)\/)?commands$/.exec(path))) {
      if (m[1] !== this.appId) return done(403, { message: "Missing Access", code: 50001 });
      // A server the bot was never invited to (or was removed from).
      if (m[2] && m[2] !== this.guildId) return done(403, { message: "Missing Access", code: 50001 });
      const list = (Array.isArray(body) ? body : []) as Record<string, unknown>[];
      for (const c of list) {
        const problem = commandProblem(c);
        if (problem) return done(400, invalid("name", problem));
      }
      const saved = list.map((c) => ({ ...c, id: this.snowflake(), application_id: this.appId, version: "1", ...(m![2] ? { guild_id: m![2] } : {}) }));
      this.commands.set(m[2] ? `guild:${m[2]}` : "global", saved);
      return done(200, saved);
    }
    if (method === "GET" && (m = /^\/applications\/(\d+)\/(?:guilds\/(\d+)\/)?commands$/.exec(path))) {
      if (m[1] !== this.appId || (m[2] && m[2] !== this.guildId)) return done(403, { message: "Missing Access", code: 50001 });
      return done(200, this.commands.get(m[2] ? `guild:${m[2]}` : "global") ?? []);
    }
    if (method === "DELETE" && (m = /^\/applications\/(\d+)\/(?:guilds\/(\d+)\/)?commands\/(\d+)$/.exec(path))) {
      if (m[1] !== this.appId || (m[2] && m[2] !== this.guildId)) return done(403, { message: "Missing Access", code: 50001 });
      const scope = m[2] ? `guild:${m[2]}` : "global";
      const list = this.commands.get(scope) ?? [];
      if (!list.some((c) => c.id === m![3])) return done(404, { message: "Unknown application command", code: 10063 });
      this.commands.set(scope, list.filter((c) => c.id !== m![3]));
      return done(204);
    }
    if (method === "POST" && (m = /^\/interactions\/(\d+)\/([^/]+)\/callback$/.exec(path))) {
      const record = this.interactions.get(m[1]!);
      if (!record || record.token !== m[2]) return done(404, { message: "Unknown interaction", code: 10062 });
      if (record.ackType !== undefined) return done(400, { message: "Interaction has already been acknowledged.", code: 40060 });
      if (at - record.sentAt > this.ackDeadlineMs) return done(404, { message: "Unknown interaction", code: 10062 });
      const data = (b.data ?? {}) as Record<string, unknown>;
      if (Number(b.type) === 8) {
        if (record.type !== 4) return done(400, invalid("type", "Autocomplete results are only for autocomplete interactions."));
        const choices = (data.choices ?? []) as { name: string; value: unknown }[];
        if (choices.length > 25) return done(400, invalid("choices", "Must be 25 or fewer in length."));
        record.ackAt = at;
        record.ackType = 8;
        record.choices = choices;
        return done(204);
      }
      const problem = this.messageProblem(data);
      if (problem) return done(400, problem);
      record.ackAt = at;
      record.ackType = Number(b.type);
      if (record.ackType === 4 || record.ackType === 5) {
        record.original = this.makeMessage(this.channelId, record.ackType === 5 ? { ...data, flags: Number(data.flags ?? 0) | 128 } : data, files, { interaction: record.id });
      }
      return done(204);
    }
    if ((m = /^\/webhooks\/(\d+)\/([^/]+)(?:\/messages\/([^/]+))?$/.exec(path))) {
      const record = this.byToken.get(m[2]!);
      if (!record || m[1] !== this.appId) return done(404, { message: "Unknown Webhook", code: 10015 });
      if (at - record.sentAt > this.tokenLifetimeMs || (this.tokensExpiredBefore !== undefined && record.sentAt < this.tokensExpiredBefore)) return done(401, { message: "Invalid Webhook Token", code: 50027 });
      const problem = this.messageProblem(b);
      if (problem) return done(400, problem);
      if (method === "POST" && !m[3]) {
        if (record.ackType === undefined) return done(404, { message: "Unknown Webhook", code: 10015 });
        // The first follow-up to a deferred reply still "thinking" takes its place, and keeps the
        // defer's visibility: its own ephemeral flag is ignored (Discord's Create Followup Message).
        if (record.ackType === 5 && record.original && record.original.flags & 128) {
          const original = record.original;
          this.applyEdit(original, { ...b, flags: undefined }, files);
          original.flags &= ~128;
          return done(200, this.wire(original));
        }
        const msg = this.makeMessage(this.channelId, b, files, { interaction: record.id, webhook_id: this.appId });
        record.followUps.push(msg);
        return done(200, this.wire(msg));
      }
      if (method === "DELETE" && m[3] === "@original") {
        if (!record.original) return done(404, { message: "Unknown Message", code: 10008 });
        record.deleted = record.original;
        delete record.original;
        return done(204);
      }
      if (method === "PATCH" && m[3]) {
        // A button press's @original is the message the button is on.
        const original = record.type === 3 && record.messageId ? this.findMessage(record.messageId) : record.original;
        const target = m[3] === "@original" ? original : [original, ...record.followUps].find((x) => x?.id === m![3]);
        if (!target) return done(404, { message: "Unknown Message", code: 10008 });
        this.applyEdit(target, b, files);
        target.flags &= ~128;
        return done(200, this.wire(target));
      }
    }
    if (method === "GET" && (m = /^\/channels\/(\d+)$/.exec(path))) {
      const problem = this.channelProblem(m[1]!);
      if (problem) return done(problem.status, problem.body);
      return done(200, this.channelJson());
    }
    if (method === "GET" && (m = /^\/guilds\/(\d+)\/members\/(\d+)$/.exec(path))) {
      if (m[1] !== this.guildId) return done(403, { message: "Missing Access", code: 50001 });
      if (m[2] !== this.bot.id) return done(404, { message: "Unknown Member", code: 10007 });
      return done(200, this.member(this.bot, [this.botRoleId]));
    }
    if (method === "POST" && (m = /^\/channels\/(\d+)\/messages$/.exec(path))) {
      const refused = this.channelProblem(m[1]!) ?? this.postProblem(files.length > 0);
      if (refused) return done(refused.status, refused.body);
      const bucket = this.takeBucket(m[1]!, at);
      if (bucket.over !== undefined) {
        const limited = this.tooMany(bucket.over, false, bucket.headers);
        return done(429, limited.body, limited.headers);
      }
      const problem = this.messageProblem(b);
      if (problem) return done(400, problem, bucket.headers);
      const msg = this.makeMessage(m[1]!, b, files);
      this.channelMessages.set(m[1]!, [...this.messagesIn(m[1]!), msg]);
      return done(200, this.wire(msg), bucket.headers);
    }
    if (method === "PATCH" && (m = /^\/channels\/(\d+)\/messages\/(\d+)$/.exec(path))) {
      const problem = this.messageProblem(b);
      if (problem) return done(400, problem);
      const channelProblem = this.channelProblem(m[1]!);
      if (channelProblem) return done(channelProblem.status, channelProblem.body);
      // Interaction answers are messages in the channel too, except ephemeral ones (only their webhook sees those).
      const msg = this.findMessage(m[2]!);
      if (!msg || msg.channel_id !== m[1] || this.isEphemeral(msg)) return done(404, { message: "Unknown Message", code: 10008 });
      const bucket = this.takeBucket(m[1]!, at, "channel-message-edits");
      this.applyEdit(msg, b, files);
      return done(200, this.wire(msg), bucket.headers);
    }
    return done(404, { message: "404: Not Found", code: 0 });
  }

  /** Discord's answer to a request about a channel the bot cannot use, if so. */
  private channelProblem(channelId: string): { status: number; body: unknown } | undefined {
    if (channelId === this.foreignChannelId) return { status: 403, body: { message: "Missing Access", code: 50001 } };
    if (channelId !== this.channelId) return { status: 404, body: { message: "Unknown Channel", code: 10003 } };
    if (!this.botMay(VIEW_CHANNEL)) return { status: 403, body: { message: "Missing Access", code: 50001 } };
    return undefined;
  }

  private postProblem(withFiles: boolean): { status: number; body: unknown } | undefined {
    if (!this.botMay(SEND_MESSAGES) || (withFiles && !this.botMay(ATTACH_FILES))) return { status: 403, body: { message: "Missing Permissions", code: 50013 } };
    return undefined;
  }

  /** The message an interaction produced that carries buttons (its reply or a follow-up). */
  withButtons(record: InteractionRecord): DMessage | undefined {
    return [record.original, ...record.followUps].find((m) => m?.components.length);
  }

  isEphemeral(m: DMessage | undefined): boolean {
    return Boolean((m?.flags ?? 0) & EPHEMERAL);
  }
}
