import { once } from "node:events";
import {
  AttachmentBuilder,
  Client,
  DiscordAPIError,
  Events,
  GatewayCloseCodes,
  GatewayIntentBits,
  MessageFlags,
  PermissionFlagsBits,
  PermissionsBitField,
  Routes,
  type AutocompleteInteraction,
  type ButtonInteraction,
  type ChatInputCommandInteraction,
  type Interaction,
} from "discord.js";
import type { ChatUser, CommandCall, CommandReply, PlatformHealth } from "../types.js";
import type { ChatHost } from "../host.js";
import type { MessageRef } from "../confirmations.js";
import { NOTICE_LABEL, type Notice } from "../notifier.js";
import type { ChatPlatform } from "../platform.js";
import { DISCORD_MAX, escapeDiscord, splitMessage, truncate } from "../render.js";
import { wakeableSleep } from "../../sleep.js";
import type { ChatServices } from "../services.js";
import { commandLine, slashCommands, symbolChoices } from "./slashCommands.js";

export interface DiscordOptions {
  token: string;
  /** Found from the gateway's READY when unset. */
  appId?: string;
  /** Servers to register the slash commands in; none: global commands (slower to appear). */
  guildIds: string[];
  /** The oversight channel that receives notices. */
  channelId?: string;
  /** REST API base, e.g. https://discord.com/api; the gateway address comes from it. */
  apiUrl?: string;
  /** Waits before logging in again after a gateway close discord.js gives up on: doubling up to `maxMs`. */
  retry?: { firstMs: number; maxMs: number };
  /** Notices held while the client is not ready yet; the oldest go first past this. */
  queueMax?: number;
}

/** Gateway closes discord.js does not recover from, and what to fix when retrying cannot help. */
const NEEDS_A_FIX: Partial<Record<number, string>> = {
  [GatewayCloseCodes.AuthenticationFailed]: "Discord rejected the bot token (gateway close 4004, Authentication failed): reset the token in the Discord Developer Portal (Bot, Reset Token) and set DISCORD_BOT_TOKEN",
  [GatewayCloseCodes.DisallowedIntents]: "Discord refused the gateway intents the bot asks for (gateway close 4014, Disallowed intents): turn them on in the Discord Developer Portal (Bot, Privileged Gateway Intents)",
};
const GIVEN_UP = new Set<number>([
  GatewayCloseCodes.AuthenticationFailed,
  GatewayCloseCodes.InvalidShard,
  GatewayCloseCodes.ShardingRequired,
  GatewayCloseCodes.InvalidAPIVersion,
  GatewayCloseCodes.InvalidIntents,
  GatewayCloseCodes.DisallowedIntents,
]);

// Discord's JSON error codes this adapter reacts to (discord-api-types RESTJSONErrorCodes).
const UNKNOWN_CHANNEL = 10003;
const UNKNOWN_WEBHOOK = 10015;
const MISSING_ACCESS = 50001;
const MISSING_PERMISSIONS = 50013;
const INVALID_WEBHOOK_TOKEN = 50027;
/** The interaction is gone: not acknowledged within 3 s, or its token is unknown. */
const UNKNOWN_INTERACTION = 10062;
/** Someone acknowledged it first: another process on the same bot token (two frontends overlapping), or a repeat here. */
const ALREADY_ACKNOWLEDGED = 40060;

const codeOf = (err: unknown) => (err instanceof DiscordAPIError ? Number(err.code) : undefined);
const apiError = (err: unknown) => (err instanceof DiscordAPIError ? `${err.message} (${err.code}, HTTP ${err.status})` : String(err));

/** What the bot can do in the alert channel, as checked at startup (and again when it fails). */
interface AlertChannel {
  post: boolean;
  files: boolean;
  checkedAt: number;
}

// Discord's message flag for "no push notification" (a silent message).
const SUPPRESS_NOTIFICATIONS = 1 << 12;
const BUTTON_STYLE = { primary: 1, secondary: 2, danger: 4 } as const;
const NO_MENTIONS = { parse: [] as never[] };

