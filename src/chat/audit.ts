import type { Redis } from "ioredis";
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

  async record(e: Omit<AuditEntry, "time">): Promise<void> {
    const entry: AuditEntry = { time: this.clock(), ...e, detail: e.detail.split("\n")[0]!.slice(0, 200), command: e.command.slice(0, 200) };
    await this.redis.multi().lpush(this.key, JSON.stringify(entry)).ltrim(this.key, 0, KEEP - 1).exec();
  }

  async recent(limit: number): Promise<AuditEntry[]> {
    return (await this.redis.lrange(this.key, 0, limit - 1)).map((r) => JSON.parse(r) as AuditEntry);
  }
}
