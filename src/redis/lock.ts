import { randomUUID } from "node:crypto";
import type { Redis } from "ioredis";

const RELEASE = `if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) else return 0 end`;

/**
 * A mutex in Redis, shared by every worker and process of the agent. The lease expires on its
 * own, so a process that dies while holding it blocks the others for `leaseMs` at most.
 */
export class RedisLock {
  constructor(
    private readonly redis: Redis,
    private readonly key: string,
    private readonly leaseMs = 30_000,
    private readonly waitMs = 60_000,
  ) {}

  async run<T>(fn: () => Promise<T>): Promise<T> {
    const token = randomUUID();
    const deadline = Date.now() + this.waitMs;
    let pauseMs = 5;
    while ((await this.redis.set(this.key, token, "PX", this.leaseMs, "NX")) !== "OK") {
      if (Date.now() > deadline) throw new Error(`timed out after ${this.waitMs} ms waiting for ${this.key}`);
      await new Promise((r) => setTimeout(r, pauseMs));
      pauseMs = Math.min(pauseMs * 2, 100);
    }
    try {
      return await fn();
    } finally {
      await this.redis.eval(RELEASE, 1, this.key, token);
    }
  }
}
