import { usdc } from "../src/chat/format.js";
import { summarize } from "../src/models/modelStats.js";
import { defineCommand, type Needs } from "./types.js";

type ModelArgs = { kind: "list" } | { kind: "policy" } | { kind: "set"; id: string };

const secondsLeft = (until: number, now: number) => `${Math.max(1, Math.ceil((until - now) / 1000))} s left`;

export const model = defineCommand<ModelArgs, Needs<never, "models" | "state" | "clock">>({
  name: "model",
  summary: "List the models with price, state, success rate and latency; choose one (auto: the router picks), or /model policy for selection by policy",
  usage: "/model [NAME|auto|policy]",
  example: "/model offline-engine",
  minRole: "viewer",
  parse(args, { app }) {
    if (args.length === 0) return { ok: true, value: { kind: "list" } };
    if (args.length > 1) return { ok: false, error: "Usage: /model to list, /model NAME to choose (auto: the router picks), /model policy for selection by policy." };
    const word = args[0]!.toLowerCase();
    // Without a router there is no `auto` to pin: the word keeps its older meaning, the default order.
    if (word === "policy" || (word === "auto" && !app.services.models.routerEnabled)) return { ok: true, value: { kind: "policy" } };
    const found = app.services.models.find(args[0]!);
    if (!found) {
      const names = app.services.models.catalogue().map((m) => m.id).join(", ");
      return { ok: false, error: `Unknown model "${args[0]!.slice(0, 60)}". Available: ${names}.` };
    }
    return { ok: true, value: { kind: "set", id: found.id } };
  },
  async run(args, { app, user }) {
    const { state, models, clock } = app.services;
    if (args.kind !== "list" && user.role !== "admin") {
      return { text: "Only an admin can change the model. /model alone lists them.", error: true };
    }
    if (args.kind === "policy") {
      await state.chooseModel(undefined);
      return {
        text: models.routerEnabled
          ? "Model choice reset: each decision picks its model by policy (decision type, urgency, complexity, last confidence); the others follow as fallbacks."
          : `Model choice reset: models are tried in the configured order (${models.chain()[0]!.id} first).`,
      };
    }
    if (args.kind === "set") {
      await state.chooseModel(args.id);
      const entry = models.find(args.id);
      const note = entry?.offered === false ? ` Note: the router's catalogue does not list ${args.id} now; it is skipped until it does, and the fallbacks answer.` : args.id === "auto" ? " The router picks the model for each call (its smart routing)." : "";
      return { text: `Decisions now use ${args.id} first (fallbacks follow).${note} /model policy restores selection by policy.` };
    }

    const chosen = await state.chosenModel();
    const now = clock();
    const rt = models.runtime;
    const lastPrices = rt ? await rt.stats.lastPrices() : {};
    const header = !models.routerEnabled
      ? `Models, in the order they are tried${chosen ? ` (chosen: ${chosen})` : " (default order)"}:`
      : chosen
        ? `Models (chosen: ${chosen}, tried first; /model policy for selection by policy):`
        : "Models (selection by policy: routine scheduled decisions take the cheaper tiers; chat, urgent, complex or unsure decisions the better ones):";
    const lines = [header];
    const listed = models.routerEnabled ? models.catalogue() : models.chain(chosen);
    for (const [i, m] of listed.entries()) {
      if (m.kind === "offline") {
        lines.push(`  ${i + 1}. ${m.id} — ${m.id.startsWith("strategy:") ? "strategy file (STRATEGY)" : "offline engine, deterministic"}, free${models.routerEnabled ? " (last resort)" : ""}`);
        continue;
      }
      const paid = lastPrices[m.id];
      const from = m.priceFrom === "catalogue" ? "router's catalogue" : m.priceFrom === "configured" ? "MODEL_PRICES" : m.priceFrom === "estimate" ? "estimate" : undefined;
      const notes = [from, paid !== undefined && paid !== m.estimateMicro ? `last asked ${usdc(paid)}` : undefined].filter(Boolean);
      const price = m.id.startsWith("local:") ? "free (local model)" : `~${usdc(m.estimateMicro)} per call${notes.length ? ` (${notes.join("; ")})` : ""}`;
      let health = "healthy";
      let recent = "no calls yet";
      if (rt) {
        const b = await rt.breaker.state(m.id, now);
        if (b.state === "open") health = `cooling down (${secondsLeft(b.until, now)}, after ${b.failures} failures)`;
        else if (b.state === "half-open") health = b.probing ? "being probed" : "cool-down over, next call probes it";
        else if (b.failures > 0) health = `healthy (${b.failures} failure${b.failures > 1 ? "s" : ""} in a row)`;
        const s = summarize(await rt.stats.recent(m.id));
        if (s.calls > 0) recent = `last ${s.calls} calls ${(s.successRate * 100).toFixed(0)}% ok, p50 ${s.p50Ms} ms, p95 ${s.p95Ms} ms`;
      }
      const mark = chosen === m.id ? " [chosen]" : "";
      if (m.offered === false) {
        lines.push(`  ${i + 1}. ${m.id}${mark} — not in the router's catalogue now: skipped until it is listed again`);
        continue;
      }
      lines.push(`  ${i + 1}. ${m.id}${mark} — ${m.id === "auto" ? "the router picks per call" : m.tier}, ${price}, ${health}; ${recent}`);
    }
    if (!models.routerEnabled) {
      lines.push("The Dreams Router is not configured: set DREAMS_ROUTER_API_KEY or X402_PRIVATE_KEY and DECISION_MODEL=router to use LLMs.");
    }
    return { text: lines.join("\n") };
  },
});
