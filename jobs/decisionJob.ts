import type { Notifier } from "../src/chat/notifier.js";
import type { DecideRequest } from "../src/decision/request.js";
import type { AgentMode } from "../src/domain/types.js";
import type { DecisionRecord } from "../src/ledger/ledger.js";
import type { AgentState } from "../src/state/agentState.js";

export interface DecisionJobDeps {
  services: { state: AgentState };
  decide(req: DecideRequest): Promise<DecisionRecord>;
  notifier: Notifier;
  mode: Pick<AgentMode, "trading">;
}

/**
 * A scheduled decision for one symbol. The decision id comes from the job id, which BullMQ keeps
 * across retries: a retried job finds its decision and its order instead of making new ones.
 */
export async function runDecisionJob(app: DecisionJobDeps, symbol: string, jobId: string): Promise<DecisionRecord | undefined> {
  if (await app.services.state.isPaused()) return undefined;
  const record = await app.decide({ decisionId: `sched:${symbol}:${jobId}`, symbol, trigger: "schedule" });
  if (record.outcome === "skipped" && !record.action) return record;
  // Held for approval: the approval request with its buttons was posted instead.
  if (record.outcome === "decided") return record;
  await app.notifier.notify({ type: "decision", record, via: "scheduled", paper: app.mode.trading === "paper" });
  return record;
}
