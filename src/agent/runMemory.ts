import type { HealthStatus, KeyValueProvider, SetOptions } from "@daydreamsai/core";

/**
 * @daydreamsai/core's memory while decisions run: contexts, the contexts index, context state and
 * working memory, held in this process only. Core saves all of it at every step (the index of every
 * context it knows, each context's state, the working memory with its whole prompt); in Redis that
 * was 85-92 commands and 130-470 KB per decision, for data nothing reads after the run. Nothing
 * here has to survive a restart: an answer already paid for is in the pipeline's ledger record, and
 * the decision's prompt and reply go to the audit record, written once at the end.
 *
 * Values are kept by reference, not copied: core owns them and rewrites them whole on every save.
 */
export class RunMemory implements KeyValueProvider {
  private readonly values = new Map<string, unknown>();

  /** How many keys are held now: back to the index alone once every run is forgotten. */
  get size(): number {
    return this.values.size;
  }

  /** Drops what core kept for these contexts (core's own delete leaves an empty working memory behind). */
  forget(contextIds: readonly string[]): void {
    for (const id of contextIds) {
      this.values.delete(`context:${id}`);
      this.values.delete(`memory:${id}`);
      this.values.delete(`working-memory:${id}`);
    }
  }

  async initialize(): Promise<void> {}
  async close(): Promise<void> {
    this.values.clear();
  }
  async health(): Promise<HealthStatus> {
    return { status: "healthy", message: `${this.values.size} keys in process` };
  }

  async get<T>(key: string): Promise<T | null> {
    return (this.values.get(key) as T | undefined) ?? null;
  }

  // Expiry is ignored: a key lives exactly as long as its run, and forget() ends it.
  async set<T>(key: string, value: T, options?: SetOptions): Promise<void> {
    if (options?.ifNotExists && this.values.has(key)) return;
    this.values.set(key, value);
  }

  async delete(key: string): Promise<boolean> {
    return this.values.delete(key);
  }

  async exists(key: string): Promise<boolean> {
    return this.values.has(key);
  }

  async keys(pattern = "*"): Promise<string[]> {
    const match = globToRegExp(pattern);
    return [...this.values.keys()].filter((k) => match.test(k));
  }

  async count(pattern?: string): Promise<number> {
    return (await this.keys(pattern)).length;
  }

  async *scan(pattern?: string): AsyncIterator<[string, unknown]> {
    for (const key of await this.keys(pattern)) yield [key, this.values.get(key)];
  }

  async getBatch<T>(keys: string[]): Promise<Map<string, T>> {
    const found = new Map<string, T>();
    for (const k of keys) if (this.values.has(k)) found.set(k, this.values.get(k) as T);
    return found;
  }

  async setBatch<T>(entries: Map<string, T>, options?: SetOptions): Promise<void> {
    for (const [k, v] of entries) await this.set(k, v, options);
  }

  async deleteBatch(keys: string[]): Promise<number> {
    let n = 0;
    for (const k of keys) if (this.values.delete(k)) n++;
    return n;
  }
}

function globToRegExp(glob: string): RegExp {
  const body = glob.replace(/[.+^${}()|[\]\\]/g, "\\$&").replace(/\*/g, ".*").replace(/\?/g, ".");
  return new RegExp(`^${body}$`);
}
