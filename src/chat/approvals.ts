import type { DecideRequest, DecisionGate } from "../decision/request.js";
import type { AgentMode, Decision } from "../domain/types.js";
import type { DecisionRecord } from "../ledger/ledger.js";
import { loadPortfolio, type OrderServices } from "../orders/orderPath.js";
import { equity } from "../portfolio/valuation.js";
import { formatDecision, money } from "./format.js";
import { ConfirmationStore, confirmButtons, type PendingAction } from "./confirmations.js";
import type { Notifier } from "./notifier.js";
import type { ChatServices } from "./services.js";

/** What approval mode uses. */
export interface ApprovalHost {
  services: Pick<OrderServices, "exchange" | "portfolio" | "market" | "quote" | "clock">;
  chat: ChatServices;
  notifier: Notifier;
  mode: Pick<AgentMode, "trading">;
  decide(req: DecideRequest): Promise<DecisionRecord>;
}

/** What a decision would trade, in quote currency, at the current price. */
async function notionalOf(app: ApprovalHost, decision: Decision): Promise<number> {
  if (decision.action === "hold") return 0;
  const s = app.services;
  const [portfolio, last] = await Promise.all([loadPortfolio(s), s.market.lastPrice(decision.symbol)]);
  const eq = equity({ ...portfolio, prices: { ...portfolio.prices, [decision.symbol]: last } });
  const held = portfolio.positions.find((p) => p.symbol === decision.symbol);
  const heldValue = (held?.qty ?? 0) * last;
  if (decision.action === "close") return heldValue;
  const asked = (decision.sizePct / 100) * eq;
  return decision.action === "sell" ? Math.min(asked, heldValue) : asked;
}

const clockTime = (t: number) => new Date(t).toISOString().slice(11, 19) + " UTC";
const withNote = (record: DecisionRecord, note: string): string => (record.error ? `${note} (${record.error})` : note);

/**
 * Approval mode. A scheduled decision that would trade more than `aboveUsdt` stops before its
 * order and asks the oversight chats; a trader's Approve runs the same decision again, which then
 * goes on to the risk check and the order. The order keeps the decision's id as its client id, so
 * however often it is approved, retried or re-run, the exchange sees one order. Reject, or no
 * answer within `timeoutMs`, drops it: the decision is recorded with no order.
 */
export function approvalGate(app: ApprovalHost, aboveUsdt: number, timeoutMs: number): DecisionGate {
  const chat = () => app.chat;
  const paper = () => app.mode.trading === "paper";

  const held = (record: DecisionRecord, action: PendingAction | undefined): DecisionRecord => ({
    ...record,
    outcome: "decided",
    error: withNote(record, action ? `Awaiting approval ${action.id} until ${clockTime(action.expiresAt)}: no order yet.` : "Awaiting approval: no order yet."),
  });

  const dropped = (record: DecisionRecord, message: string): DecisionRecord => ({
    ...record,
    outcome: "no-order",
    risk: { outcome: "no-trade", message, rules: [] },
  });

  chat().approvalHandler = async (action, answer) => {
    const record = await app.decide({ decisionId: action.decisionId!, symbol: action.symbol!, trigger: "schedule" });
    if (answer !== "approved") return record.risk?.message ?? "No order.";
    if (record.outcome === "order" || record.outcome === "pending") await app.notifier.notify({ type: "decision", record, via: "approved", paper: paper() });
    return formatDecision(record, { paper: paper() });
  };

  return async (decision, record) => {
    const notional = await notionalOf(app, decision);
    if (notional <= aboveUsdt) return undefined;
    const store = chat().confirmations;

    const claimed = await store.forDecision(record.id);
    if (claimed) {
      const found = await store.get(claimed);
      // Claimed by a run that has not written the request yet: it is still waiting.
      if (!found || found.state === "pending") return held(record, found?.action);
      if (found.state === "confirmed") return undefined;
      if (found.state === "cancelled") return dropped(record, `Rejected by ${found.by ?? "a trader"}: no order.`);
      return dropped(record, `Not approved within ${Math.round(timeoutMs / 1000)} s: dropped, no order.`);
    }

    const id = ConfirmationStore.newId();
    // Two runs of the same decision (a retried job) race here: one request is made, not two.
    if ((await store.claimForDecision(record.id, id)) !== id) return held(record, undefined);
    const quote = app.services.quote;
    const prompt = [
      `Approval needed${paper() ? " [PAPER]" : " [LIVE]"}: this scheduled decision trades about ${money(notional, quote)}, above the ${money(aboveUsdt, quote)} approval limit.`,
      formatDecision({ ...record, outcome: "decided" }, { paper: paper() }),
    ].join("\n");
    const action = await store.create(
      { kind: "approval", line: `approve ${record.symbol} ${decision.action} ~${notional.toFixed(2)} ${quote}`, decisionId: record.id, symbol: record.symbol, pressRole: "trader", prompt },
      timeoutMs,
      id,
    );
    await app.notifier.notify({
      type: "approval-request",
      prompt,
      expiresAt: action.expiresAt,
      buttons: confirmButtons(id, { yes: "Approve", no: "Reject" }),
      confirmationId: id,
    });
    return held(record, action);
  };
}
