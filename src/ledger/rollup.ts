import type { Redis } from "ioredis";
import type { ArchiveLine, LedgerArchive } from "./archive.js";
import { aggregateDay, mergeDays } from "./dayAggregate.js";
import { dayKey, ledgerKeys, monthKey, type ChargeRecord, type DayAggregate, type DecisionRecord } from "./ledger.js";

const DAY_MS = 86_400_000;

export interface RollupResult {
  /** The days rolled up in this run (UTC, oldest first). */
  days: string[];
  decisions: number;
  charges: number;
}

/** The start of the first UTC day the retention keeps in detail: `days` days before today's start. */
export function retentionCutoff(now: number, days: number): number {
  if (!Number.isInteger(days) || days < 1) throw new Error(`retention must be a whole number of days of at least 1, got ${days}`);
  return Math.floor(now / DAY_MS) * DAY_MS - days * DAY_MS;
}

/**
 * Moves the ledger's entries of whole UTC days before a cutoff out of Redis: each day is written
 * to the archive (and synced) first, then, in one MULTI, its aggregate is stored and its entries
 * deleted. A crash between the two leaves the entries in Redis and a second copy in the archive at
 * worst; never a loss, and never a day counted both in detail and in its aggregate.
 */
export class LedgerRollup {
  private readonly keys: ReturnType<typeof ledgerKeys>;

  constructor(
    private readonly redis: Redis,
    private readonly archive: LedgerArchive,
    prefix = "ledger:",
    /** Entries read (and deleted) per Redis round trip, so a busy day does not make one huge reply. */
    private readonly batch = 2_000,
  ) {
    this.keys = ledgerKeys(prefix);
  }

  /** Rolls up every day that ends at or before `cutoff` (a UTC day start) and still has entries. */
  async run(cutoff: number): Promise<RollupResult> {
    if (cutoff % DAY_MS !== 0) throw new Error("the rollup cutoff must be the start of a UTC day");
    const result: RollupResult = { days: [], decisions: 0, charges: 0 };
    // Its own connection: WATCH holds only on a connection no one else runs MULTI/EXEC on.
    const conn = this.redis.duplicate();
    // Its failures reach the commands of this run, which fail the job; without a listener ioredis prints a stack.
    conn.on("error", () => {});
    try {
      await this.checkArchive(conn);
      for (;;) {
        const start = await this.oldestDayBefore(conn, cutoff);
        if (start === undefined) break;
        const rolled = await this.rollDay(conn, start);
        result.days.push(dayKey(start));
        result.decisions += rolled.decisions;
        result.charges += rolled.charges;
      }
    } finally {
      conn.disconnect();
    }
    return result;
  }

  /**
   * Every rollup of one agent writes to one archive: the first names it in Redis, and a worker
   * whose archive is another (its own folder in a container, a machine without the shared volume)
   * rolls nothing up, so the entries stay in Redis whole and no month is split. The job fails,
   * and is retried, possibly on a worker that reaches the archive.
   */
  private async checkArchive(conn: Redis): Promise<void> {
    if (!this.archive.id) return;
    const mine = await this.archive.id();
    await conn.set(this.keys.archiveId, mine, "NX");
    const theirs = await conn.get(this.keys.archiveId);
    if (theirs !== mine) {
      throw new Error(
        `this worker's ledger archive (${this.archive.where ?? "?"}, id ${mine}) is not the one earlier rollups wrote to (id ${theirs}); ` +
          "nothing was rolled up here, so nothing is split or lost. Point LEDGER_ARCHIVE_DIR at the shared archive (docker compose mounts the ledger-archive volume on every service); " +
          `if that archive is gone for good, delete the Redis key ${this.keys.archiveId} to start a new one`,
      );
    }
  }

  private async oldestDayBefore(conn: Redis, cutoff: number): Promise<number | undefined> {
    const [d, c] = await Promise.all([
      conn.zrangebyscore(this.keys.decisions, "-inf", `(${cutoff}`, "WITHSCORES", "LIMIT", 0, 1),
      conn.zrangebyscore(this.keys.charges, "-inf", `(${cutoff}`, "WITHSCORES", "LIMIT", 0, 1),
    ]);
    const times = [d[1], c[1]].filter((x): x is string => x !== undefined).map(Number);
    return times.length ? Math.floor(Math.min(...times) / DAY_MS) * DAY_MS : undefined;
  }

  private async rollDay(conn: Redis, start: number): Promise<{ decisions: number; charges: number }> {
    const day = dayKey(start);
    const end = `(${start + DAY_MS}`;
    for (let attempt = 1; ; attempt++) {
      // Another rollup finishing this day first changes its aggregate: then this one reads again.
      await conn.watch(this.keys.rollup(day));
      const ids = await conn.zrangebyscore(this.keys.decisions, start, end);
      const chargeRaws = await conn.zrangebyscore(this.keys.charges, start, end);
      const decisions: DecisionRecord[] = [];
      for (let i = 0; i < ids.length; i += this.batch) {
        const raws = await conn.mget(ids.slice(i, i + this.batch).map(this.keys.decision));
        for (const r of raws) if (r !== null) decisions.push(JSON.parse(r) as DecisionRecord);
      }
      const charges = chargeRaws.map((r) => JSON.parse(r) as ChargeRecord);

      const lines = [
        ...decisions.map((record): ArchiveLine => ({ kind: "decision", day, record })),
        ...charges.map((record): ArchiveLine => ({ kind: "charge", day, record })),
      ].map((l) => JSON.stringify(l));
      await this.archive.append(monthKey(start), lines);

      const stored = await conn.get(this.keys.rollup(day));
      const fresh = aggregateDay(day, decisions, charges);
      const aggregate: DayAggregate = stored ? mergeDays(JSON.parse(stored) as DayAggregate, fresh) : fresh;

      const tx = conn.multi().set(this.keys.rollup(day), JSON.stringify(aggregate)).zadd(this.keys.rollups, start, day);
      for (let i = 0; i < ids.length; i += this.batch) {
        const part = ids.slice(i, i + this.batch);
        tx.zrem(this.keys.decisions, ...part).del(...part.map(this.keys.decision));
      }
      for (let i = 0; i < charges.length; i += this.batch) {
        // The exact members read, so a charge booked meanwhile is never deleted unarchived. The
        // "charged" markers go too: they stop a retried job paying twice, and no job retries for weeks.
        tx.zrem(this.keys.charges, ...chargeRaws.slice(i, i + this.batch)).del(...charges.slice(i, i + this.batch).map((c) => this.keys.charged(c.decisionId)));
      }
      if ((await tx.exec()) !== null) return { decisions: ids.length, charges: charges.length };
      if (attempt >= 5) throw new Error(`ledger rollup of ${day}: its aggregate kept changing under it`);
    }
  }
}
