import type { ChargeRecord, DayAggregate, DayPayments, DecisionRecord } from "./ledger.js";
import { receiptLink } from "./report.js";

export function emptyDay(day: string): DayAggregate {
  return {
    day,
    decisions: {
      count: 0,
      byOutcome: {},
      bySymbol: {},
      perModel: {},
      fallbacks: 0,
      freeDecisions: {},
      savers: { cache: { count: 0, savedMicro: 0 }, batch: { count: 0, savedMicro: 0 }, gate: { count: 0, savedMicro: 0 } },
    },
    charges: { count: 0, costMicro: 0, perModel: {}, payments: { settled: 0, pending: 0, failed: 0, links: [] } },
  };
}

const bump = (m: Record<string, number>, k: string, n = 1) => {
  m[k] = (m[k] ?? 0) + n;
};

/** One day's aggregate from its entries (given in time order, as the ledger keeps them). Pure. */
export function aggregateDay(day: string, decisions: DecisionRecord[], charges: ChargeRecord[]): DayAggregate {
  const a = emptyDay(day);
  const d = a.decisions;
  for (const r of decisions) {
    d.count++;
    bump(d.byOutcome, r.outcome);
    bump(d.bySymbol, r.symbol);
    const m = (d.perModel[r.model] ??= { decisions: 0, costMicro: 0 });
    m.decisions++;
    m.costMicro += r.costMicro;
    // The same test as the report's: the first model tried did not answer, or the free behaviour decided.
    const first = r.attempts?.[0];
    if (r.outcome !== "skipped" && ((first && !first.ok) || r.freeBecause)) d.fallbacks++;
    if (r.outcome !== "skipped" && r.freeBecause) bump(d.freeDecisions, r.freeBecause);
    if (r.outcome !== "skipped" && r.saver) {
      d.savers[r.saver].count++;
      d.savers[r.saver].savedMicro += r.savedMicro ?? 0;
    }
  }
  const c = a.charges;
  for (const ch of charges) {
    c.count++;
    c.costMicro += ch.costMicro;
    const m = (c.perModel[ch.model] ??= { count: 0, costMicro: 0 });
    m.count++;
    m.costMicro += ch.costMicro;
    if (ch.receipt && ch.receipt.scheme !== "permit-session") {
      c.payments[ch.receipt.status]++;
      const link = receiptLink(ch.receipt);
      if (link) c.payments.links.push(link);
    }
  }
  c.payments.links = c.payments.links.slice(-3);
  return a;
}

const addCounts = (into: Record<string, number>, from: Record<string, number | undefined>) => {
  for (const [k, n] of Object.entries(from)) bump(into, k, n ?? 0);
};

const mergePayments = (a: DayPayments, b: DayPayments): DayPayments => ({
  settled: a.settled + b.settled,
  pending: a.pending + b.pending,
  failed: a.failed + b.failed,
  links: [...a.links, ...b.links].slice(-3),
});

/**
 * The aggregate of a day rolled up in two goes (`later` holds entries that reached the day after
 * its first rollup). Pure; merging with an empty day gives the same aggregate back.
 */
export function mergeDays(earlier: DayAggregate, later: DayAggregate): DayAggregate {
  const out = structuredClone(earlier);
  const d = out.decisions;
  const l = later.decisions;
  d.count += l.count;
  addCounts(d.byOutcome as Record<string, number>, l.byOutcome);
  addCounts(d.bySymbol, l.bySymbol);
  for (const [model, m] of Object.entries(l.perModel)) {
    const into = (d.perModel[model] ??= { decisions: 0, costMicro: 0 });
    into.decisions += m.decisions;
    into.costMicro += m.costMicro;
  }
  d.fallbacks += l.fallbacks;
  addCounts(d.freeDecisions, l.freeDecisions);
  for (const k of ["cache", "batch", "gate"] as const) {
    d.savers[k].count += l.savers[k].count;
    d.savers[k].savedMicro += l.savers[k].savedMicro;
  }
  const c = out.charges;
  c.count += later.charges.count;
  c.costMicro += later.charges.costMicro;
  for (const [model, m] of Object.entries(later.charges.perModel)) {
    const into = (c.perModel[model] ??= { count: 0, costMicro: 0 });
    into.count += m.count;
    into.costMicro += m.costMicro;
  }
  c.payments = mergePayments(c.payments, later.charges.payments);
  return out;
}