const measure = (s: string) => escapeDiscord(s).length;

function components(buttons: CommandReply["buttons"]) {
  return (buttons ?? []).map((row) => ({
    type: 1,
    components: row.map((b) => ({ type: 2, style: BUTTON_STYLE[b.style ?? "secondary"], label: b.label.slice(0, 80), custom_id: b.action })),
  }));
}

/**
 * Discord, through discord.js: slash commands with typed options registered in the configured
 * servers, answered within Discord's 3 seconds (a deferred reply, edited when the result is
 * ready), personal output only to the person who asked. Every command is the registry's.
 */
export class DiscordChat implements ChatPlatform {
  readonly name = "discord";
  private current: Client;
  private readonly inFlight = new Set<Promise<unknown>>();
  private unwatchSymbols: (() => void) | undefined;
  private readonly chat: ChatServices;
  private appId: string | undefined;
  /** Notices are posted once start() is through; until then they wait here, in order. */
  private live = false;
  private stopping = false;
  private readonly queue: Notice[] = [];
  private flushing: Promise<void> | undefined;
  /** Notices the alert channel could not take (it is unusable); /status and /metrics show the count. */
  undelivered = 0;
  private channel: AlertChannel | undefined;
  /** What is wrong, by what it is about (a server, the alert channel): one notice per new problem. */
  private readonly problems = new Map<string, string>();
  private down: { since: number; reason: string } | undefined;
  private startProblem: string | undefined;
  /** Messages whose button press is being answered: the press's own interaction edits them. */
  private readonly pressing = new Set<string>();
  private retryWaitMs: number | undefined;
  private wakeRetry: (() => void) | undefined;

  constructor(
    private readonly app: ChatHost,
    private readonly opts: DiscordOptions,
  ) {
    this.chat = app.chat;
    this.current = this.makeClient();
  }

  /** The discord.js client now (a new one after a gateway close it would not recover from). */
  get client(): Client {
    return this.current;
  }

  private makeClient(): Client {
    const client = new Client({
      intents: [GatewayIntentBits.Guilds],
      // discord.js's REST queue is the pacer: it follows the X-RateLimit-* buckets Discord sends
      // (waiting before a request would exceed one) and waits out a 429's retry_after, global or not.
      rest: { ...(this.opts.apiUrl ? { api: this.opts.apiUrl } : {}) },
      allowedMentions: NO_MENTIONS,
    });
    const app = this.app;
    client.on(Events.InteractionCreate, (i) => this.track(this.onInteraction(i)));
    client.on(Events.Error, (err) => app.log.error("discord client", app.redact(String(err))));
    client.on(Events.ShardDisconnect, (ev) => this.onGatewayClosed(client, ev.code));
    client.on(Events.ClientReady, () => this.gatewayUp());
    client.rest.on("rateLimited", (info) => app.log.warn(`Discord rate limit on ${info.method} ${info.route}: retrying in ${info.retryAfter} ms`));
    return client;
  }

  private track(p: Promise<unknown>): void {
    const done = p.catch((err: unknown) => this.app.log.error("discord handler failed", this.app.redact(String(err))));
    this.inFlight.add(done);
    void done.finally(() => this.inFlight.delete(done));
  }

  async idle(): Promise<void> {
    while (this.inFlight.size > 0) await Promise.allSettled([...this.inFlight]);
  }

  async start(): Promise<void> {
    await this.connect();
    this.appId = this.opts.appId ?? this.client.application?.id;
    if (!this.appId) throw new Error("Discord: no application id (set DISCORD_APP_ID)");
    await this.registerCommands();
    // The symbol options list the watched symbols as choices: a /symbols change registers them again.
    this.unwatchSymbols = this.app.onSymbolsChanged?.(() => {
      const again = this.registerCommands().catch((err: unknown) => this.app.log.warn("Discord: registering the slash commands again after a /symbols change", err));
      this.inFlight.add(again);
      void again.finally(() => this.inFlight.delete(again));
    });
    await this.checkAlertChannel();
    this.chat.addEditor("discord", (ref, text) => this.edit(ref, text));
    this.live = true;
    this.flush();
  }

