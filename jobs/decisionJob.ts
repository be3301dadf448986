import type { App } from "../src/app.js";
import { formatDecision } from "../src/chat/format.js";
import type { DecisionRecord } from "../src/ledger/ledger.js";

/**
 * A scheduled decision for one symbol. The decision id comes from the job id, which BullMQ keeps
 * across retries: a retried job finds its decision and its order instead of making new ones.
 */
export async function runDecisionJob(app: App, symbol: string, jobId: string): Promise<DecisionRecord | undefined> {
  if (await app.services.state.isPaused()) return undefined;
  const record = await app.decide({ decisionId: `sched:${symbol}:${jobId}`, symbol, trigger: "schedule" });
  if (record.outcome === "skipped" && !record.action) return record;
  // Held for approval: the approval request with its buttons was posted instead.
  if (record.outcome === "decided") return record;
  const kind = record.outcome === "order" ? "trade" : record.outcome === "failed" ? "error" : "decision";
  await app.notifier.notify({ kind, text: `Scheduled decision\n${formatDecision(record, { paper: app.mode.trading === "paper" })}` });
  return record;
}
