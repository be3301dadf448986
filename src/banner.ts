import type { App } from "./app.js";
import { usdc } from "./chat/format.js";
import { platformStates } from "./chat/platforms.js";

/** How every banner ends: the line that says the process is up (tests and benches wait for "Ready:"). */
export function readyLine(kind: "console" | "worker" | "no-console"): string {
  if (kind === "console") return "Ready: type /help for commands, or /decide BTC to see a decision.";
  // A worker (or a frontend with CONSOLE=off) reads no input: telling its reader to type would mislead.
  const what = kind === "worker" ? "this worker takes jobs from the queues" : "chat is served from Telegram and Discord; nothing is read from this terminal";
  return `Ready: ${what}. Ctrl-C or SIGTERM stops it once the work in flight is done.`;
}

const at = (t: number) => `${new Date(t).toISOString().slice(11, 19)} UTC`;

/** When the first scheduled decision comes, as the banner says it (a fresh install waits one interval). */
function firstDecisionText(freshAt: number | undefined, next: number | undefined, role: App["role"]): string {
  const when = freshAt ?? next;
  if (when === undefined) return role === "frontend" ? "when a worker runs (none has scheduled one yet)" : "not scheduled";
  const inMin = Math.max(0, Math.round((when - Date.now()) / 60_000));
  if (freshAt !== undefined) return `${at(when)} (in about ${inMin} min): a first start waits one decision interval, so nothing trades before you have read this (FIRST_DECISION=now starts at once)`;
  return `${at(when)} (in about ${inMin} min)`;
}

/** The startup banner: which parts are offline or real, and that trading is simulated. */
export async function banner(app: App, redisNote: string): Promise<string> {
  const c = app.config;
  const paper = app.mode.trading === "paper";
  const balance = await app.services.balance.getBalance();
  const schedule = await app.schedule();
  const pinned = await app.services.state.chosenModel();
  const chosen = await app.control.source();
  const nextDecision = Math.min(...schedule.filter((s) => s.job === "decide" && s.next !== undefined).map((s) => s.next!));
  const locals = c.router.decisionModel !== "offline" && c.local.url ? c.local.models.map((m) => `local:${m}`).join(", ") : "";
  const free = c.strategy.file ? `strategy ${c.strategy.file} (${app.services.models.freeId}, in its own thread, each answer within ${c.strategy.timeoutMs} ms)` : "offline engine";
  const lines = [
    paper
      ? "Chat-ops trading agent — SIMULATED TRADING (paper exchange). No real money moves."
      : `Chat-ops trading agent — LIVE TRADING on ${app.services.exchange.name}${c.exchange.sandbox ? " (sandbox)" : ""}. Real orders.`,
    `  Role:      ${app.role === "all" ? "all (decisions, monitors and chat in this process)" : app.role === "worker" ? `worker ${app.workerId ?? ""} (decisions, monitors, reconciliation, reports; chat is a frontend's)` : "frontend (chat; decisions run on the workers)"}` +
      (app.scheduleOutcome?.note ? `\n  Note:      ${app.scheduleOutcome.note}` : ""),
    `  Chat:      ${app.role === "worker" ? "none here (the active frontend delivers this worker's notices)" : c.chat.console ? "console (type here)" : "no console (CONSOLE=off)"}` +
      platformStates(c.chat)
        .filter((p) => p.name !== "console")
        .map((p) => `; ${p.label} ${p.off ? `off (${p.off})` : "on"}`)
        .join(""),
    `  Market:    ${app.mode.market}`,
    `  Exchange:  ${paper ? `paper (fee ${(c.exchange.feeRate * 100).toFixed(2)}%, slippage ${c.exchange.slippageBps} bps)` : app.services.exchange.name}`,
    `  Wallet:    ${app.mode.wallet}, balance ${usdc(balance, 2)}`,
    `  Decisions: ${
      app.services.models.routerEnabled
        ? `${c.router.decisionModel === "router" ? `Dreams Router at ${c.router.url} (${c.router.auth === "api-key" || (c.router.auth === "auto" && c.router.apiKey) ? "API key" : `x402 on ${c.router.network}`})` : "no router"}` +
          `${locals ? `${c.router.decisionModel === "router" ? ", then" : ";"} local models ${locals} at ${c.local.url} (free)` : ""}, ` +
          `${pinned ? `${pinned} first (pinned with /model)` : "model chosen per decision by policy (/model to see them)"}, ` +
          `${c.routing.fallback === "hold" ? "hold" : free} when no model can answer`
        : `${free}${c.strategy.file ? "" : " (deterministic, free; set DECISION_MODEL=router with a key or wallet for LLMs, or local with LOCAL_MODELS for free local ones)"}`
    }`,
    `  Research:  ${app.mode.research}`,
    `  Redis:     ${redisNote}`,
    `  Symbols:   ${app.symbols.join(", ")} (${chosen.symbols === "chat" ? "set with /symbols, kept in Redis: SYMBOLS only seeds a first start" : "from SYMBOLS; /symbols changes them"})`,
    `  Schedule:  ${schedule.map((s) => `${s.name} ${s.every}`).join("; ")}`,
    `  First decision: ${firstDecisionText(app.firstDecisionAt, Number.isFinite(nextDecision) ? nextDecision : undefined, app.role)}`,
    readyLine(app.role === "worker" ? "worker" : c.chat.console ? "console" : "no-console"),
  ];
  return lines.join("\n");
}