  /**
   * Logs in and waits for READY. A gateway close discord.js gives up on either needs a fix (a bad
   * token, disallowed intents: start fails, saying what to fix) or is worth another try later.
   */
  private async connect(): Promise<void> {
    const { firstMs, maxMs } = this.opts.retry ?? { firstMs: 5000, maxMs: 300_000 };
    for (;;) {
      const client = this.client;
      const closed = new Promise<number>((r) => client.once(Events.ShardDisconnect, (ev) => r(ev.code)));
      const outcome = await Promise.race([
        once(client, Events.ClientReady).then(() => undefined),
        closed,
        client.login(this.opts.token).then(() => new Promise<never>(() => {})),
      ]);
      if (outcome === undefined) return;
      const fix = NEEDS_A_FIX[outcome];
      await client.destroy().catch(() => {});
      if (fix) throw new Error(fix);
      if (this.stopping) throw new Error("Discord: stopped while connecting");
      const wait = this.retryWaitMs ?? firstMs;
      this.retryWaitMs = Math.min(maxMs, wait * 2);
      await this.sleep(wait);
      if (this.stopping) throw new Error("Discord: stopped while connecting");
      this.current = this.makeClient();
    }
  }

  private sleep(ms: number): Promise<void> {
    return wakeableSleep(ms, (wake) => (this.wakeRetry = wake));
  }

  /** discord.js says only a debug line here and stops: slash commands would be dead. */
  private onGatewayClosed(client: Client, code: number): void {
    if (this.stopping || client !== this.current || !GIVEN_UP.has(code)) return;
    const fix = NEEDS_A_FIX[code];
    const reason = fix ?? `the gateway closed with ${code} (${GatewayCloseCodes[code] ?? "unknown"}), which discord.js does not recover from; logging in again`;
    this.app.log.error(`Discord: ${reason}`);
    if (!this.down) {
      this.down = { since: Date.now(), reason };
      void this.app.notifier.notify({ type: "chat-down", platform: "discord", since: this.down.since, reason });
    }
    // During start() connect() retries; after it, a fresh client logs in here.
    if (this.live && !fix) {
      this.track(
        (async () => {
          await client.destroy().catch(() => {});
          this.current = this.makeClient();
          await this.connect();
        })(),
      );
    }
  }

  private gatewayUp(): void {
    this.retryWaitMs = undefined;
    const down = this.down;
    if (!down) return;
    this.down = undefined;
    const downMs = Date.now() - down.since;
    this.app.log.info(`Discord: the gateway is back after ${Math.round(downMs / 1000)} s`);
    void this.app.notifier.notify({ type: "chat-up", platform: "discord", since: down.since, downMs });
  }

  /**
   * Each server on its own: one the bot is not in (403 Missing Access) must not cost the others
   * their commands. Then the product's commands come out of the scope not used now (global when
   * registering per server, and the other servers when global, or a server taken out of
   * DISCORD_GUILD_IDS), or people would see every command twice, the stale copy among them.
   */
  private async registerCommands(): Promise<void> {
    const global = this.opts.guildIds.length === 0;
    const body = slashCommands(this.app.commands.list(), this.app.symbols, { global });
    if (global) {
      await this.client.rest.put(Routes.applicationCommands(this.appId!), { body }).then(
        () => this.clearProblem("commands"),
        (err: unknown) => this.problem("commands", `could not register the global slash commands: ${apiError(err)}`),
      );
    }
    for (const guild of this.opts.guildIds) {
      try {
        await this.client.rest.put(Routes.applicationGuildCommands(this.appId!, guild), { body });
        this.clearProblem(`guild:${guild}`);
      } catch (err) {
        const why =
          codeOf(err) === MISSING_ACCESS
            ? "Missing Access (50001): the bot is not in that server, or was invited without the applications.commands scope. Invite it with the bot and applications.commands scopes, or take the id out of DISCORD_GUILD_IDS"
            : apiError(err);
        this.problem(`guild:${guild}`, `no slash commands in server ${guild}: ${why}`);
      }
    }
    const ours = new Set(body.map((c) => c.name));
    if (!global) await this.removeStale(Routes.applicationCommands(this.appId!), ours, "the global commands");
    for (const guild of this.client.guilds.cache.keys()) {
      if (!this.opts.guildIds.includes(guild)) await this.removeStale(Routes.applicationGuildCommands(this.appId!, guild), ours, `server ${guild}`);
    }
  }

