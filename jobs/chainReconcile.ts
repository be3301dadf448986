import type { Redis } from "ioredis";
import { usd } from "../src/domain/types.js";
import type { Address } from "viem";
import type { Notifier } from "../src/chat/notifier.js";
import type { Ledger } from "../src/ledger/ledger.js";
import { compareRefills, compareWithChain, transfersBetween, transfersFrom, usdcClient, type ChainDrift, type UsdcNetwork } from "../src/chain/usdcTransfers.js";
import { loggedRefills } from "../src/payments/usdcRefill.js";
import type { PermitSessions } from "../src/payments/permitSessions.js";
import { matchSessionBatches, neverSettled, type SessionForMatching } from "../src/payments/sessionBatches.js";

export interface ChainReconcileDeps {
  services: { ledger: Ledger; clock: () => number };
  notifier: Notifier;
  redis: Redis;
  /** `funder`: the refills' funding wallet (REFILL_FROM_PRIVATE_KEY), when refills are set up. */
  chainWallet: { address: Address; network: UsdcNetwork; rpcUrl?: string; blocks: number; funder?: Address };
  /** Permit sessions, when the router is paid by one: their batches are matched here. */
  sessions?: PermitSessions;
  /** What a permit still lets a spender draw (ERC-20 allowance). */
  allowance?: (asset: Address, spender: Address) => Promise<bigint>;
  /** The time permit deadlines are read against: the chain's, which is the wall clock (tests move it). */
  wallClock?: () => number;
}

/** How long after a session's deadline its booked calls may still wait for their batch, or an allowance stay open. */
const SESSION_GRACE_MS = 15 * 60_000;

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
  // Permit sessions first: a batch the facilitator drew is matched to the session's booked calls,
  // and kept out of the per-payment comparison (its calls carry no transaction of their own).
  const { sessionDrifts, batchTxs } = app.sessions ? await reconcileSessions(app, app.sessions, transfers, (app.wallClock ?? Date.now)()) : { sessionDrifts: [], batchTxs: new Set<string>() };
  const perPayment = transfers.filter((t) => !batchTxs.has(t.transaction));
  const raw = [...compareWithChain(charges, perPayment), ...compareRefills(refills, incoming), ...sessionDrifts];
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

/** Matches new batches to the sessions' booked calls, records them, and says what does not add up. */
async function reconcileSessions(app: ChainReconcileDeps, sessions: PermitSessions, transfers: { transaction: string; to: string; valueMicro: number; block: bigint }[], now: number): Promise<{ sessionDrifts: ChainDrift[]; batchTxs: Set<string> }> {
  const views = await sessions.recent(50);
  const spenders = new Set(views.map((v) => v.spender.toLowerCase()));
  const known = new Set<string>();
  const forMatching: (SessionForMatching & { bookedMicro: number; settledMicro: number })[] = [];
  for (const v of views) {
    const [calls, batches] = await Promise.all([sessions.calls(v.id), sessions.batches(v.id)]);
    for (const b of batches) known.add(b.transaction);
    forMatching.push({ id: v.id, spender: v.spender, calls, settledCalls: batches.reduce((n, b) => n + b.calls, 0), signedAt: v.signedAt, deadline: v.deadline, bookedMicro: v.bookedMicro, settledMicro: v.settledMicro });
  }
  const toSpenders = transfers.filter((t) => spenders.has(t.to.toLowerCase()));
  const fresh = toSpenders.filter((t) => !known.has(t.transaction));
  const { matches, drifts } = matchSessionBatches(forMatching, fresh);
  for (const m of matches) {
    await sessions.recordBatch(m.sessionId, { transaction: m.transaction, micro: m.micro, block: String(m.block), calls: m.calls, at: now });
    const s = forMatching.find((x) => x.id === m.sessionId)!;
    s.settledMicro += m.micro;
  }
  const out: ChainDrift[] = drifts.map((d) => ({ kind: d.kind, of: "session", transaction: d.transaction ?? d.sessionId ?? "", message: d.message }));
  for (const s of forMatching) {
    const d = neverSettled(s, now, SESSION_GRACE_MS);
    if (d) out.push({ kind: d.kind, of: "session", transaction: s.id, message: d.message });
  }
  // An allowance left open once no permit session is in use: the facilitator could still draw it.
  const current = views[0];
  if (current && app.allowance && (current.status !== "open" || now > current.deadline * 1000 + SESSION_GRACE_MS)) {
    const left = await app.allowance(current.asset, current.spender).catch(() => 0n);
    if (left > 0n) {
      out.push({ kind: "allowance-open", of: "session", transaction: current.id, message: `${usd(Number(left), 6)} of allowance is still open to the router's facilitator ${current.spender} after its permit session ended: /session revoke closes it` });
    }
  }
  return { sessionDrifts: out, batchTxs: new Set(toSpenders.map((t) => t.transaction)) };
}
