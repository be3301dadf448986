import type { Redis } from "ioredis";
import { CHAT_PLATFORM_NAMES, ROLE_RANK, type ChatPlatformName, type Platform, type Role } from "./types.js";
import type { Config } from "../config/config.js";

export const ROLES: readonly Role[] = ["viewer", "trader", "admin"];
export const isRole = (s: string): s is Role => (ROLES as readonly string[]).includes(s);

/** One person's access as the bot sees it, and where it comes from. */
export interface AccessEntry {
  platform: ChatPlatformName;
  id: string;
  role: Role | "revoked";
  source: "config" | "chat";
  by?: string;
  at?: number;
}

interface Override {
  role: Role | "revoked";
  by: string;
  at: number;
}

const highest = (roles: (Role | undefined)[]): Role | undefined =>
  roles.reduce<Role | undefined>((best, r) => (r && (!best || ROLE_RANK[r] > ROLE_RANK[best]) ? r : best), undefined);

/**
 * Who may use the bot, and with which role. The configuration gives the allow-lists (and Discord
 * role mappings); an admin's /grant or /revoke from chat is kept in Redis and wins over them, so
 * it takes effect at once on every process and survives restarts. The console is its owner: admin.
 */
export class AccessControl {
  constructor(
    private readonly redis: Redis,
    private readonly chat: Config["chat"],
    private readonly prefix = "chat:users:",
  ) {}

  private configured(platform: Platform): { id: string; role: Role }[] {
    return platform === "console" ? [] : this.chat[platform].allowedUsers;
  }

  /** The user's role, or undefined when they are not allowed at all. */
  async roleOf(platform: Platform, id: string, discordRoleIds: readonly string[] = []): Promise<Role | undefined> {
    if (platform === "console") return "admin";
    const raw = await this.redis.hget(this.prefix + platform, id);
    if (raw) {
      const o = JSON.parse(raw) as Override;
      return o.role === "revoked" ? undefined : o.role;
    }
    const listed = this.configured(platform).find((u) => u.id === id)?.role;
    const mapped = platform === "discord" ? this.chat.discord.roleMap.filter((m) => discordRoleIds.includes(m.roleId)).map((m) => m.role) : [];
    return highest([listed, ...mapped]);
  }

  /** When an admin last changed this person's access from chat (/grant, /revoke), if ever: links made before it end. */
  async changedAt(platform: Platform, id: string): Promise<number | undefined> {
    if (platform === "console") return undefined;
    const raw = await this.redis.hget(this.prefix + platform, id);
    return raw ? (JSON.parse(raw) as Override).at : undefined;
  }

  async grant(platform: ChatPlatformName, id: string, role: Role | "revoked", by: string, now: number): Promise<void> {
    await this.redis.hset(this.prefix + platform, id, JSON.stringify({ role, by, at: now } satisfies Override));
  }

  /** Everyone with access or a recorded change: the configuration, then what admins changed from chat. */
  async list(): Promise<AccessEntry[]> {
    const out = new Map<string, AccessEntry>();
    for (const platform of CHAT_PLATFORM_NAMES) {
      for (const u of this.configured(platform)) out.set(`${platform}:${u.id}`, { platform, id: u.id, role: u.role, source: "config" });
      for (const [id, raw] of Object.entries(await this.redis.hgetall(this.prefix + platform))) {
        const o = JSON.parse(raw) as Override;
        out.set(`${platform}:${id}`, { platform, id, role: o.role, source: "chat", by: o.by, at: o.at });
      }
    }
    return [...out.values()];
  }

  roleMap(): { roleId: string; role: Role }[] {
    return this.chat.discord.roleMap;
  }
}
