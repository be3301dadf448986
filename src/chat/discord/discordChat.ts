import { once } from "node:events";
import { AttachmentBuilder, Client, Events, GatewayIntentBits, MessageFlags, Routes, type ButtonInteraction, type ChatInputCommandInteraction, type Interaction } from "discord.js";
import type { ChatUser, CommandCall, CommandReply } from "../types.js";
import type { ChatHost } from "../host.js";
import type { MessageRef } from "../confirmations.js";
import { NOTICE_LABEL, type Notice, type NoticeSink } from "../notifier.js";
import { DISCORD_MAX, escapeDiscord, splitMessage, truncate } from "../render.js";
import type { ChatServices } from "../services.js";
import { commandLine, slashCommands } from "./slashCommands.js";

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
export class DiscordChat implements NoticeSink {
  readonly name = "discord";
  readonly client: Client;
  private readonly inFlight = new Set<Promise<unknown>>();
  private readonly chat: ChatServices;
  private appId: string | undefined;

  constructor(
    private readonly app: ChatHost,
    private readonly opts: DiscordOptions,
  ) {
    this.client = new Client({
      intents: [GatewayIntentBits.Guilds],
      // discord.js's REST queue is the pacer: it follows the X-RateLimit-* buckets Discord sends
      // (waiting before a request would exceed one) and waits out a 429's retry_after, global or not.
      rest: { ...(opts.apiUrl ? { api: opts.apiUrl } : {}) },
      allowedMentions: NO_MENTIONS,
    });
    this.chat = app.chat;
    this.client.on(Events.InteractionCreate, (i) => this.track(this.onInteraction(i)));
    this.client.on(Events.Error, (err) => app.log.error("discord client", app.redact(String(err))));
    this.client.rest.on("rateLimited", (info) => app.log.warn(`Discord rate limit on ${info.method} ${info.route}: retrying in ${info.retryAfter} ms`));
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
    const ready = once(this.client, Events.ClientReady);
    await this.client.login(this.opts.token);
    await ready;
    this.appId = this.opts.appId ?? this.client.application?.id;
    if (!this.appId) throw new Error("Discord: no application id (set DISCORD_APP_ID)");
    const body = slashCommands(this.app.commands.list(), this.app.symbols);
    if (this.opts.guildIds.length === 0) await this.client.rest.put(Routes.applicationCommands(this.appId), { body });
    for (const guild of this.opts.guildIds) await this.client.rest.put(Routes.applicationGuildCommands(this.appId, guild), { body });
    this.chat.addEditor("discord", (ref, text) => this.edit(ref, text));
  }

  async stop(): Promise<void> {
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
  }

  private async onSlash(i: ChatInputCommandInteraction): Promise<void> {
    const command = this.app.commands.find(i.commandName);
    const line = command ? commandLine(command, (name) => i.options.get(name)?.value) : `/${i.commandName}`;
    const user = await this.userOf(i);
    const where = this.where(i);
    if (!user) {
      if (command?.mutates) {
        await this.chat.audit.record({ platform: "discord", userId: i.user.id, user: `@${i.user.username}`, role: "none", where, command: line, result: "refused", detail: "not on the allow-list" });
      }
      await i.reply({ content: `Sorry, you are not on this bot's allow-list, so I can't run that. Nothing was changed.\nAn admin can add you with: /grant discord ${i.user.id} viewer`, flags: MessageFlags.Ephemeral, allowedMentions: NO_MENTIONS });
      return;
    }
    let deferred: Promise<unknown> | undefined;
    const ctx: CommandCall = {
      user,
      where,
      // Progress is a courtesy: failing to show it must not fail the command.
      progress: async (t) => {
        await deferred;
        await i.editReply({ content: escapeDiscord(truncate(t, DISCORD_MAX, measure)), allowedMentions: NO_MENTIONS }).catch((err: unknown) => this.app.log.warn("discord progress", this.app.redact(String(err))));
      },
    };
    const prepared = await this.app.commands.prepare(line, ctx);
    if (!prepared.ok) {
      await i.reply({ content: escapeDiscord(truncate(prepared.reply.text, DISCORD_MAX, measure)), flags: MessageFlags.Ephemeral, allowedMentions: NO_MENTIONS });
      return;
    }
    // Discord drops an interaction not answered within 3 s: say "thinking" now, answer when ready.
    deferred = i.deferReply(prepared.command.personal ? { flags: MessageFlags.Ephemeral } : {});
    await deferred;
    const reply = await this.app.commands.execute(prepared, ctx);
    await this.respond(i, reply, Boolean(prepared.command.personal || reply.ephemeral));
  }