  /** Deletes the product's commands (by name) registered at `route`; other commands there are left alone. */
  private async removeStale(route: `/${string}`, ours: Set<string>, where: string): Promise<void> {
    try {
      const there = (await this.client.rest.get(route)) as { id: string; name: string }[];
      const stale = there.filter((c) => ours.has(c.name));
      for (const c of stale) await this.client.rest.delete(`${route}/${c.id}`);
      if (stale.length) this.app.log.info(`Discord: removed ${stale.length} slash command(s) left in ${where} from an earlier registration (they are registered ${this.opts.guildIds.length ? "per server" : "globally"} now)`);
    } catch (err) {
      this.app.log.warn(`Discord: could not check ${where} for slash commands left from an earlier registration; people may see two of each there`, this.app.redact(apiError(err)));
    }
  }

  /** Whether alerts and approvals can be posted, and with pictures; checked, never assumed. */
  private async checkAlertChannel(): Promise<void> {
    const id = this.opts.channelId;
    if (!id) return;
    const state: AlertChannel = { post: false, files: false, checkedAt: Date.now() };
    this.channel = state;
    const cannot = (why: string) => this.problem("channel", `cannot post alerts in channel ${id}: ${why}. Alerts and approvals reach the other platforms only.`);
    let channel;
    try {
      channel = await this.client.channels.fetch(id, { force: true });
    } catch (err) {
      const code = codeOf(err);
      return cannot(
        code === UNKNOWN_CHANNEL
          ? "Unknown Channel (10003): no channel has that id; check DISCORD_CHANNEL_ID"
          : code === MISSING_ACCESS
            ? "Missing Access (50001): the bot cannot see that channel (or is not in its server); give its role View Channel there"
            : apiError(err),
      );
    }
    if (!channel || !channel.isTextBased()) return cannot("it is not a text channel");
    if (channel.isDMBased()) {
      Object.assign(state, { post: true, files: true });
      return this.clearProblem("channel");
    }
    let perms: Readonly<PermissionsBitField> | null;
    try {
      perms = channel.permissionsFor(await channel.guild.members.fetchMe());
    } catch (err) {
      return cannot(`its permissions could not be read (${apiError(err)})`);
    }
    const send = channel.isThread() ? PermissionFlagsBits.SendMessagesInThreads : PermissionFlagsBits.SendMessages;
    const missing = Object.entries({ "View Channel": PermissionFlagsBits.ViewChannel, [channel.isThread() ? "Send Messages in Threads" : "Send Messages"]: send })
      .filter(([, bit]) => !perms?.has(bit))
      .map(([name]) => name);
    if (missing.length) return cannot(`Missing Permissions (50013): the bot lacks ${missing.join(" and ")} in #${channel.name}`);
    state.post = true;
    state.files = Boolean(perms?.has(PermissionFlagsBits.AttachFiles));
    if (!state.files) this.problem("channel", `the bot lacks Attach Files in #${channel.name} (${id}): charts are left out of alerts there, text only. Give its role Attach Files to get them back.`);
    else this.clearProblem("channel");
  }

  /** Logged once as an error and told to the other platforms, each time it is new. */
  private problem(key: string, text: string): void {
    const before = this.problems.get(key);
    this.problems.set(key, text);
    if (before === text) return;
    this.app.log.error(`Discord: ${text}`);
    void this.app.notifier.notify({ type: "chat-problem", platform: "discord", problem: text });
  }

