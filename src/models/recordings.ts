// Record once, replay free: every real model decision is kept with a content hash of what the model
// was shown, the model, its answer and what it cost. A backtest can then replay a costly run for
// nothing, and get the same trades; recordings travel as JSONL so a team can share one run.
import { createHash } from "node:crypto";
import type { Redis } from "ioredis";
import type { Decision } from "../domain/types.js";
import { validateDecision } from "../decision/schema.js";
import { canonicalJson } from "../domain/canonicalJson.js";

export interface Recording {
  /** sha256 (hex) of the model's input, canonical JSON: see inputHash. */
  inputHash: string;
  model: string;
  answer: Decision;
  /** What the call cost, micro-USDC (1 USDC = 1,000,000). */
  priceMicro: number;
  /** When it was recorded (epoch ms). */
  recordedAt: number;
}

export interface RecordingStore {
  get(inputHash: string, model: string): Promise<Recording | undefined>;
  /** The first recording of an input is kept: a replay must answer what was paid for first. */
  put(r: Recording): Promise<void>;
  all(): Promise<Recording[]>;
}

/**
 * The content hash of what a model is shown for one decision: the DecisionInputs (symbol,
 * indicator snapshot, research, portfolio, limits) without the decision id, which names the job,
 * not the content (nor the candles and time given to strategy files). Pass a rendered prompt string instead where one exists: it hashes as is.
 */
export function inputHash(inputs: object | string): string {
  // The candles and the clock go to strategy files only; the model is shown neither.
  const content = typeof inputs === "string" ? inputs : canonicalJson({ ...(inputs as Record<string, unknown>), decisionId: undefined, candles: undefined, now: undefined });
  return createHash("sha256").update(content).digest("hex");
}

const key = (inputHash: string, model: string) => `${model}\u0000${inputHash}`;

/** Recordings in the process (a backtest's own), loaded from and saved to JSONL. */
export class MemoryRecordings implements RecordingStore {
  private readonly byKey = new Map<string, Recording>();

  constructor(records: Recording[] = []) {
    for (const r of records) void this.put(r);
  }

  async get(hash: string, model: string): Promise<Recording | undefined> {
    return this.byKey.get(key(hash, model));
  }

  async put(r: Recording): Promise<void> {
    const k = key(r.inputHash, r.model);
    if (!this.byKey.has(k)) this.byKey.set(k, r);
  }

  async all(): Promise<Recording[]> {
    return [...this.byKey.values()];
  }

  get size(): number {
    return this.byKey.size;
  }
}

/** Recordings in Redis (live trading's): one hash field per model and input, first write wins. */
export class RedisRecordings implements RecordingStore {
  constructor(private readonly redis: Redis, private readonly hashKey = "recordings") {}

  async get(hash: string, model: string): Promise<Recording | undefined> {
    const raw = await this.redis.hget(this.hashKey, key(hash, model));
    return raw ? (JSON.parse(raw) as Recording) : undefined;
  }

  async put(r: Recording): Promise<void> {
    await this.redis.hsetnx(this.hashKey, key(r.inputHash, r.model), JSON.stringify(r));
  }

  async all(): Promise<Recording[]> {
    return Object.values(await this.redis.hgetall(this.hashKey)).map((raw) => JSON.parse(raw) as Recording);
  }
}

/**
 * The one way a real model decision is recorded, live or in a backtest with real calls. Call it
 * after the answer passed the decision schema and its price is known; failed calls are not
 * recorded (a replay then decides as live would after a failure).
 */
export async function recordModelDecision(
  store: RecordingStore,
  r: { inputHash: string; model: string; answer: Decision; priceMicro: number; recordedAt?: number },
): Promise<Recording> {
  const rec: Recording = { inputHash: r.inputHash, model: r.model, answer: r.answer, priceMicro: Math.round(r.priceMicro), recordedAt: r.recordedAt ?? Date.now() };
  await store.put(rec);
  return rec;
}

/** One recording per line, oldest first. */
export function toJsonl(records: Recording[]): string {
  return [...records].sort((a, b) => a.recordedAt - b.recordedAt).map((r) => JSON.stringify(r)).join("\n") + (records.length ? "\n" : "");
}

/** Reads JSONL recordings; a bad line is an error naming the line and what is wrong, nothing half-read. */
export function fromJsonl(text: string, source = "recordings"): Recording[] {
  const out: Recording[] = [];
  text.split("\n").forEach((line, i) => {
    if (line.trim() === "") return;
    const where = `${source} line ${i + 1}`;
    let v: Partial<Recording>;
    try {
      v = JSON.parse(line) as Partial<Recording>;
    } catch {
      throw new Error(`${where} is not JSON: each line must be one recording, {"inputHash", "model", "answer", "priceMicro", "recordedAt"}`);
    }
    if (typeof v.inputHash !== "string" || !/^[0-9a-f]{64}$/.test(v.inputHash)) throw new Error(`${where}: inputHash must be 64 hex digits (a sha256)`);
    if (typeof v.model !== "string" || v.model === "") throw new Error(`${where}: model must be a model id`);
    if (typeof v.priceMicro !== "number" || !(v.priceMicro >= 0)) throw new Error(`${where}: priceMicro must be a number of micro-USDC, 0 or more`);
    const answer = validateDecision(v.answer);
    if (!answer.ok) throw new Error(`${where}: answer is not a valid decision (${answer.error})`);
    out.push({ inputHash: v.inputHash, model: v.model, answer: answer.decision, priceMicro: v.priceMicro, recordedAt: typeof v.recordedAt === "number" ? v.recordedAt : 0 });
  });
  return out;
}

export async function exportJsonl(store: RecordingStore): Promise<string> {
  return toJsonl(await store.all());
}

/** Adds the file's recordings to the store (those already there stay); returns how many were read. */
export async function importJsonl(store: RecordingStore, text: string, source?: string): Promise<number> {
  const records = fromJsonl(text, source);
  for (const r of records) await store.put(r);
  return records.length;
}
