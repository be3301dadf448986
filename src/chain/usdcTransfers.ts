// The agent wallet's USDC movements as the chain records them (ERC-20 Transfer events, read with
// viem getLogs), and the comparison with the ledger's settled payments. The comparison is a pure
// function: the job only fetches both sides.
import { createPublicClient, http, parseAbiItem, type Address, type PublicClient } from "viem";
import { base, baseSepolia } from "viem/chains";
import { USDC_ADDRESS } from "./usdc.js";
import { usd } from "../domain/types.js";
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
export function transfersFrom(client: PublicClient, network: UsdcNetwork, wallet: Address, fromBlock: bigint, toBlock: bigint): Promise<ChainTransfer[]> {
  return transfers(client, network, { from: wallet }, fromBlock, toBlock);
}

/** USDC Transfer events from `sender` to `wallet` in blocks [fromBlock, toBlock]. */
export function transfersBetween(client: PublicClient, network: UsdcNetwork, sender: Address, wallet: Address, fromBlock: bigint, toBlock: bigint): Promise<ChainTransfer[]> {
  return transfers(client, network, { from: sender, to: wallet }, fromBlock, toBlock);
}

async function transfers(client: PublicClient, network: UsdcNetwork, args: { from?: Address; to?: Address }, fromBlock: bigint, toBlock: bigint): Promise<ChainTransfer[]> {
  const logs = await client.getLogs({ address: USDC_ADDRESS[network], event: TRANSFER_EVENT, args, fromBlock, toBlock });
  return logs.map((l) => ({
    transaction: l.transactionHash!.toLowerCase(),
    from: l.args.from!.toLowerCase(),
    to: l.args.to!.toLowerCase(),
    valueMicro: Number(l.args.value!),
    block: l.blockNumber!,
  }));
}

export interface ChainDrift {
  kind: "missing" | "unknown" | "different" | "batch-unmatched" | "batch-larger" | "never-settled" | "allowance-open";
  /** What the books say moved: a payment out of the wallet, a refill into it, or a permit session's batches. */
  of: "payment" | "refill" | "session";
  transaction: string;
  bookedMicro?: number;
  chainMicro?: number;
  message: string;
}

const usd6 = (micro: number) => usd(micro, 6);

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
    if (seen === undefined) drifts.push({ kind: "missing", of: "payment", transaction: tx, bookedMicro: micro, message: `booked ${usd6(micro)} as settled in ${tx}, but no USDC left the wallet in that transaction` });
    else if (seen !== micro) drifts.push({ kind: "different", of: "payment", transaction: tx, bookedMicro: micro, chainMicro: seen, message: `${tx}: booked ${usd6(micro)}, the chain moved ${usd6(seen)}` });
  }
  for (const [tx, micro] of onChain) {
    if (!booked.has(tx)) drifts.push({ kind: "unknown", of: "payment", transaction: tx, chainMicro: micro, message: `${usd6(micro)} left the wallet in ${tx} with no booking` });
  }
  return drifts;
}

/** A refill the refiller logged once its transfer was mined (src/payments/usdcRefill.ts). */
export interface LoggedRefill {
  hash: string;
  amountMicro: number;
  at: number;
}

/**
 * Refills logged as confirmed against the USDC that came into the wallet from the funding wallet,
 * matched by transaction hash. missing: logged, no such transfer in; unknown: USDC came in from the
 * funding wallet with no refill logged (sent by hand, or by a refill whose log was lost);
 * different: both exist with different amounts. Deposits from anyone else are not refills.
 */
export function compareRefills(refills: LoggedRefill[], incoming: ChainTransfer[]): ChainDrift[] {
  const logged = new Map<string, number>();
  for (const r of refills) logged.set(r.hash.toLowerCase(), (logged.get(r.hash.toLowerCase()) ?? 0) + r.amountMicro);
  const came = new Map<string, number>();
  for (const t of incoming) came.set(t.transaction, (came.get(t.transaction) ?? 0) + t.valueMicro);
  const drifts: ChainDrift[] = [];
  for (const [tx, micro] of logged) {
    const seen = came.get(tx);
    if (seen === undefined) drifts.push({ kind: "missing", of: "refill", transaction: tx, bookedMicro: micro, message: `a refill of ${usd6(micro)} is logged as confirmed in ${tx}, but no USDC came in from the funding wallet in that transaction` });
    else if (seen !== micro) drifts.push({ kind: "different", of: "refill", transaction: tx, bookedMicro: micro, chainMicro: seen, message: `refill ${tx}: logged ${usd6(micro)}, the chain moved ${usd6(seen)}` });
  }
  for (const [tx, micro] of came) {
    if (!logged.has(tx)) drifts.push({ kind: "unknown", of: "refill", transaction: tx, chainMicro: micro, message: `${usd6(micro)} came in from the funding wallet in ${tx} with no refill logged` });
  }
  return drifts;
}
