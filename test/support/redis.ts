import { Redis } from "ioredis";

let db = 0;
/**
 * A Redis connection for one test file. Each call picks the next logical database (per worker
 * process, offset by the worker id) and flushes it, so test files never see each other's keys.
 */
export async function testRedis(): Promise<Redis> {
  const url = process.env.TEST_REDIS_URL ?? "redis://127.0.0.1:6379";
  const worker = Number(process.env.VITEST_POOL_ID ?? process.env.VITEST_WORKER_ID ?? 1);
  const index = ((worker % 4) * 4 + (db++ % 4)) % 16;
  const redis = new Redis(url, { db: index, maxRetriesPerRequest: null });
  await redis.flushdb();
  return redis;
}
