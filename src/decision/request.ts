// What asks for a decision, shared by the pipeline (which runs it) and the model layer (which
// answers it), so neither imports the other.
import type { Decision, MarketSymbol } from "../domain/types.js";
import type { DecisionRecord, DecisionTrigger } from "../ledger/ledger.js";

export interface DecideRequest {
  /** Stable across retries of the same job: the ledger and the exchange key on it. */
  decisionId: string;
  symbol: MarketSymbol;
  trigger: DecisionTrigger;
  /** Asked after the model decided and before any order (approval mode). */
  gate?: DecisionGate;
}

/**
 * Returns a record to stop with (saved as the decision's outcome, no order), or undefined to go on
 * to the risk check and the order. Asked again on every retry of the same decision.
 */
export type DecisionGate = (decision: Decision, record: DecisionRecord) => Promise<DecisionRecord | undefined>;
