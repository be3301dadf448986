import { defineCommand, type Needs } from "./types.js";

const usage = "/audit [N]";

export const audit = defineCommand<number, Needs<"chat">>({
  name: "audit",
  summary: "The audit log: who changed what, where, and how it ended (newest first)",
  usage,
  example: "/audit 20",
  minRole: "admin",
  personal: true,
  options: [{ name: "count", description: "How many entries, 1 to 50 (default 10)", kind: "number", required: false, min: 1, max: 50 }],
  parse(args) {
    if (args.length === 0) return { ok: true, value: 10 };
    const n = Number(args[0]);
    if (args.length > 1 || !/^\d+$/.test(args[0]!) || n < 1 || n > 50) return { ok: false, error: `Usage: ${usage}, N from 1 to 50 (default 10), e.g. /audit 20` };
    return { ok: true, value: n };
  },
  async run(n, { app }) {
    const entries = await app.chat.audit.recent(n);
    if (entries.length === 0) return { text: "The audit log is empty: no state-changing command yet." };
    const lines = [`Audit log, last ${entries.length} (newest first):`];
    for (const e of entries) {
      const when = new Date(e.time).toISOString().slice(0, 19).replace("T", " ");
      lines.push(`${when} ${e.user} (${e.platform} ${e.userId}, ${e.role}) in ${e.where}: ${e.command} → ${e.result}${e.detail ? `: ${e.detail}` : ""}`);
    }
    return { text: lines.join("\n") };
  },
});