  private clearProblem(key: string): void {
    this.problems.delete(key);
  }

  readyLine(): string {
    const guilds = this.opts.guildIds.length;
    const failed = [...this.problems.keys()].filter((k) => k.startsWith("guild:")).length;
    return `${this.client.user?.tag ?? "bot"} ready, slash commands in ${guilds ? `${guilds - failed} of ${guilds} server(s)` : "every server and DMs (global)"}`;
  }

  /** Set by the registry when start() failed. */
  failedToStart(reason: string): void {
    this.startProblem = reason;
  }

  health(): PlatformHealth {
    const problems = [
      ...(this.startProblem ? [`Discord did not start: ${this.startProblem}`] : []),
      ...(this.down ? [`Discord gateway down for ${Math.round((Date.now() - this.down.since) / 1000)} s: ${this.down.reason}`] : []),
      ...this.problems.values(),
      ...(this.undelivered ? [`Discord: ${this.undelivered} notice(s) could not be posted in the alert channel`] : []),
    ];
    return { ok: problems.length === 0, problems };
  }

  async stop(): Promise<void> {
    this.unwatchSymbols?.();
    this.stopping = true;
    this.wakeRetry?.();
    await this.flushing;
    await this.idle();
    await this.client.destroy();
  }

  private memberRoleIds(i: Interaction): string[] {
    const m = i.member;
    if (!m) return [];
    return Array.isArray(m.roles) ? m.roles : [...m.roles.cache.keys()];
  }

  private async userOf(i: Interaction): Promise<ChatUser | undefined> {
    const role = await this.chat.access.roleOf("discord", i.user.id, this.memberRoleIds(i));
    return role ? { id: i.user.id, name: `@${i.user.username}`, platform: "discord", role } : undefined;
  }

  private where(i: Interaction): string {
    if (!i.guildId) return `discord DM (${i.channelId ?? "?"})`;
    const channel = i.channel && "name" in i.channel ? `#${i.channel.name} ` : "";
    return `discord ${channel}(${i.channelId ?? "?"}) in server ${i.guild?.name ? `"${i.guild.name}" ` : ""}(${i.guildId})`;
  }

  private async onInteraction(i: Interaction): Promise<void> {
    if (i.isChatInputCommand()) return this.onSlash(i);
    if (i.isButton()) return this.onButton(i);
    if (i.isAutocomplete()) return this.onAutocomplete(i);
  }

  /** Past 25 watched markets a symbol option is typed with suggestions (Discord caps choices at 25). */
  private async onAutocomplete(i: AutocompleteInteraction): Promise<void> {
    const focused = i.options.getFocused(true);
    const option = this.app.commands.find(i.commandName)?.options?.find((o) => o.name === focused.name);
    const offered = option?.kind === "symbol" ? symbolChoices(this.app.symbols, String(focused.value)) : [];
    await i.respond(offered.map((b) => ({ name: b, value: b }))).catch((err: unknown) => {
      if (!this.interactionGone(i, err, `suggestions for /${i.commandName}`)) throw err;
    });
  }

  /**
   * Acknowledging failed because Discord no longer takes this interaction: too late (10062), or
   * acknowledged already (40060: another process on the same token got there first). Anything
   * more would fail the same way, or do the work twice: one clear line, and nothing else.
   */
  private interactionGone(i: Interaction, err: unknown, what: string): boolean {
    const code = codeOf(err);
    if (code !== UNKNOWN_INTERACTION && code !== ALREADY_ACKNOWLEDGED) return false;
    const who = `@${i.user.username}`;
    this.app.log.warn(
      code === UNKNOWN_INTERACTION
        ? `Discord: ${what} from ${who} could not be acknowledged: Discord no longer knows the interaction (10062 Unknown interaction: more than 3 s passed since it was sent, a slow or overloaded process). Nothing was run; they see "did not respond" and can try again.`
        : `Discord: ${what} from ${who} was acknowledged already (40060), by another process using this bot token (run one frontend per token) or a repeat here. Nothing was run here: it is answered once.`,
    );
    return true;
  }

