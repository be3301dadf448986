// How a permit session reads in chat: what it lets the router draw, what was booked and settled on
// it, when it ends, and what bounds it once revoked. Pure.
import { usd } from "../domain/types.js";
import type { SessionBatch, SessionView } from "./permitSessions.js";
import type { RefusedPayment } from "../ledger/ledger.js";

const at = (unixSeconds: number) => `${new Date(unixSeconds * 1000).toISOString().slice(11, 16)} UTC`;
const minutes = (ms: number) => (ms >= 3_600_000 ? `${(ms / 3_600_000).toFixed(1)} h` : `${Math.max(0, Math.round(ms / 60_000))} min`);

/** One session in a line or two. */
export function sessionLine(v: SessionView, now: number): string {
  const left = v.deadline * 1000 - now;
  const state =
    v.status === "revoked" ? (v.revocation?.failed ? `revoked here; on chain usable until ${at(v.deadline)} (the deadline is the bound: ${v.revocation.failed})` : "revoked on chain (nonce used, allowance 0)")
    : v.status === "replaced" ? `replaced (${v.reason ?? "refused"})`
    : left > 0 ? `open, ends in ${minutes(left)} (${at(v.deadline)})`
    : `ended ${at(v.deadline)}`;
  const unsettled = v.bookedMicro - v.settledMicro;
  return `${v.id.slice(0, 8)}: cap ${usd(v.capMicro, 2)} · ${v.calls} call(s) booked ${usd(v.bookedMicro)} · settled ${usd(v.settledMicro)} in ${v.batches} batch(es)${unsettled > 0 ? ` · ${usd(unsettled)} not yet settled` : ""} · ${state}`;
}

/** The open session for /balance and /status, or what there is instead. */
export function openSessionLine(views: SessionView[], now: number): string {
  const open = views.find((v) => v.status === "open" && v.deadline * 1000 > now);
  if (!open) return views.length ? `Permit session: none open (last: ${sessionLine(views[0]!, now)})` : "Permit session: none yet (one is signed with the first paid call)";
  return `Permit session: ${sessionLine(open, now)} · revoke: /session revoke (uses the nonce, allowance 0), else the deadline bounds it`;
}

/** The report's part on permit sessions and refused payments: every session with its batches' transactions. */
export function sessionReport(views: { view: SessionView; batches: SessionBatch[] }[], refused: RefusedPayment[], now: number): string[] {
  const lines: string[] = [];
  if (views.length > 0) {
    lines.push("Permit sessions (the router draws booked calls in batches):");
    for (const { view, batches } of views) {
      lines.push(`  ${sessionLine(view, now)}`);
      for (const b of batches) lines.push(`    batch ${b.transaction}: ${usd(b.micro)} for ${b.calls} call(s)`);
    }
  }
  if (refused.length > 0) {
    const total = refused.reduce((s, r) => s + r.micro, 0);
    const reasons = [...new Set(refused.map((r) => r.reason))].slice(0, 3).join("; ");
    lines.push(`Refused payments: ${refused.length} (${usd(total)} not paid, not booked) — ${reasons}`);
  }
  return lines;
}
