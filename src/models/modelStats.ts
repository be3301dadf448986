import type { Redis } from "ioredis";
import type { MicroUsdc } from "../domain/types.js";

export interface CallSample {
  time: number;
  ok: boolean;
  latencyMs: number;
  costMicro: MicroUsdc;
  failure?: string;
}

export interface ModelSummary {
  calls: number;
  successRate: number;
  p50Ms: number;
  p95Ms: number;
}

const KEEP = 100;

/** Nearest-rank percentile of an ascending list. */
export function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return 0;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[i]!;
}

export function summarize(samples: CallSample[]): ModelSummary {
  const lat = samples.map((s) => s.latencyMs).sort((a, b) => a - b);
  return {
    calls: samples.length,
    successRate: samples.length ? samples.filter((s) => s.ok).length / samples.length : 1,
    p50Ms: Math.round(percentile(lat, 50)),
    p95Ms: Math.round(percentile(lat, 95)),
  };
}

/**
 * The last calls of each model (for /model: recent success rate and latency), and the price the
 * gateway last asked for each model (the estimate a reservation is made with before the next call).
 */
export class ModelStats {
  constructor(private readonly redis: Redis, private readonly prefix = "router:") {}

  async record(model: string, sample: CallSample): Promise<void> {
    const key = `${this.prefix}calls:${model}`;
    await this.redis.multi().lpush(key, JSON.stringify(sample)).ltrim(key, 0, KEEP - 1).exec();
  }

  async recent(model: string): Promise<CallSample[]> {
    return (await this.redis.lrange(`${this.prefix}calls:${model}`, 0, KEEP - 1)).map((r) => JSON.parse(r) as CallSample);
  }

  async rememberPrice(model: string, micro: MicroUsdc): Promise<void> {
    await this.redis.hset(`${this.prefix}prices`, model, String(micro));
  }

  async lastPrices(): Promise<Record<string, MicroUsdc>> {
    const raw = await this.redis.hgetall(`${this.prefix}prices`);
    return Object.fromEntries(Object.entries(raw).map(([k, v]) => [k, Number(v)]));
  }
}
