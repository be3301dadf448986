import type { Log } from "../src/log.js";
import { retentionCutoff, type LedgerRollup, type RollupResult } from "../src/ledger/rollup.js";

export interface LedgerRollupDeps {
  services: { clock: () => number };
  rollup: Pick<LedgerRollup, "run">;
  /** LEDGER_RETENTION_DAYS: days kept in detail before today. */
  retentionDays: number;
  log: Pick<Log, "info">;
}

/**
 * Daily: the ledger's entries older than the retention are rolled up into daily aggregates, after
 * they are written to the archive. Running it again the same day finds nothing left to do.
 */
export async function runLedgerRollup(app: LedgerRollupDeps): Promise<RollupResult> {
  const result = await app.rollup.run(retentionCutoff(app.services.clock(), app.retentionDays));
  if (result.days.length > 0) {
    app.log.info(`ledger rollup: ${result.decisions} decisions and ${result.charges} charges of ${result.days.length} day(s) archived, ${result.days[0]} to ${result.days.at(-1)}`);
  }
  return result;
}
