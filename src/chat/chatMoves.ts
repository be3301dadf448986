import type { Redis } from "ioredis";
import type { ChatPlatformName } from "./types.js";

/**
 * Chats that moved to a new id: a Telegram group upgraded to a supergroup gets a new id, and the old
 * one answers every post with 400 and the new id. Kept in Redis, so every frontend, and the next
 * start, posts to the new chat at once instead of learning it from a refused notice again.
 */
export class ChatMoves {
  constructor(
    private readonly redis: Redis,
    private readonly prefix = "chat:moved:",
  ) {}

  /** Every move known for the platform: old chat id to new. */
  async all(platform: ChatPlatformName): Promise<Map<string, string>> {
    return new Map(Object.entries(await this.redis.hgetall(this.prefix + platform)));
  }

  async record(platform: ChatPlatformName, from: string, to: string): Promise<void> {
    await this.redis.hset(this.prefix + platform, from, to);
  }
}