  private async onSlash(i: ChatInputCommandInteraction): Promise<void> {
    const command = this.app.commands.find(i.commandName);
    // Discord drops an interaction not acknowledged within 3 s: "thinking" goes out first, before
    // anything that waits on Redis (the role lookup, prepare), so a slow Redis cannot miss it.
    // Whether the answer is private is known from the command alone.
    const personal = Boolean(command?.personal);
    try {
      await i.deferReply(personal ? { flags: MessageFlags.Ephemeral } : {});
    } catch (err) {
      if (this.interactionGone(i, err, `/${i.commandName}`)) return;
      throw err;
    }
    try {
      await this.answerSlash(i, personal);
    } catch (err) {
      // Left as it is, the "thinking" message would end in "did not respond": say it failed instead.
      this.app.log.error(`Discord: /${i.commandName} failed`, this.app.redact(String(err)));
      const said = this.app.redact(err instanceof Error ? err.message : String(err)).slice(0, 300).replace(/[.\s]+$/, "");
      await i.editReply({ content: escapeDiscord(`That failed: ${said}. Nothing more was done; try again.`), components: [], allowedMentions: NO_MENTIONS }).catch(() => {});
    }
  }

  private async answerSlash(i: ChatInputCommandInteraction, personal: boolean): Promise<void> {
    const command = this.app.commands.find(i.commandName);
    const line = command ? commandLine(command, (name) => i.options.get(name)?.value) : `/${i.commandName}`;
    const user = await this.userOf(i);
    const where = this.where(i);
    if (!user) {
      if (command?.mutates) {
        await this.chat.audit.record({ platform: "discord", userId: i.user.id, user: `@${i.user.username}`, role: "none", where, command: line, result: "refused", detail: "not on the allow-list" });
      }
      return this.refuse(i, `Sorry, you are not on this bot's allow-list, so I can't run that. Nothing was changed.\nAn admin can add you with: /grant discord ${i.user.id} viewer`, personal);
    }
    const ctx: CommandCall = {
      user,
      where,
      // Progress is a courtesy: failing to show it must not fail the command.
      progress: async (t) => {
        await i.editReply({ content: escapeDiscord(truncate(t, DISCORD_MAX, measure)), allowedMentions: NO_MENTIONS }).catch((err: unknown) => this.app.log.warn("discord progress", this.app.redact(String(err))));
      },
    };
    const prepared = await this.app.commands.prepare(line, ctx);
    if (!prepared.ok) return this.refuse(i, prepared.reply.text, personal);
    const reply = await this.app.commands.execute(prepared, ctx);
    await this.respond(i, reply, Boolean(personal || reply.ephemeral));
  }

  /**
   * A refusal is for the asker alone. Under a private "thinking" it replaces it; a public one was
   * already shown, so it is edited (the first follow-up of a deferred reply would take its place,
   * public, whatever its flags say), the refusal follows privately, and the public one goes.
   */
  private async refuse(i: ChatInputCommandInteraction, text: string, deferredPrivately: boolean): Promise<void> {
    const content = escapeDiscord(truncate(text, DISCORD_MAX, measure));
    if (deferredPrivately) {
      await i.editReply({ content, allowedMentions: NO_MENTIONS });
      return;
    }
    await i.editReply({ content: "…", allowedMentions: NO_MENTIONS });
    await i.followUp({ content, flags: MessageFlags.Ephemeral, allowedMentions: NO_MENTIONS });
    await i.deleteReply();
  }

