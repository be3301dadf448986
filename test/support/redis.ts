import { Redis } from "ioredis";

/**
 * A flushed Redis connection for one test file. Test files running at the same time are in
 * different worker processes, so each worker gets its own logical database (0-7; test/support/app.ts
 * uses 8-15). Files in one worker run one after another and may reuse it.
 */
export async function testRedis(): Promise<Redis> {
  const url = process.env.TEST_REDIS_URL ?? "redis://127.0.0.1:6379";
  const worker = Number(process.env.VITEST_POOL_ID ?? process.env.VITEST_WORKER_ID ?? 1);
  const index = worker % 8;
  const redis = new Redis(url, { db: index, maxRetriesPerRequest: null });
  await redis.flushdb();
  return redis;
}
