import type { Redis } from "ioredis";
import { inert } from "../domain/inertText.js";
import type { Platform, Role } from "./types.js";

export type AuditResult = "ok" | "failed" | "refused" | "asked" | "confirmed" | "cancelled" | "expired";

/** One state-changing command (or an attempt at one): who, where, what, and how it ended. */
export interface AuditEntry {
  time: number;
  platform: Platform;
  userId: string;
  user: string;
  role: Role | "none";
  where: string;
  command: string;
  result: AuditResult;
  detail: string;
}

const KEEP = 10_000;

/** The audit log in Redis, newest first, capped at the last 10,000 entries. */
export class AuditLog {
  constructor(
    private readonly redis: Redis,
    private readonly clock: () => number,
    private readonly key = "audit:log",
  ) {}

  /**
   * Names, ids, places and command lines come from outside (a stranger's Telegram display name, a
   * group's title): each is kept on one line with its control characters made visible, so showing
   * the log (/audit) can never drive the reader's terminal.
   */
  async record(e: Omit<AuditEntry, "time">): Promise<void> {
    const entry: AuditEntry = {
      time: this.clock(),
      ...e,
      user: inert(e.user).slice(0, 100),
      userId: inert(e.userId).slice(0, 40),
      where: inert(e.where).slice(0, 200),
      detail: inert(e.detail.split("\n")[0]!).slice(0, 200),
      command: inert(e.command).slice(0, 200),
    };
    await this.redis.multi().lpush(this.key, JSON.stringify(entry)).ltrim(this.key, 0, KEEP - 1).exec();
  }

  async recent(limit: number): Promise<AuditEntry[]> {
    return (await this.redis.lrange(this.key, 0, limit - 1)).map((r) => JSON.parse(r) as AuditEntry);
  }
}
