// The agent wallet's USDC movements as the chain records them (ERC-20 Transfer events, read with
// viem getLogs), and the comparison with the ledger's settled payments. The comparison is a pure
// function: the job only fetches both sides.
import { createPublicClient, http, parseAbiItem, type Address, type PublicClient } from "viem";
import { base, baseSepolia } from "viem/chains";
import { USDC_ADDRESS } from "./usdc.js";
import type { ChargeRecord } from "../ledger/ledger.js";

export type UsdcNetwork = "base" | "base-sepolia";
export const TRANSFER_EVENT = parseAbiItem("event Transfer(address indexed from, address indexed to, uint256 value)");

export interface ChainTransfer {
  transaction: string;
  from: string;
  to: string;
  valueMicro: number;
  block: bigint;
}

export function usdcClient(network: UsdcNetwork, rpcUrl?: string): PublicClient {
  return createPublicClient({ chain: network === "base" ? base : baseSepolia, transport: http(rpcUrl, { retryCount: 0, timeout: 10_000 }) }) as PublicClient;
}

/** Where a transaction can be looked at: the network's explorer, or just the hash on a local chain. */
export function explorerLink(network: UsdcNetwork, hash: string, local: boolean): string {
  if (local) return hash;
  return `${network === "base" ? "https://basescan.org" : "https://sepolia.basescan.org"}/tx/${hash}`;
}

/** USDC Transfer events sent from `wallet` in blocks [fromBlock, toBlock]. */
export async function transfersFrom(client: PublicClient, network: UsdcNetwork, wallet: Address, fromBlock: bigint, toBlock: bigint): Promise<ChainTransfer[]> {
  const logs = await client.getLogs({ address: USDC_ADDRESS[network], event: TRANSFER_EVENT, args: { from: wallet }, fromBlock, toBlock });
  return logs.map((l) => ({
    transaction: l.transactionHash!.toLowerCase(),
    from: l.args.from!.toLowerCase(),
    to: l.args.to!.toLowerCase(),
    valueMicro: Number(l.args.value!),
    block: l.blockNumber!,
  }));
}

export interface ChainDrift {
  kind: "missing" | "unknown" | "different";
  transaction: string;
  bookedMicro?: number;
  chainMicro?: number;
  message: string;
}

const usd = (micro: number) => `$${(micro / 1_000_000).toFixed(6)}`;

/**
 * Settled payments in the ledger against the wallet's outgoing transfers on chain, matched by
 * transaction hash. missing: booked as settled, no such transfer from the wallet; unknown: USDC left
 * the wallet with no booking; different: both exist with different amounts.
 */
export function compareWithChain(charges: ChargeRecord[], transfers: ChainTransfer[]): ChainDrift[] {
  const booked = new Map<string, number>();
  for (const c of charges) {
    const tx = c.receipt?.status === "settled" ? c.receipt.transaction?.toLowerCase() : undefined;
    if (tx) booked.set(tx, (booked.get(tx) ?? 0) + c.costMicro);
  }
  const onChain = new Map<string, number>();
  for (const t of transfers) onChain.set(t.transaction, (onChain.get(t.transaction) ?? 0) + t.valueMicro);
  const drifts: ChainDrift[] = [];
  for (const [tx, micro] of booked) {
    const seen = onChain.get(tx);
    if (seen === undefined) drifts.push({ kind: "missing", transaction: tx, bookedMicro: micro, message: `booked ${usd(micro)} as settled in ${tx}, but no USDC left the wallet in that transaction` });
    else if (seen !== micro) drifts.push({ kind: "different", transaction: tx, bookedMicro: micro, chainMicro: seen, message: `${tx}: booked ${usd(micro)}, the chain moved ${usd(seen)}` });
  }
  for (const [tx, micro] of onChain) {
    if (!booked.has(tx)) drifts.push({ kind: "unknown", transaction: tx, chainMicro: micro, message: `${usd(micro)} left the wallet in ${tx} with no booking` });
  }
  return drifts;
}
