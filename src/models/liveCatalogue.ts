// The router's live catalogue: which models it offers and at what price, read from `GET /v1/models`
// on a schedule and shared through Redis by every process. The shape is OpenRouter's list (the
// Dreams Router is a fork of it): `{data: [{id, pricing: {prompt, completion, request}}]}` in USD
// per token and per call. The router does not publish its exact shape; anything else is read as "no
// price", and a catalogue that cannot be read leaves the last one (or the built-in defaults) in force.
import type { Redis } from "ioredis";
import { z } from "zod";
import { USDC, type MicroUsdc } from "../domain/types.js";

/** What one decision sends and gets back, in tokens: the prompt is ~12 KB, the answer a few hundred tokens. */
export const TYPICAL_CALL = { promptTokens: 3_000, completionTokens: 400 } as const;

export interface OfferedModel {
  id: string;
  /** Expected USDC per decision call at the catalogue's prices, if it names any. */
  priceMicro?: MicroUsdc;
}

export interface CatalogueSnapshot {
  fetchedAt: number;
  models: OfferedModel[];
}

const usdNumber = z.union([z.string(), z.number()]).transform((v) => Number(v)).pipe(z.number().finite().min(0).max(1_000));
const Reply = z.object({
  data: z
    .array(
      z.object({
        id: z.string().min(1).max(120),
        pricing: z.object({ prompt: usdNumber.optional(), completion: usdNumber.optional(), request: usdNumber.optional() }).partial().optional(),
      }).passthrough(),
    )
    .max(2_000),
});

/** A decision call's expected price from per-token and per-call prices. */
export function priceOfCall(p: { prompt?: number; completion?: number; request?: number } | undefined): MicroUsdc | undefined {
  if (!p || (p.prompt === undefined && p.completion === undefined && p.request === undefined)) return undefined;
  const usd = (p.request ?? 0) + (p.prompt ?? 0) * TYPICAL_CALL.promptTokens + (p.completion ?? 0) * TYPICAL_CALL.completionTokens;
  return USDC(usd);
}

export function parseCatalogue(body: unknown, now: number): CatalogueSnapshot | undefined {
  const parsed = Reply.safeParse(body);
  if (!parsed.success) return undefined;
  return {
    fetchedAt: now,
    models: parsed.data.data.map((m) => {
      const price = priceOfCall(m.pricing);
      return { id: m.id, ...(price !== undefined ? { priceMicro: price } : {}) };
    }),
  };
}

const KEY = "router:catalogue";

/** The last catalogue read, in this process and in Redis. */
export class LiveCatalogue {
  private snapshot?: CatalogueSnapshot;
  private loadedAt = 0;

  constructor(
    private readonly redis: Redis,
    private readonly origin: string,
    private readonly clock: () => number,
    private readonly f: typeof fetch = fetch,
  ) {}

  /** The models offered, by id, or undefined when no catalogue was ever read. */
  get current(): CatalogueSnapshot | undefined {
    return this.snapshot;
  }

  /** Reads what another process stored (at start). */
  async load(): Promise<void> {
    this.loadedAt = Date.now();
    const raw = await this.redis.get(KEY);
    if (raw) this.snapshot = JSON.parse(raw) as CatalogueSnapshot;
  }

  /** Picks up, at most once a minute, a catalogue another process read (only one worker runs the refresh job). */
  async sync(): Promise<void> {
    if (Date.now() - this.loadedAt >= 60_000) await this.load();
  }

  /** Reads /v1/models; keeps the last good one when the router does not answer with a catalogue. */
  async refresh(timeoutMs = 8_000): Promise<{ ok: true; models: number } | { ok: false; why: string }> {
    let body: unknown;
    try {
      const res = await this.f(`${this.origin}/v1/models`, { headers: { accept: "application/json" }, signal: AbortSignal.timeout(timeoutMs) });
      if (res.status !== 200) {
        await res.body?.cancel().catch(() => {});
        return { ok: false, why: `GET /v1/models answered HTTP ${res.status}` };
      }
      body = await res.json();
    } catch (err) {
      return { ok: false, why: `GET /v1/models failed (${(err as Error).message.slice(0, 80)})` };
    }
    const snap = parseCatalogue(body, this.clock());
    if (!snap || snap.models.length === 0) return { ok: false, why: "GET /v1/models did not answer with a list of models" };
    this.snapshot = snap;
    await this.redis.set(KEY, JSON.stringify(snap));
    return { ok: true, models: snap.models.length };
  }
}
