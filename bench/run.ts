// npm run bench: every benchmark suite; each prints its figures and writes them to bench/results.json.
import { benchBacktest, benchWalkForward } from "./backtest.js";
import { benchDecisionPipeline } from "./decisionPipeline.js";
import { benchChatLatency } from "./chatLatency.js";
import { benchIndicators } from "./indicators.js";
import { benchRouterCost } from "./routerCost.js";
import { benchRouterResilience } from "./routerResilience.js";
import { benchStartup } from "./startup.js";

const suites: Record<string, () => Promise<unknown>> = {
  decisionPipeline: benchDecisionPipeline,
  routerCost: benchRouterCost,
  routerResilience: benchRouterResilience,
  chatLatency: benchChatLatency,
  indicators: benchIndicators,
  backtest: benchBacktest,
  walkForward: benchWalkForward,
  startup: benchStartup,
};

const only = process.argv[2];
for (const [name, run] of Object.entries(suites)) {
  if (only && only !== name) continue;
  await run();
}
process.exit(0);
