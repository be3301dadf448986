// `npm run chain`: the demo chain. A local EVM node (Hardhat's EDR) with Circle's USDC at its
// Base Sepolia address, a demo agent wallet and a funding wallet holding USDC, and a router
// stand-in whose facilitator settles every x402 payment on that chain. Prints the .env lines that
// point `npm start` at it. Everything listens on 127.0.0.1 and uses Hardhat's public development
// keys: never put real funds behind them.
import { startDevChain } from "../src/chain/devChain.js";
import { chainFacilitator } from "../test/support/chainFacilitator.js";
import { RouterStandIn } from "../test/support/routerStandIn.js";
import { GEMINI, GPT, LLAMA, CLAUDE, STANDIN_PRICES } from "../test/support/routerApp.js";

const port = Number(process.env.CHAIN_PORT ?? 8545);
const routerPort = Number(process.env.CHAIN_ROUTER_PORT ?? port + 1);
const chain = await startDevChain({ port, network: "base-sepolia" });
const agent = chain.account(1);
const funding = chain.account(2);
await chain.mint(agent.address, 10_000_000n);
await chain.mint(funding.address, 100_000_000n);
const router = await RouterStandIn.start({ prices: { ...STANDIN_PRICES }, network: "base-sepolia", port: routerPort, signer: chainFacilitator(chain.url, chain.account(3)) });

const lines = [
  `# Demo chain: chain id ${chain.chainId} (as Base Sepolia), USDC (Circle FiatToken v2.2) at ${chain.usdc}`,
  `# Agent wallet ${agent.address}: 10 USDC. Funding wallet ${funding.address}: 100 USDC.`,
  `# Public Hardhat development keys: for this local chain only.`,
  `DECISION_MODEL=router`,
  `DREAMS_ROUTER_URL=${router.url}`,
  `ROUTER_AUTH=x402`,
  `X402_NETWORK=base-sepolia`,
  `X402_PRIVATE_KEY=${chain.privateKey(1)}`,
  `BASE_RPC_URL=${chain.url}`,
  `REFILL_FROM_PRIVATE_KEY=${chain.privateKey(2)}`,
  `PRIMARY_MODEL=${LLAMA}`,
  `FALLBACK_MODELS=${GEMINI},${CLAUDE},${GPT}`,
];
process.stdout.write(`${lines.join("\n")}\n\nThe demo chain runs until Ctrl-C.\n`);
const stop = async () => {
  await router.close();
  await chain.close();
  process.exit(0);
};
process.on("SIGINT", () => void stop());
process.on("SIGTERM", () => void stop());
