// `npm run chain`: the demo chain. A local EVM node (Hardhat's EDR) with Circle's USDC at its
// Base Sepolia address, a demo agent wallet and a funding wallet holding USDC, and a stand-in for
// the hosted Dreams Router as it runs today (permit sessions: one signed ERC-2612 permit per
// session, settled on this chain in batches by the router's sweeper). Prints the .env lines that
// point `npm start` at it. `npm run chain -- --legacy` starts the older stand-in instead (the
// x402 dialect with one EIP-3009 payment per call). Everything listens on 127.0.0.1 and uses
// Hardhat's public development keys: never put real funds behind them.
import { startDevChain } from "../src/chain/devChain.js";
import { chainFacilitator } from "../test/support/chainFacilitator.js";
import { RouterStandIn } from "../test/support/routerStandIn.js";
import { GEMINI, GPT, LLAMA, CLAUDE, STANDIN_PRICES } from "../test/support/routerApp.js";
import { XGATE_MODELS, XgateStandIn } from "../test/support/xgateStandIn.js";

const legacy = process.argv.includes("--legacy");
const port = Number(process.env.CHAIN_PORT ?? 8545);
const routerPort = Number(process.env.CHAIN_ROUTER_PORT ?? port + 1);
// Short enough that a user sees batches settle within a minute or so of the agent going quiet
// (the hosted router waits 2 minutes idle); the other thresholds are the published defaults.
const IDLE_SETTLE_MS = 20_000;
const SWEEP_INTERVAL_MS = 5_000;

const chain = await startDevChain({ port, network: "base-sepolia" });
const agent = chain.account(1);
const funding = chain.account(2);
await chain.mint(agent.address, 10_000_000n);
await chain.mint(funding.address, 100_000_000n);

const usd = (atomic: bigint) => `${(Number(atomic) / 1_000_000).toFixed(6)} USDC`;
let stopRouter: () => Promise<void>;
let lines: string[];
if (legacy) {
  const router = await RouterStandIn.start({ prices: { ...STANDIN_PRICES }, network: "base-sepolia", port: routerPort, signer: chainFacilitator(chain.url, chain.account(3)) });
  stopRouter = () => router.close();
  lines = [
    `# Router: the older stand-in (x402 dialect, one EIP-3009 payment per call, settled at once).`,
    `DREAMS_ROUTER_URL=${router.url}`,
    `PRIMARY_MODEL=${LLAMA}`,
    `FALLBACK_MODELS=${GEMINI},${CLAUDE},${GPT}`,
  ];
} else {
  const router = await XgateStandIn.start({
    signer: chainFacilitator(chain.url, chain.account(3), "base-sepolia", { pollingIntervalMs: 250 }),
    port: routerPort,
    sweeper: { idleSettleMs: IDLE_SETTLE_MS, intervalMs: SWEEP_INTERVAL_MS },
    onSettlement: (s) =>
      process.stdout.write(
        s.success
          ? `[router] settled ${usd(s.amount)} from session ${s.sessionId.slice(0, 10)}… (${s.reason}): tx ${s.transaction}\n`
          : `[router] settlement of ${usd(s.amount)} for session ${s.sessionId.slice(0, 10)}… failed (${s.errorReason}); the session now answers settlement_blocked\n`,
      ),
  });
  stopRouter = () => router.close();
  const [primary, ...fallbacks] = XGATE_MODELS;
  lines = [
    `# Router: the hosted Dreams Router's permit sessions (GET ${router.url}/v1/config), pay_to ${router.payTo}.`,
    `# Its sweeper settles a session (permit, then transferFrom) after ${IDLE_SETTLE_MS / 1000} s idle (the hosted router: 2 min),`,
    `# at 90% of the permit's cap, or 60 s before its deadline; each settlement is printed below.`,
    `# Catalogue: ${XGATE_MODELS.map((m) => `${m.id} $${m.perCallUsd}`).join(", ")} per call, and auto.`,
    `DREAMS_ROUTER_URL=${router.url}`,
    `PRIMARY_MODEL=${primary!.id}`,
    `FALLBACK_MODELS=${fallbacks.map((m) => m.id).join(",")}`,
  ];
}

process.stdout.write(
  [
    `# Demo chain: chain id ${chain.chainId} (as Base Sepolia), USDC (Circle FiatToken v2.2) at ${chain.usdc}`,
    `# Agent wallet ${agent.address}: 10 USDC. Funding wallet ${funding.address}: 100 USDC.`,
    `# Public Hardhat development keys: for this local chain only.`,
    `DECISION_MODEL=router`,
    `ROUTER_AUTH=x402`,
    `X402_NETWORK=base-sepolia`,
    `X402_PRIVATE_KEY=${chain.privateKey(1)}`,
    `BASE_RPC_URL=${chain.url}`,
    `REFILL_FROM_PRIVATE_KEY=${chain.privateKey(2)}`,
    ...lines,
  ].join("\n") + "\n\nThe demo chain runs until Ctrl-C.\n",
);
const stop = async () => {
  await stopRouter();
  await chain.close();
  process.exit(0);
};
process.on("SIGINT", () => void stop());
process.on("SIGTERM", () => void stop());
