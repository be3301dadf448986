import type { Redis } from "ioredis";
import type { Address } from "viem";
import type { Notifier } from "../src/chat/notifier.js";
import type { Ledger } from "../src/ledger/ledger.js";
import { compareRefills, compareWithChain, transfersBetween, transfersFrom, usdcClient, type ChainDrift, type UsdcNetwork } from "../src/chain/usdcTransfers.js";
import { loggedRefills } from "../src/payments/usdcRefill.js";

export interface ChainReconcileDeps {
  services: { ledger: Ledger; clock: () => number };
  notifier: Notifier;
  redis: Redis;
  /** `funder`: the refills' funding wallet (REFILL_FROM_PRIVATE_KEY), when refills are set up. */
  chainWallet: { address: Address; network: UsdcNetwork; rpcUrl?: string; blocks: number; funder?: Address };
}

const LAST = "chain:reconcile:last";
const WEEK = 7 * 86_400_000;

/**
 * Compares the ledger's settled x402 payments with the agent wallet's outgoing USDC Transfer events,
 * and the logged refills with the USDC that came in from the funding wallet, over the last
 * CHAIN_RECONCILE_BLOCKS blocks. Alerts when the set of differences changes (not every run), and
 * says so when they are gone.
 */
export async function runChainReconciliation(app: ChainReconcileDeps): Promise<ChainDrift[]> {
  const w = app.chainWallet;
  const client = usdcClient(w.network, w.rpcUrl);
  const head = await client.getBlockNumber();
  const fromBlock = head >= BigInt(w.blocks) ? head - BigInt(w.blocks) + 1n : 0n;
  const now = app.services.clock();
  const [transfers, charges, incoming, refills] = await Promise.all([
    transfersFrom(client, w.network, w.address, fromBlock, head),
    app.services.ledger.charges(now - WEEK, now + 60_000),
    w.funder ? transfersBetween(client, w.network, w.funder, w.address, fromBlock, head) : [],
    w.funder ? loggedRefills(app.redis, now - WEEK) : [],
  ]);
  const raw = [...compareWithChain(charges, transfers), ...compareRefills(refills, incoming)];
  // A payment booked long ago may sit before the block window: look it up before calling it missing.
  const drifts: ChainDrift[] = [];
  for (const d of raw) {
    if (d.kind === "missing") {
      const receipt = await client.getTransactionReceipt({ hash: d.transaction as `0x${string}` }).catch(() => undefined);
      if (receipt && receipt.blockNumber < fromBlock) continue;
    }
    drifts.push(d);
  }
  const signature = drifts.map((d) => `${d.of}:${d.kind}:${d.transaction}:${d.bookedMicro ?? ""}:${d.chainMicro ?? ""}`).sort().join("|");
  const previous = (await app.redis.getset(LAST, signature)) ?? "";
  if (signature !== previous) {
    if (drifts.length > 0) await app.notifier.notify({ type: "chain-drift", network: w.network, drifts });
    else if (previous) await app.notifier.notify({ type: "chain-reconciled", network: w.network });
  }
  return drifts;
}