  /** Replaces the deferred reply with the answer; what does not fit in 2000 characters follows it. */
  private async respond(i: ChatInputCommandInteraction, reply: CommandReply, ephemeral: boolean): Promise<void> {
    const chunks = splitMessage(reply.text, DISCORD_MAX, measure).map(escapeDiscord);
    const rows = components(reply.buttons);
    const files = [
      ...(reply.image ? [new AttachmentBuilder(Buffer.from(reply.image.png), { name: reply.image.name, description: reply.image.alt.slice(0, 1024) })] : []),
      ...(reply.files ?? []).map((f) => new AttachmentBuilder(Buffer.from(f.data), { name: f.name, description: f.caption.slice(0, 1024) })),
    ];
    let withButtons = "@original";
    for (const [n, content] of chunks.entries()) {
      const last = n === chunks.length - 1;
      const extra = last ? { components: rows, files } : { components: [] };
      if (n === 0) {
        const m = await i.editReply({ content, ...extra, allowedMentions: NO_MENTIONS });
        if (last) withButtons = m.id;
      } else {
        const m = await i.followUp({ content, ...extra, allowedMentions: NO_MENTIONS, ...(ephemeral ? { flags: MessageFlags.Ephemeral } : {}) });
        if (last) withButtons = m.id;
      }
    }
    if (reply.confirmationId) {
      // The interaction's token lasts 15 minutes and a confirmation may wait an hour: a message in
      // the channel can still be edited with the bot's token after that (an ephemeral one cannot).
      await this.chat.confirmations.addRef(reply.confirmationId, {
        platform: "discord",
        messageId: withButtons,
        webhook: { appId: i.applicationId, token: i.token },
        ...(!ephemeral && i.channelId ? { channelId: i.channelId } : {}),
      });
    }
  }

  private async onButton(i: ButtonInteraction): Promise<void> {
    // Acknowledged at once; the message is edited (everywhere it was posted) when the press settles it.
    try {
      await i.deferUpdate();
    } catch (err) {
      // Not acknowledged here: the press is not run here either (another process answered it, or it is too late).
      if (this.interactionGone(i, err, "a button press")) return;
      throw err;
    }
    // This message is edited through the press's own interaction, whose token is fresh: the token
    // of the command that posted it may be past its 15 minutes.
    const pressed = i.message.id;
    this.pressing.add(pressed);
    let out;
    try {
      out = await this.app.commands.press(i.customId, await this.userOf(i), this.where(i));
    } finally {
      this.pressing.delete(pressed);
    }
    if (out.final !== undefined) {
      const body = { content: escapeDiscord(truncate(out.final, DISCORD_MAX, measure)), components: [], allowedMentions: NO_MENTIONS };
      await i.editReply(body).catch(async (err: unknown) => {
        this.app.log.warn("discord: could not edit the pressed message through its interaction; trying the channel", this.app.redact(String(err)));
        if (i.channelId) await this.edit({ platform: "discord", channelId: i.channelId, messageId: pressed }, out.final!);
      });
    }
    if (out.alert) await i.followUp({ content: escapeDiscord(truncate(out.toast, DISCORD_MAX, measure)), flags: MessageFlags.Ephemeral, allowedMentions: NO_MENTIONS });
  }

  private async edit(ref: MessageRef, text: string): Promise<void> {
    if (ref.platform !== "discord" || this.pressing.has(ref.messageId)) return;
    const body = { content: escapeDiscord(truncate(text, DISCORD_MAX, measure)), components: [], allowed_mentions: NO_MENTIONS };
    if (ref.webhook) {
      try {
        await this.client.rest.patch(Routes.webhookMessage(ref.webhook.appId, ref.webhook.token, ref.messageId), { body, auth: false });
        return;
      } catch (err) {
        // 50027: the interaction's 15 minutes are over. The channel copy is edited with the bot's token instead.
        const code = codeOf(err);
        if (!ref.channelId || ref.messageId === "@original" || (code !== INVALID_WEBHOOK_TOKEN && code !== UNKNOWN_WEBHOOK)) throw err;
      }
    }
    if (ref.channelId) await this.client.rest.patch(Routes.channelMessage(ref.channelId, ref.messageId), { body });
  }

  /**
   * A notice for the oversight channel: on, silent or off by kind; trades say when they are
   * simulated. Before the client is ready it waits in a bounded queue and goes out in order.
   */
  async deliver(notice: Notice): Promise<void> {
    if (!this.opts.channelId) return;
    if (this.live && !this.flushing && this.queue.length === 0) return this.post(notice);
    this.queue.push(notice);
    const max = this.opts.queueMax ?? 200;
    if (this.queue.length > max) {
      this.queue.shift();
      this.app.log.warn(`Discord is not ready: more than ${max} notices waiting, the oldest was dropped`);
    }
    if (this.live) this.flush();
  }

