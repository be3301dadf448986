import type { RiskLimits } from "../src/domain/types.js";
import { boundText, LIMIT_BOUNDS, withinBound } from "../src/risk/bounds.js";
import { crossCheck, loosens } from "../src/risk/limitsStore.js";
import { describeLimits } from "../src/risk/rules.js";
import { defineCommand, type Needs } from "./types.js";

interface LimitSpec {
  key: keyof RiskLimits;
  what: string;
}

// The ranges are the configuration's (src/risk/bounds.ts): what MAX_POSITION_PCT refuses, /limits refuses.
const SPECS: Record<string, LimitSpec> = {
  max_position: { key: "maxPositionPct", what: "largest position, % of equity" },
  max_exposure: { key: "maxExposurePct", what: "largest total exposure, % of equity" },
  max_leverage: { key: "maxLeverage", what: "largest exposure / equity" },
  max_positions: { key: "maxOpenPositions", what: "most positions open at once" },
  daily_loss: { key: "dailyLossLimitPct", what: "daily loss that stops buying, %" },
  stop_loss: { key: "defaultStopLossPct", what: "default stop loss, % below entry" },
  max_stop_loss: { key: "maxStopLossPct", what: "widest stop loss, %" },
  take_profit: { key: "defaultTakeProfitPct", what: "default take profit, % above entry" },
  min_order: { key: "minOrderNotional", what: "smallest order, USDT" },
};

const usage = "/limits [NAME VALUE]";
export const limits = defineCommand<{ name: string; value: number } | undefined, Needs<"limitsStore", "limits">>({
  name: "limits",
  summary: "Show the risk limits, or change one (kept across restarts)",
  usage,
  example: "/limits max_position 5",
  minRole: "admin",
  mutates: (args) => args !== undefined,
  options: [
    { name: "name", description: "The limit to change", kind: "choice", choices: Object.keys(SPECS), required: false },
    { name: "value", description: "Its new value", kind: "number", required: false },
  ],
  // Tightening goes at once; loosening (more risk allowed) asks first, and with APPROVALS=2 a second admin.
  async confirm(args, { app }) {
    if (!args) return undefined;
    await app.limitsStore.refresh(app.services.limits);
    const spec = SPECS[args.name]!;
    const before = app.services.limits[spec.key];
    if (!loosens(spec.key, before, args.value)) return undefined;
    if (crossCheck({ ...app.services.limits, [spec.key]: args.value }) !== undefined) return undefined;
    return `Loosen ${args.name} (${spec.what}) from ${before} to ${args.value}? This allows more risk.`;
  },
  parse(args) {
    const names = Object.keys(SPECS).join(", ");
    if (args.length === 0) return { ok: true, value: undefined };
    if (args.length !== 2) return { ok: false, error: `Usage: ${usage}, e.g. /limits max_position 5. Names: ${names}.` };
    const name = args[0]!.toLowerCase();
    const spec = SPECS[name];
    if (!spec) return { ok: false, error: `Unknown limit "${args[0]!.slice(0, 30)}". Names: ${names}.` };
    const raw = args[1]!;
    const n = Number(raw);
    const bound = LIMIT_BOUNDS[spec.key];
    if (!/^\d+(\.\d+)?$/.test(raw) || !withinBound(bound, n)) {
      return { ok: false, error: `${name} (${spec.what}) must be ${boundText(bound)}, got "${raw.slice(0, 30)}". Nothing was changed. Example: /limits ${name} ${bound.whole ? 3 : 5}` };
    }
    return { ok: true, value: { name, value: n } };
  },
  async run(args, { app }) {
    // Another process may have changed them since this one's last risk check.
    await app.limitsStore.refresh(app.services.limits);
    const current = app.services.limits;
    if (!args) {
      return {
        text: ["Risk limits:", ...describeLimits(current).map((l) => `  ${l}`), `Change one with ${usage}; names: ${Object.keys(SPECS).join(", ")}.`].join("\n"),
      };
    }
    const spec = SPECS[args.name]!;
    const next: RiskLimits = { ...current, [spec.key]: args.value };
    const problem = crossCheck(next);
    if (problem) return { text: `Not changed: ${problem}.`, error: true };
    const before = current[spec.key];
    const version = await app.limitsStore.save(spec.key, args.value);
    Object.assign(current, next);
    // Every process reads the version before its next risk check: from this answer on, none acts on the old value.
    return { text: `${args.name} (${spec.what}): ${before} → ${args.value}. In force now on every process (limits version ${version}).` };
  },
});
