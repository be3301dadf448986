import { sessionLine, openSessionLine } from "../src/payments/sessionText.js";
import { defineCommand, type Needs } from "./types.js";

type SessionArgs = { kind: "show" } | { kind: "revoke" };

export const session = defineCommand<SessionArgs, Needs<"sessions" | "reconcileChain", "clock">>({
  name: "session",
  summary: "The router's permit sessions: cap, booked, settled, when each ends; /session revoke cancels the open permit on chain",
  usage: "/session [revoke]",
  example: "/session",
  minRole: "viewer",
  mutates: (a) => a.kind === "revoke",
  options: [{ name: "action", description: "revoke: cancel the open permit on chain", kind: "choice", required: false, choices: ["revoke"] }],
  parse(args) {
    if (args.length === 0) return { ok: true, value: { kind: "show" } };
    if (args.length === 1 && args[0]!.toLowerCase() === "revoke") return { ok: true, value: { kind: "revoke" } };
    return { ok: false, error: "Usage: /session to show the permit sessions, /session revoke to cancel the open one." };
  },
  async confirm(args, { app }) {
    if (args.kind !== "revoke" || !app.sessions) return undefined;
    const [latest] = await app.sessions.recent(1);
    if (!latest) return undefined;
    const owed = latest.bookedMicro - latest.settledMicro;
    return (
      `Revoke the router's permit ${latest.id.slice(0, 8)} (cap $${(latest.capMicro / 1e6).toFixed(2)})? The wallet submits it itself and approves 0, so nobody can draw on it again; this costs gas (ETH). ` +
      `Paid model calls stop until the next permit is signed.${owed > 0 ? ` The router has not yet collected $${(owed / 1e6).toFixed(4)} it is owed for calls already made.` : ""}`
    );
  },
  async run(args, { app, user }) {
    const sessions = app.sessions;
    if (!sessions) return { text: "No permit sessions: the router is not paid from a wallet by permit (offline, an API key, or a gateway paid per call)." };
    const now = app.services.clock();
    if (args.kind === "show") {
      // The batches the router drew since the last reconciliation, matched now (the chain's word, not a guess).
      await app.reconcileChain?.().catch(() => undefined);
      const views = await sessions.recent(5);
      return { text: [openSessionLine(views, now), ...(views.length > 1 ? ["Recent:", ...views.map((v) => `  ${sessionLine(v, now)}`)] : [])].join("\n") };
    }
    if (user.role !== "admin") return { text: "Only an admin can revoke the permit. /session alone shows it.", error: true };
    const out = await sessions.revoke();
    if (!out.permit) return { text: `Nothing to revoke: ${out.detail}.` };
    return { text: `Permit ${out.permit.id.slice(0, 8)} revoked: ${out.detail}. The next paid call signs a new permit (pause trading first to stop paying).`, ...(out.onChain ? {} : { error: true }) };
  },
});
