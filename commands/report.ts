import { usdc } from "../src/chat/format.js";
import { defineCommand, noArgs, type Needs } from "./types.js";

export const report = defineCommand<undefined, Needs<"costReport", "models" | "clock">>({
  name: "report",
  summary: "Today's cost report: decisions, spend against the caps, models (success, latency), fallbacks, savers, projection",
  usage: "/report",
  minRole: "viewer",
  parse: noArgs("/report"),
  async run(_, { app }) {
    const text = await app.costReport();
    const rt = app.services.models.runtime;
    if (!rt || !app.services.models.routerEnabled) return { text };
    const b = await rt.budget.status(app.services.clock());
    const calls = b.reservedTodayMicro - b.sessionsMicro;
    const held = [
      calls > 0 ? `In flight now: ${usdc(calls)} held by payments not yet settled (a refused one is held until its authorization expires).` : "",
      b.sessionsMicro > 0 ? `Held for open permit sessions: ${usdc(b.sessionsMicro)} the router may still draw (counted against the budgets).` : "",
    ].filter(Boolean).map((l) => `\n${l}`).join("");
    return { text: `${text}\nMax price per call: ${usdc(b.caps.maxPerCallMicro)}.${held}` };
  },
});
