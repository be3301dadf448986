// The symbols and the decision interval an admin set from chat (/symbols, /interval), kept in
// Redis. Precedence: what is stored here wins over SYMBOLS and DECISION_INTERVAL_SECONDS, which
// are only the first start's defaults (docs/control.md). Every change bumps a version; each
// process compares it (one HGET) before a scheduled decision and every second, and takes the
// stored choice over when it moved.
import type { Redis } from "ioredis";
import type { MarketSymbol } from "../domain/types.js";

export const RUNTIME_SCHEDULE_KEY = "control:schedule";

/** What /symbols and /interval stored; a field absent: the configuration's value applies. */
export interface RuntimeChoice {
  symbols?: MarketSymbol[];
  intervalMs?: number;
  /** Who made the last change, and when (the app's clock). */
  by?: string;
  at?: number;
  version: number;
}

export type ScheduleChange = { symbols?: MarketSymbol[]; intervalMs?: number };

export class RuntimeSchedule {
  constructor(private readonly redis: Redis, private readonly key = RUNTIME_SCHEDULE_KEY) {}

  async read(): Promise<RuntimeChoice> {
    const h = await this.redis.hgetall(this.key);
    return {
      ...(h.symbols ? { symbols: JSON.parse(h.symbols) as MarketSymbol[] } : {}),
      ...(h.intervalMs ? { intervalMs: Number(h.intervalMs) } : {}),
      ...(h.by ? { by: h.by } : {}),
      ...(h.at ? { at: Number(h.at) } : {}),
      version: Number(h.version ?? 0),
    };
  }

  async version(): Promise<number> {
    return Number((await this.redis.hget(this.key, "version")) ?? 0);
  }

  /** Stores a change and bumps the version, in one step; returns the new version. */
  async save(change: ScheduleChange, by: string, at: number): Promise<number> {
    const fields: string[] = ["by", by, "at", String(at)];
    if (change.symbols) fields.push("symbols", JSON.stringify(change.symbols));
    if (change.intervalMs !== undefined) fields.push("intervalMs", String(change.intervalMs));
    const out = await this.redis.multi().hset(this.key, ...fields).hincrby(this.key, "version", 1).exec();
    return Number(out?.[1]?.[1] ?? 0);
  }
}

/** What the app offers /symbols, /interval and /status. */
export interface ScheduleControl {
  symbols(): MarketSymbol[];
  intervalMs(): number;
  /** Where the symbols and the interval in force come from. */
  source(): Promise<{ symbols: "chat" | "config"; interval: "chat" | "config"; by?: string; at?: number; configSymbols: MarketSymbol[]; configIntervalMs: number }>;
  /** Symbols a /symbols add may name: the exchange's markets (or the replay's files). */
  known(): Promise<MarketSymbol[]>;
  /** Stores a change, updates the cluster's job schedulers and this process; the others follow within a second. */
  change(change: ScheduleChange, by: string): Promise<{ version: number; firstDecisionAt: number }>;
  /** Takes over a change another process made, if there is one (one HGET when there is none). */
  sync(): Promise<void>;
}

export const INTERVAL_MIN_MS = 5_000;
export const INTERVAL_MAX_MS = 86_400_000;

/** "15m", "1h", "90s", "2h30m" or a bare number of seconds, in ms; undefined when it is none of these. */
export function parseInterval(text: string): number | undefined {
  const t = text.trim().toLowerCase();
  if (/^\d{1,6}$/.test(t)) return Number(t) * 1000;
  const m = /^(?:(\d{1,3})h)?(?:(\d{1,4})m(?:in)?)?(?:(\d{1,6})s)?$/.exec(t);
  if (!m || (!m[1] && !m[2] && !m[3])) return undefined;
  return (Number(m[1] ?? 0) * 3600 + Number(m[2] ?? 0) * 60 + Number(m[3] ?? 0)) * 1000;
}

/** 900000 → "15 min". */
export function intervalText(ms: number): string {
  if (ms % 3_600_000 === 0) return `${ms / 3_600_000} h`;
  if (ms % 60_000 === 0) return `${ms / 60_000} min`;
  return `${ms / 1000} s`;
}

/** "sol", "SOL/usdt" → "SOL/USDT" (the quote defaults to `quote`); undefined when it is not a symbol's shape. */
export function symbolOf(word: string, quote: string): MarketSymbol | undefined {
  const w = word.trim().toUpperCase();
  if (/^[A-Z0-9]{1,15}$/.test(w)) return `${w}/${quote}`;
  if (/^[A-Z0-9]{1,15}\/[A-Z0-9]{1,10}$/.test(w)) return w;
  return undefined;
}