  private flush(): void {
    if (this.flushing || this.queue.length === 0) return;
    this.flushing = (async () => {
      while (this.queue.length) {
        const n = this.queue.shift()!;
        await this.post(n).catch((err: unknown) => this.app.log.error("notify via discord", this.app.redact(String(err))));
      }
    })().finally(() => {
      this.flushing = undefined;
      // One may have been queued between the loop's last look and here.
      this.flush();
    });
  }

  private async post(notice: Notice): Promise<void> {
    const channelId = this.opts.channelId!;
    const how = notice.confirmationId ? "on" : this.app.config.chat.notify[notice.kind];
    if (how === "off") return;
    if (this.channel && !this.channel.post) {
      // Fixed permissions are picked up within a minute; until then nothing is sent into a wall.
      if (Date.now() - this.channel.checkedAt > 60_000) await this.checkAlertChannel();
      if (!this.channel.post) {
        // The notice about this very channel went to the other platforms; it is not one more lost.
        const aboutUs = notice.event && "platform" in notice.event && notice.event.platform === "discord";
        if (!aboutUs) this.undelivered++;
        return;
      }
    }
    try {
      await this.postChunks(channelId, notice, how, this.channel?.files === false ? undefined : notice.image);
    } catch (err) {
      const code = codeOf(err);
      if (code === MISSING_PERMISSIONS && notice.image) {
        // Most likely Attach Files: the words matter more than the chart.
        this.problem("channel", `could not attach a chart in channel ${channelId} (${apiError(err)}): alerts there go as text only`);
        if (this.channel) this.channel.files = false;
        return this.postChunks(channelId, notice, how, undefined);
      }
      if (code === MISSING_PERMISSIONS || code === MISSING_ACCESS || code === UNKNOWN_CHANNEL) {
        this.channel = { post: false, files: false, checkedAt: Date.now() };
        this.undelivered++;
        this.problem("channel", `cannot post alerts in channel ${channelId}: ${apiError(err)}. Alerts and approvals reach the other platforms only.`);
        return;
      }
      throw err;
    }
  }

  private async postChunks(channelId: string, notice: Notice, how: "on" | "silent", image: Notice["image"]): Promise<void> {
    // A typed notice says [PAPER] in its own text; a plain trade notice gets the tag here.
    const paper = !notice.event && this.app.mode.trading === "paper" && notice.kind === "trade" && !notice.text.includes("[PAPER]");
    const label = `**${NOTICE_LABEL[notice.kind]}${paper ? " \\[PAPER\\]" : ""}**\n`;
    const text = notice.image && !image ? `${notice.text}\n(${notice.image.alt}: chart left out, the bot may not attach files here)` : notice.text;
    const chunks = splitMessage(text, DISCORD_MAX - label.length, measure).map(escapeDiscord);
    for (const [n, chunk] of chunks.entries()) {
      const last = n === chunks.length - 1;
      const file = last ? image : undefined;
      const sent = (await this.client.rest.post(Routes.channelMessages(channelId), {
        body: {
          content: (n === 0 ? label : "") + chunk,
          flags: how === "silent" ? SUPPRESS_NOTIFICATIONS : 0,
          allowed_mentions: NO_MENTIONS,
          components: last ? components(notice.buttons) : [],
          ...(file ? { attachments: [{ id: 0, filename: file.name, description: file.alt.slice(0, 1024) }] } : {}),
        },
        ...(file ? { files: [{ name: file.name, data: Buffer.from(file.png), contentType: "image/png" }] } : {}),
      })) as { id: string };
      if (last && notice.confirmationId) await this.chat.confirmations.addRef(notice.confirmationId, { platform: "discord", channelId, messageId: sent.id });
    }
  }
}
