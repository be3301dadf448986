import { hostname } from "node:os";
import { randomUUID } from "node:crypto";
import type { Redis } from "ioredis";

export const WORKERS_KEY = "cluster:workers";

/**
 * Worker heartbeats: a sorted set of worker ids scored by when each one's heartbeat runs out.
 * A frontend counts the live ones before it sends work to the queue (BullMQ's getWorkers() needs
 * CLIENT LIST, which managed Redis services often refuse), and the scheduler asks whether a worker
 * is alone before it takes the schedule over.
 */
export class WorkerHeartbeat {
  readonly id = `${hostname()}:${process.pid}:${randomUUID().slice(0, 8)}`;
  private timer: NodeJS.Timeout | undefined;

  constructor(private readonly redis: Redis, private readonly everyMs = 2_000, private readonly key = WORKERS_KEY) {}

  async beat(): Promise<void> {
    const now = Date.now();
    await this.redis
      .multi()
      .zadd(this.key, now + this.everyMs * 3, this.id)
      .zremrangebyscore(this.key, "-inf", now)
      .exec();
  }

  async start(): Promise<void> {
    await this.beat();
    this.timer = setInterval(() => void this.beat().catch(() => {}), this.everyMs);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    await this.redis.zrem(this.key, this.id).catch(() => {});
  }
}

/** Workers whose heartbeat has not run out, other than `except`. */
export async function liveWorkers(redis: Redis, except?: string, key = WORKERS_KEY): Promise<string[]> {
  const ids = await redis.zrangebyscore(key, Date.now(), "+inf");
  return except ? ids.filter((id) => id !== except) : ids;
}
