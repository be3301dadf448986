import { isRole, ROLES } from "../src/chat/access.js";
import { CHAT_PLATFORM_NAMES, isChatPlatformName, type ChatPlatformName } from "../src/chat/types.js";
import { isUserId, USER_ID_SHAPE } from "../src/domain/chatIds.js";
import { defineCommand, noArgs, type Needs, type Role } from "./types.js";

const PLATFORMS = CHAT_PLATFORM_NAMES;
const platformWords = PLATFORMS.join(" or ");

function readTarget(args: string[], usage: string): { ok: true; platform: ChatPlatformName; id: string } | { ok: false; error: string } {
  const help = `Usage: ${usage}. PLATFORM is ${platformWords}, ID the person's numeric user id (they see it when the bot refuses them).`;
  const platform = args[0]?.toLowerCase();
  if (!platform || !isChatPlatformName(platform)) return { ok: false, error: help };
  const id = args[1];
  if (!id || !isUserId(platform, id)) return { ok: false, error: `"${(id ?? "").slice(0, 30)}" is not a ${platform} user id: ${USER_ID_SHAPE[platform]}. Nothing was changed.` };
  return { ok: true, platform, id };
}

export const users = defineCommand<undefined, Needs<"chat">>({
  name: "users",
  summary: "Who may use the bot, with their roles (from the configuration and from /grant)",
  usage: "/users",
  minRole: "admin",
  personal: true,
  parse: noArgs("/users"),
  async run(_, { app }) {
    const access = app.chat.access;
    const entries = await access.list();
    const lines = ["People with access (a chat change wins over the configuration):"];
    if (entries.length === 0) lines.push(`  nobody yet: set ${PLATFORMS.map((p) => `${p.toUpperCase()}_ALLOWED_USERS`).join(" / ")}, or /grant from here.`);
    for (const e of entries.sort((a, b) => a.platform.localeCompare(b.platform) || a.id.localeCompare(b.id))) {
      const src = e.source === "config" ? "configuration" : `set by ${e.by ?? "?"} on ${new Date(e.at ?? 0).toISOString().slice(0, 10)}`;
      lines.push(`  ${e.platform} ${e.id}: ${e.role} (${src})`);
    }
    for (const m of access.roleMap()) lines.push(`  discord role ${m.roleId}: ${m.role} (DISCORD_ROLE_MAP)`);
    lines.push("Change with /grant PLATFORM ID ROLE or /revoke PLATFORM ID.");
    return { text: lines.join("\n") };
  },
});

const grantUsage = "/grant PLATFORM ID ROLE";

export const grant = defineCommand<{ platform: ChatPlatformName; id: string; role: Role }, Needs<"chat", "clock">>({
  name: "grant",
  summary: "Give someone a role (viewer, trader or admin); takes effect at once",
  usage: grantUsage,
  example: "/grant telegram 123456789 trader",
  minRole: "admin",
  mutates: true,
  options: [
    { name: "platform", description: platformWords, kind: "choice", choices: [...PLATFORMS], required: true },
    { name: "id", description: "Their numeric user id", kind: "string", required: true },
    { name: "role", description: "viewer, trader or admin", kind: "choice", choices: [...ROLES], required: true },
  ],
  parse(args) {
    if (args.length !== 3) return { ok: false, error: `Usage: ${grantUsage}, e.g. /grant telegram 123456789 trader. ROLE is viewer, trader or admin.` };
    const t = readTarget(args, grantUsage);
    if (!t.ok) return t;
    const role = args[2]!.toLowerCase();
    if (!isRole(role)) return { ok: false, error: `"${args[2]!.slice(0, 20)}" is not a role. Use viewer, trader or admin, e.g. /grant telegram 123456789 trader` };
    return { ok: true, value: { platform: t.platform, id: t.id, role } };
  },
  async run({ platform, id, role }, { app, user }) {
    if (platform === user.platform && id === user.id) return { text: "You cannot change your own role (ask another admin): nothing was changed.", error: true };
    await app.chat.access.grant(platform, id, role, user.name, app.services.clock());
    return { text: `${platform} user ${id} is now a ${role}.` };
  },
});

const revokeUsage = "/revoke PLATFORM ID";

export const revoke = defineCommand<{ platform: ChatPlatformName; id: string }, Needs<"chat", "clock">>({
  name: "revoke",
  summary: "Take away someone's access (also over the configuration and Discord roles)",
  usage: revokeUsage,
  example: "/revoke telegram 123456789",
  minRole: "admin",
  mutates: true,
  options: [
    { name: "platform", description: platformWords, kind: "choice", choices: [...PLATFORMS], required: true },
    { name: "id", description: "Their numeric user id", kind: "string", required: true },
  ],
  parse(args) {
    if (args.length !== 2) return { ok: false, error: `Usage: ${revokeUsage}, e.g. /revoke telegram 123456789` };
    const t = readTarget(args, revokeUsage);
    return t.ok ? { ok: true, value: { platform: t.platform, id: t.id } } : t;
  },
  async run({ platform, id }, { app, user }) {
    if (platform === user.platform && id === user.id) return { text: "You cannot revoke yourself (ask another admin): nothing was changed.", error: true };
    await app.chat.access.grant(platform, id, "revoked", user.name, app.services.clock());
    return { text: `${platform} user ${id} has no access any more. /grant gives it back.` };
  },
});
