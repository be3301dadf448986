import { usdc } from "../src/chat/format.js";
import { defineCommand } from "./types.js";

type ModelArgs = { kind: "list" } | { kind: "auto" } | { kind: "set"; id: string };

export const model = defineCommand<ModelArgs>({
  name: "model",
  summary: "List the models, or choose the one that decides (/model auto for the default order)",
  usage: "/model [NAME|auto]",
  example: "/model offline-engine",
  minRole: "viewer",
  parse(args, { app }) {
    if (args.length === 0) return { ok: true, value: { kind: "list" } };
    if (args.length > 1) return { ok: false, error: "Usage: /model to list, /model NAME to choose, /model auto for the default order." };
    if (args[0]!.toLowerCase() === "auto") return { ok: true, value: { kind: "auto" } };
    const found = app.services.models.find(args[0]!);
    if (!found) {
      const names = app.services.models.catalogue().map((m) => m.id).join(", ");
      return { ok: false, error: `Unknown model "${args[0]!.slice(0, 60)}". Available: ${names}.` };
    }
    return { ok: true, value: { kind: "set", id: found.id } };
  },
  async run(args, { app, user }) {
    const state = app.services.state;
    if (args.kind !== "list" && user.role !== "admin") {
      return { text: "Only an admin can change the model. /model alone lists them.", error: true };
    }
    if (args.kind === "auto") {
      await state.chooseModel(undefined);
      return { text: `Model choice reset: models are tried in the configured order (${app.services.models.chain()[0]!.id} first).` };
    }
    if (args.kind === "set") {
      await state.chooseModel(args.id);
      return { text: `Decisions now use ${args.id} first (fallbacks follow). /model auto restores the default order.` };
    }
    const chosen = await state.chosenModel();
    const chain = app.services.models.chain(chosen);
    const lines = [`Models, in the order they are tried${chosen ? ` (chosen: ${chosen})` : " (default order)"}:`];
    chain.forEach((m, i) => {
      const price = m.estimateMicro === 0 ? "free" : `~${usdc(m.estimateMicro)} per call`;
      lines.push(`  ${i + 1}. ${m.id} — ${m.kind === "offline" ? "offline engine, deterministic" : "Dreams Router"}, ${price}`);
    });
    if (!app.services.models.routerEnabled) {
      lines.push("The Dreams Router is not configured: set DREAMS_ROUTER_API_KEY or X402_PRIVATE_KEY and DECISION_MODEL=router to use LLMs.");
    }
    return { text: lines.join("\n") };
  },
});
