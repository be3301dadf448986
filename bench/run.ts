// npm run bench: every benchmark suite; each prints its figures and writes them to bench/results.json.
import { benchBacktest, benchWalkForward } from "./backtest.js";
import { benchDecisionPipeline } from "./decisionPipeline.js";
import { benchChatLatency } from "./chatLatency.js";
import { benchDashboard } from "./dashboard.js";
import { benchIndicators } from "./indicators.js";
import { benchPaymentOverhead } from "./paymentOverhead.js";
import { benchLedgerRetention } from "./ledgerRetention.js";
import { benchRouterCost } from "./routerCost.js";
import { benchRouterResilience } from "./routerResilience.js";
import { benchScaleOut } from "./scaleOut.js";
import { benchStartup } from "./startup.js";

const suites: Record<string, () => Promise<unknown>> = {
  decisionPipeline: benchDecisionPipeline,
  routerCost: benchRouterCost,
  routerResilience: benchRouterResilience,
  paymentOverhead: benchPaymentOverhead,
  chatLatency: benchChatLatency,
  indicators: benchIndicators,
  ledgerRetention: benchLedgerRetention,
  backtest: benchBacktest,
  walkForward: benchWalkForward,
  scaleOut: benchScaleOut,
  startup: benchStartup,
  dashboard: benchDashboard,
};

const only = process.argv[2];
for (const [name, run] of Object.entries(suites)) {
  if (only && only !== name) continue;
  await run();
}
process.exit(0);
