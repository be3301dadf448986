import type { KeyValueProvider } from "@daydreamsai/core";
import type { Decision, MarketSymbol } from "../domain/types.js";

/**
 * What one decision asked the model and what it answered: the one thing the agent writes to the
 * store, once, when the decision is over. Kept for a while to explain a decision, never read back
 * by the agent: a retried decision reuses the answer saved in the pipeline's ledger record.
 */
export interface DecisionAudit {
  decisionId: string;
  symbol: MarketSymbol;
  /** When the decision ended (ms since the epoch, wall clock). */
  time: number;
  modelId: string;
  modelCalls: number;
  /** The prompt as the model received it (core's rendered contexts and instructions). */
  prompt: string;
  /** The model's reply as it came back, before core parsed it. */
  reply: string;
  outcome: { ok: true; decision: Decision } | { ok: false; error: string };
}

export const DEFAULT_AUDIT_TTL_SECONDS = 3 * 24 * 3600;

export const auditKey = (decisionId: string) => `audit:${decisionId}`;

/** The audit record of a decision, or null once it has expired (or was never written). */
export async function readAudit(store: Pick<KeyValueProvider, "get">, decisionId: string): Promise<DecisionAudit | null> {
  return store.get<DecisionAudit>(auditKey(decisionId));
}

/** The text of a language-model prompt, one block per message, for the audit record. */
export function promptText(prompt: readonly { role: string; content: unknown }[]): string {
  const blocks = prompt.map((m) => {
    const text =
      typeof m.content === "string"
        ? m.content
        : Array.isArray(m.content)
          ? m.content.map((p: { type?: string; text?: string }) => (p.type === "text" ? (p.text ?? "") : `[${p.type ?? "part"}]`)).join("")
          : "";
    return prompt.length === 1 ? text : `[${m.role}] ${text}`;
  });
  return blocks.join("\n");
}
