import type { Redis } from "ioredis";
import type { HealthStatus, KeyValueProvider, SetOptions } from "@daydreamsai/core";
import { scanKeys } from "../redis/connection.js";

/**
 * A key-value store in Redis for the agent: it holds each decision's audit record (core's own
 * memory stays in process, see RunMemory). Values are stored as JSON under `prefix + key`, each
 * with an expiry (the caller's, or the default).
 */
export class RedisKeyValueProvider implements KeyValueProvider {
  constructor(
    private readonly redis: Redis,
    private readonly prefix = "agent:memory:",
    /** Audit records explain past decisions; they are not needed forever. */
    private readonly defaultTtlSeconds = 3 * 24 * 3600,
  ) {}

  private readonly inFlight = new Set<Promise<unknown>>();

  /** Waits for the writes already started, so the caller can close Redis after them. */
  async drain(): Promise<void> {
    while (this.inFlight.size > 0) await Promise.allSettled([...this.inFlight]);
  }

  /** Writes not yet answered by Redis. */
  get pending(): number {
    return this.inFlight.size;
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