  /** Replaces the deferred reply with the answer; what does not fit in 2000 characters follows it. */
  private async respond(i: ChatInputCommandInteraction, reply: CommandReply, ephemeral: boolean): Promise<void> {
    const chunks = splitMessage(reply.text, DISCORD_MAX, measure).map(escapeDiscord);
    const rows = components(reply.buttons);
    const files = reply.image ? [new AttachmentBuilder(Buffer.from(reply.image.png), { name: reply.image.name, description: reply.image.alt.slice(0, 1024) })] : [];
    let withButtons = "@original";
    for (const [n, content] of chunks.entries()) {
      const last = n === chunks.length - 1;
      const extra = last ? { components: rows, files } : { components: [] };
      if (n === 0) {
        await i.editReply({ content, ...extra, allowedMentions: NO_MENTIONS });
      } else {
        const m = await i.followUp({ content, ...extra, allowedMentions: NO_MENTIONS, ...(ephemeral ? { flags: MessageFlags.Ephemeral } : {}) });
        if (last) withButtons = m.id;
      }
    }
    if (reply.confirmationId) {
      await this.chat.confirmations.addRef(reply.confirmationId, { platform: "discord", messageId: withButtons, webhook: { appId: i.applicationId, token: i.token } });
    }
  }

  private async onButton(i: ButtonInteraction): Promise<void> {
    // Acknowledged at once; the message is edited (everywhere it was posted) when the press settles it.
    await i.deferUpdate();
    const out = await this.app.commands.press(i.customId, await this.userOf(i), this.where(i));
    if (out.alert) await i.followUp({ content: escapeDiscord(truncate(out.toast, DISCORD_MAX, measure)), flags: MessageFlags.Ephemeral, allowedMentions: NO_MENTIONS });
  }

  private async edit(ref: MessageRef, text: string): Promise<void> {
    if (ref.platform !== "discord") return;
    const body = { content: escapeDiscord(truncate(text, DISCORD_MAX, measure)), components: [], allowed_mentions: NO_MENTIONS };
    if (ref.webhook) {
      await this.client.rest.patch(Routes.webhookMessage(ref.webhook.appId, ref.webhook.token, ref.messageId), { body, auth: false });
    } else if (ref.channelId) {
      await this.client.rest.patch(Routes.channelMessage(ref.channelId, ref.messageId), { body });
    }
  }

  /** A notice for the oversight channel: on, silent or off by kind; trades say when they are simulated. */
  async deliver(notice: Notice): Promise<void> {
    const channelId = this.opts.channelId;
    if (!channelId || !this.client.isReady()) return;
    const how = notice.confirmationId ? "on" : this.app.config.chat.notify[notice.kind];
    if (how === "off") return;
    // A typed notice says [PAPER] in its own text; a plain trade notice gets the tag here.
    const paper = !notice.event && this.app.mode.trading === "paper" && notice.kind === "trade" && !notice.text.includes("[PAPER]");
    const label = `**${NOTICE_LABEL[notice.kind]}${paper ? " \\[PAPER\\]" : ""}**\n`;
    const chunks = splitMessage(notice.text, DISCORD_MAX - label.length, measure).map(escapeDiscord);
    for (const [n, chunk] of chunks.entries()) {
      const last = n === chunks.length - 1;
      const image = last ? notice.image : undefined;
      const sent = (await this.client.rest.post(Routes.channelMessages(channelId), {
        body: {
          content: (n === 0 ? label : "") + chunk,
          flags: how === "silent" ? SUPPRESS_NOTIFICATIONS : 0,
          allowed_mentions: NO_MENTIONS,
          components: last ? components(notice.buttons) : [],
          ...(image ? { attachments: [{ id: 0, filename: image.name, description: image.alt.slice(0, 1024) }] } : {}),
        },
        ...(image ? { files: [{ name: image.name, data: Buffer.from(image.png), contentType: "image/png" }] } : {}),
      })) as { id: string };
      if (last && notice.confirmationId) await this.chat.confirmations.addRef(notice.confirmationId, { platform: "discord", channelId, messageId: sent.id });
    }
  }
}
