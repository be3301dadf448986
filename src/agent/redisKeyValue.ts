import type { Redis } from "ioredis";
import type { HealthStatus, KeyValueProvider, SetOptions } from "@daydreamsai/core";
import { scanKeys } from "../redis/connection.js";

/**
 * The agent's memory (context state, working memory) kept in Redis, so it survives a restart and
 * every worker process sees the same memory. Values are stored as JSON under `prefix + key`.
 */
export class RedisKeyValueProvider implements KeyValueProvider {
  constructor(
    private readonly redis: Redis,
    private readonly prefix = "agent:memory:",
    /** Working memory of finished decisions is an audit trail, not needed forever. */
    private readonly defaultTtlSeconds = 3 * 24 * 3600,
  ) {}

  private readonly inFlight = new Set<Promise<unknown>>();

  /**
   * Core saves memory in the background after a run resolves; shutdown waits for those writes, and
   * for a quiet spell after them, since on a busy machine the last ones start late.
   */
  async drain(quietMs = 50): Promise<void> {
    for (;;) {
      while (this.inFlight.size > 0) await Promise.allSettled([...this.inFlight]);
      await new Promise((r) => setTimeout(r, quietMs));
      if (this.inFlight.size === 0) return;
    }
  }

  private track<T>(p: Promise<T>): Promise<T> {
    this.inFlight.add(p);
    void p.finally(() => this.inFlight.delete(p)).catch(() => {});
    return p;
  }

  async initialize(): Promise<void> {}
  async close(): Promise<void> {}
  async health(): Promise<HealthStatus> {
    const pong = await this.redis.ping();
    return { status: pong === "PONG" ? "healthy" : "unhealthy", message: pong };
  }

  async get<T>(key: string): Promise<T | null> {
    const raw = await this.track(this.redis.get(this.prefix + key));
    return raw === null ? null : (JSON.parse(raw) as T);
  }

  async set<T>(key: string, value: T, options?: SetOptions): Promise<void> {
    const ttl = options?.ttl ?? this.defaultTtlSeconds;
    const json = JSON.stringify(value ?? null);
    if (options?.ifNotExists) await this.track(this.redis.set(this.prefix + key, json, "EX", ttl, "NX"));
    else await this.track(this.redis.set(this.prefix + key, json, "EX", ttl));
  }

  async delete(key: string): Promise<boolean> {
    return (await this.track(this.redis.del(this.prefix + key))) > 0;
  }

  async exists(key: string): Promise<boolean> {
    return (await this.redis.exists(this.prefix + key)) > 0;
  }

  async keys(pattern = "*"): Promise<string[]> {
    // scanKeys adds the connection's key prefix (REDIS_KEY_PREFIX), which SCAN patterns do not get.
    return (await scanKeys(this.redis, this.prefix + pattern)).map((k) => k.slice(this.prefix.length));
  }

  async count(pattern?: string): Promise<number> {
    return (await this.keys(pattern)).length;
  }

  async *scan(pattern?: string): AsyncIterator<[string, unknown]> {
    for (const key of await this.keys(pattern)) yield [key, await this.get(key)];
  }

  async getBatch<T>(keys: string[]): Promise<Map<string, T>> {
    const result = new Map<string, T>();
    if (keys.length === 0) return result;
    const values = await this.redis.mget(keys.map((k) => this.prefix + k));
    keys.forEach((k, i) => {
      const raw = values[i];
      if (raw != null) result.set(k, JSON.parse(raw) as T);
    });
    return result;
  }

  async setBatch<T>(entries: Map<string, T>, options?: SetOptions): Promise<void> {
    for (const [k, v] of entries) await this.set(k, v, options);
  }

  async deleteBatch(keys: string[]): Promise<number> {
    if (keys.length === 0) return 0;
    return this.redis.del(...keys.map((k) => this.prefix + k));
  }
}
