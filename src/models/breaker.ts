import type { Redis } from "ioredis";

export type BreakerState =
  | { state: "closed"; failures: number }
  | { state: "open"; until: number; failures: number }
  /** The cool-down is over: the next call is a probe; others skip the model until it reports. */
  | { state: "half-open"; probing: boolean; failures: number };

export interface BreakerSettings {
  /** Consecutive failures that open the breaker. */
  failures: number;
  coolDownMs: number;
  /** How long a probe may take before another caller may probe instead. */
  probeLeaseMs: number;
}

// One hash per model: fails (consecutive), openUntil (0 = never opened), probeUntil.
// allow: 1 = call it (closed, or this caller got the probe), 0 = skip it.
const ALLOW = `
local fails = tonumber(redis.call('HGET', KEYS[1], 'fails') or '0')
local openUntil = tonumber(redis.call('HGET', KEYS[1], 'openUntil') or '0')
local probeUntil = tonumber(redis.call('HGET', KEYS[1], 'probeUntil') or '0')
local now = tonumber(ARGV[1])
if openUntil == 0 then return {1, 'closed', fails} end
if openUntil > now then return {0, 'open', openUntil} end
if probeUntil > now then return {0, 'probing', probeUntil} end
redis.call('HSET', KEYS[1], 'probeUntil', now + tonumber(ARGV[2]))
return {1, 'probe', fails}
`;

// failure: ARGV now, threshold, coolDownMs, immediate (1 = open now, e.g. on 429).
const FAILURE = `
local fails = redis.call('HINCRBY', KEYS[1], 'fails', 1)
local openUntil = tonumber(redis.call('HGET', KEYS[1], 'openUntil') or '0')
local now = tonumber(ARGV[1])
if openUntil > 0 or fails >= tonumber(ARGV[2]) or ARGV[4] == '1' then
  local untilT = now + tonumber(ARGV[3])
  if untilT > openUntil then redis.call('HSET', KEYS[1], 'openUntil', untilT) end
  redis.call('HSET', KEYS[1], 'probeUntil', 0)
  return {1, fails}
end
return {0, fails}
`;

/**
 * A circuit breaker per model, with its state in Redis so every worker and process shares it.
 * After `failures` consecutive failures the model is skipped for the cool-down; then one caller
 * probes it. A success closes the breaker, a failed probe opens it again. Time comes from the
 * caller's clock, so tests and benchmarks can move it.
 */
export class CircuitBreaker {
  constructor(
    private readonly redis: Redis,
    readonly settings: BreakerSettings,
    private readonly prefix = "router:breaker:",
  ) {}

  /** Whether to call the model now; "probe" means this caller tests a model that was cooling down. */
  async allow(model: string, now: number): Promise<{ call: boolean; as: "closed" | "probe" | "open" | "probing"; until?: number }> {
    const [call, as, value] = (await this.redis.eval(ALLOW, 1, this.prefix + model, now, this.settings.probeLeaseMs)) as [number, string, number];
    const state = as as "closed" | "probe" | "open" | "probing";
    return call === 1 ? { call: true, as: state } : { call: false, as: state, until: Number(value) };
  }

  async success(model: string): Promise<void> {
    await this.redis.del(this.prefix + model);
  }

  /** Returns true when this failure opened (or re-opened) the breaker. */
  async failure(model: string, now: number, opts: { coolDownMs?: number; immediate?: boolean } = {}): Promise<boolean> {
    const coolDown = opts.coolDownMs ?? this.settings.coolDownMs;
    const [opened] = (await this.redis.eval(FAILURE, 1, this.prefix + model, now, this.settings.failures, coolDown, opts.immediate ? "1" : "0")) as [number, number];
    return opened === 1;
  }

  async state(model: string, now: number): Promise<BreakerState> {
    const h = await this.redis.hgetall(this.prefix + model);
    const failures = Number(h.fails ?? 0);
    const openUntil = Number(h.openUntil ?? 0);
    if (openUntil === 0) return { state: "closed", failures };
    if (openUntil > now) return { state: "open", until: openUntil, failures };
    return { state: "half-open", probing: Number(h.probeUntil ?? 0) > now, failures };
  }
}
