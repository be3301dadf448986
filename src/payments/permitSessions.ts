// Permit sessions, as the hosted Dreams Router is paid today: one signed ERC-2612 permit lets the
// router's facilitator draw up to a cap from the agent's wallet until a deadline, and is reused for
// every call until the router refuses it; the facilitator settles the calls in batches.
//
// A permit is an allowance the facilitator can spend without asking again, so:
//  - there is one session per wallet and router, kept in Redis for every worker and process (the
//    signed permit, never the key), and a new one is signed only under a Redis lock: two workers
//    never both sign, and the nonce is read from the token when signing;
//  - its cap is never more than SESSION_CAP_USDC, what the balance rule still allows, and what the
//    daily and monthly budgets still allow: the cap is reserved in the budget when the permit is
//    signed (held until its deadline, counted against every day it is alive), and each call moves
//    its price out of that reservation into its own, so spent + what the permit still allows never
//    crosses a cap, whatever else is paid meanwhile;
//  - its deadline is short (SESSION_TTL_SECONDS).
import { createHash } from "node:crypto";
import type { Redis } from "ioredis";
import type { PermitChain } from "../chain/permits.js";
import { USDC, usd, type MicroUsdc } from "../domain/types.js";
import { RedisLock } from "../redis/lock.js";
import type { BudgetGuard } from "./budgetGuard.js";
import type { SessionTerms } from "./routerTerms.js";

/** A signed permit and what became of it. */
export interface StoredPermit {
  /** Our id for the session: a hash of the signed permit. */
  id: string;
  origin: string;
  owner: `0x${string}`;
  spender: `0x${string}`;
  asset: `0x${string}`;
  network: string;
  capMicro: MicroUsdc;
  nonce: string;
  /** Unix seconds. */
  deadline: number;
  signedAt: number;
  /** The payment header's value: base64 of the x402 v2 payload the router reads. */
  header: string;
  headerName: string;
  signature: `0x${string}`;
  status: "open" | "replaced" | "revoked";
  /** Why it is no longer used. */
  reason?: string;
  /** How it was revoked: the transactions that used its nonce and zeroed the allowance, or why that failed. */
  revocation?: { permitTx?: string; approveTx?: string; failed?: string; at: number };
  /** The router's own id for it (x-upto-session-id), once it answered a call. */
  routerSessionId?: string;
}

/** What a session's calls and batches add up to (the booking script keeps it). */
export interface SessionTally {
  calls: number;
  bookedMicro: MicroUsdc;
  settledMicro: MicroUsdc;
  batches: number;
}

export interface SessionView extends StoredPermit, SessionTally {
  /** What the budget still holds for it (0 once the deadline passed or it was closed). */
  leftMicro: MicroUsdc;
}

export interface PermitSessionOptions {
  redis: Redis;
  chain: PermitChain;
  budget: BudgetGuard;
  /** The balance the permit may draw from, and the floor the balance rule keeps. */
  balance: { getBalance(): Promise<MicroUsdc>; rules: { criticalBalance: number } };
  origin: string;
  capMicro: MicroUsdc;
  ttlSeconds: number;
  clock: () => number;
}

export type TakeResult =
  | { ok: true; permit: StoredPermit; signed: boolean }
  /** budget, balance: a cap or the balance rule; session: a new permit must wait for the router to apply the last one. */
  | { ok: false; guard: "budget" | "balance" | "session"; reason: string };

const sessionKeys = (owner: string) => ({
  current: (origin: string) => `session:current:${owner.toLowerCase()}:${origin}`,
  permit: (id: string) => `session:permit:${id}`,
  all: `session:all:${owner.toLowerCase()}`,
  lock: `session:lock:${owner.toLowerCase()}`,
  tally: (id: string) => `session:tally:${id}`,
  calls: (id: string) => `session:calls:${id}`,
  batches: (id: string) => `session:batches:${id}`,
  broke: `session:insufficient:${owner.toLowerCase()}`,
});

/** How long a process trusts the open permit it last read. */
const CACHE_MS = 2_000;

/** The budget reservation a permit holds. */
export const sessionReservation = (id: string) => `permit:${id}`;

export class PermitSessions {
  private readonly keys: ReturnType<typeof sessionKeys>;
  private readonly lock: RedisLock;
  private cached?: { permit: StoredPermit; until: number };
  /** The router's "too little USDC", as this process last read it (with the permit, so a call needs no round trip of its own for it). */
  private broke: string | null = null;

  constructor(private readonly o: PermitSessionOptions) {
    this.keys = sessionKeys(o.chain.owner);
    // Signing reads the chain (nonce, balance) and signs: seconds at most; others wait for it.
    this.lock = new RedisLock(o.redis, this.keys.lock, 30_000, 45_000);
  }

  get owner(): `0x${string}` {
    return this.o.chain.owner;
  }

  /** The open permit, from Redis (another process may have replaced it). */
  async current(): Promise<StoredPermit | undefined> {
    const [id, broke] = await this.o.redis.mget(this.keys.current(this.o.origin), this.keys.broke);
    this.broke = broke ?? null;
    const p = id ? await this.permit(id) : undefined;
    this.cached = p ? { permit: p, until: Date.now() + CACHE_MS } : undefined;
    return p;
  }

  /**
   * The open permit as this process last read it, for a few seconds: a call needs no round trip to
   * find it. Another process replacing it meanwhile costs one refused call here, which renews.
   */
  private async currentCached(): Promise<StoredPermit | undefined> {
    const c = this.cached;
    return c && Date.now() < c.until ? c.permit : this.current();
  }

  async permit(id: string): Promise<StoredPermit | undefined> {
    const raw = await this.o.redis.get(this.keys.permit(id));
    return raw ? (JSON.parse(raw) as StoredPermit) : undefined;
  }

  /**
   * Whether a permit can still carry a call that may take `leaseMs`: the router closes a session a
   * minute before its deadline. Deadlines are the chain's time, so they are read against the wall
   * clock, not the agent's clock (which tests and replays move).
   */
  private usable(p: StoredPermit | undefined, leaseMs: number): p is StoredPermit {
    return p !== undefined && p.status === "open" && p.deadline * 1000 - Date.now() > 60_000 + leaseMs;
  }

  /**
   * A permit with room for `micro` for the call `callId`: the open one, or a new one signed under the
   * lock. The call's price moves out of the permit's reservation into the call's own.
   */
  async take(terms: SessionTerms, callId: string, micro: MicroUsdc, leaseMs: number): Promise<TakeResult> {
    // The stop is read with the permit (another process's stop is seen within the cache's 2 s).
    const first = await this.currentCached();
    const broke = this.broke;
    if (broke) return { ok: false, guard: "balance", reason: `the router said the wallet holds too little USDC (${broke}); paid calls wait until the balance is topped up` };
    const now = this.o.clock();
    if (this.usable(first, leaseMs) && this.fits(first, terms)) {
      const took = await this.o.budget.takeFromSession(sessionReservation(first.id), callId, micro, now, leaseMs);
      if (took === "ok") return { ok: true, permit: first, signed: false };
    }
    return this.lock.run(async () => {
      // Another worker may have signed while this one waited.
      const again = await this.current();
      if (this.usable(again, leaseMs) && this.fits(again, terms)) {
        const took = await this.o.budget.takeFromSession(sessionReservation(again.id), callId, micro, this.o.clock(), leaseMs);
        if (took === "ok") return { ok: true as const, permit: again, signed: false };
        await this.retire(again, took === "short" ? "its cap is used up" : "its reservation ended");
      } else if (again) {
        await this.retire(again, again.status !== "open" ? again.reason ?? again.status : this.fits(again, terms) ? "its deadline is near" : "the router's payment terms changed");
      }
      const opened = await this.sign(terms, micro);
      if (!opened.ok) return opened;
      const took = await this.o.budget.takeFromSession(sessionReservation(opened.permit.id), callId, micro, this.o.clock(), leaseMs);
      if (took !== "ok") return { ok: false as const, guard: "budget" as const, reason: "the new permit's reservation could not hold the call" };
      return { ok: true as const, permit: opened.permit, signed: true };
    });
  }

  private fits(p: StoredPermit, terms: SessionTerms): boolean {
    return p.spender.toLowerCase() === terms.payTo.toLowerCase() && p.asset.toLowerCase() === terms.asset.toLowerCase() && p.network === terms.network && p.headerName === terms.header;
  }

  /** Signs a new permit for as much as the caps allow (at least `minMicro`), and makes it the open one. Under the lock. */
  private async sign(terms: SessionTerms, minMicro: MicroUsdc): Promise<{ ok: true; permit: StoredPermit } | { ok: false; guard: "budget" | "balance" | "session"; reason: string }> {
    const o = this.o;
    const now = o.clock();
    const wall = Date.now();
    // What the wallet can still give: its balance, less what is booked and not yet drawn, less the floor.
    const [balance, owed] = await Promise.all([o.balance.getBalance(), this.owed()]);
    const byBalance = balance - owed - USDC(o.balance.rules.criticalBalance);
    if (byBalance < minMicro) {
      return { ok: false, guard: "balance", reason: `USDC balance ${usd(balance, 2)} (${usd(owed)} of it owed to the router) leaves less than ${usd(minMicro)} above the critical level $${o.balance.rules.criticalBalance.toFixed(2)} for a permit` };
    }
    const deadline = Math.floor(wall / 1000) + o.ttlSeconds;
    const nonce = await o.chain.nonce(terms.asset);
    // ERC-2612 nonces are sequential: a permit the router has not applied yet holds this nonce, and
    // of two permits at one nonce only one can ever be applied. While calls are booked on such a
    // permit (the router will settle them with it), a new one waits for it to be applied.
    const holder = (await this.recent(5)).find((v) => v.nonce === String(nonce) && v.status !== "revoked" && v.deadline * 1000 > wall && v.bookedMicro > v.settledMicro);
    if (holder) {
      return { ok: false, guard: "session", reason: `the router has not yet settled permit ${holder.id.slice(0, 8)} (nonce ${nonce}, ${usd(holder.bookedMicro - holder.settledMicro)} booked on it): a new permit at the same nonce would conflict with it, so paid calls wait until it settles` };
    }
    const id = createHash("sha256").update(`${o.chain.owner}:${terms.payTo}:${terms.asset}:${nonce}:${deadline}:${wall}`.toLowerCase()).digest("hex").slice(0, 20);
    // The budget first: the permit is signed for what the caps still allow, and that is held until its deadline.
    // The reservation lasts as long as the permit can be applied, on the agent's clock.
    const opened = await o.budget.openSession(sessionReservation(id), Math.min(o.capMicro, byBalance), minMicro, now, now + (deadline * 1000 - wall));
    if (!opened.ok) return { ok: false, guard: "budget", reason: opened.reason };
    try {
      const signature = await o.chain.sign({
        domain: { name: terms.domain.name, version: terms.domain.version, chainId: terms.chainId, verifyingContract: terms.asset },
        spender: terms.payTo,
        value: BigInt(opened.micro),
        nonce,
        deadline: BigInt(deadline),
      });
      // The payload exactly as the router's own client sends it.
      const payload = {
        x402Version: 2,
        accepted: { scheme: "upto", network: terms.network, asset: terms.asset, payTo: terms.payTo, extra: { name: terms.domain.name, version: terms.domain.version } },
        payload: { authorization: { from: o.chain.owner, to: terms.payTo, value: String(opened.micro), validBefore: String(deadline), nonce: String(nonce) }, signature },
      };
      const permit: StoredPermit = {
        id,
        origin: o.origin,
        owner: o.chain.owner,
        spender: terms.payTo,
        asset: terms.asset,
        network: terms.network,
        capMicro: opened.micro,
        nonce: String(nonce),
        deadline,
        signedAt: now,
        header: Buffer.from(JSON.stringify(payload)).toString("base64"),
        headerName: terms.header,
        signature,
        status: "open",
      };
      // Kept a week past its deadline, for the reconciliation of its batches and the report.
      const ttl = Math.max(60, deadline - Math.floor(wall / 1000) + 7 * 86_400);
      await o.redis.multi().set(this.keys.permit(id), JSON.stringify(permit), "EX", ttl).zadd(this.keys.all, now, id).set(this.keys.current(o.origin), id).exec();
      this.cached = { permit, until: Date.now() + CACHE_MS };
      return { ok: true, permit };
    } catch (err) {
      await o.budget.closeSession(sessionReservation(id));
      throw err;
    }
  }

  /** The permit is not used for new calls any more; what it still held stays reserved until its deadline. */
  private async retire(p: StoredPermit, reason: string): Promise<void> {
    if (this.cached?.permit.id === p.id) this.cached = undefined;
    if (p.status !== "open") return;
    const next: StoredPermit = { ...p, status: "replaced", reason };
    await this.o.redis.set(this.keys.permit(p.id), JSON.stringify(next), "KEEPTTL");
  }

  /** The router refused this permit (one of its four invalidating codes, or the permit itself): the next call signs a new one. */
  async invalidate(p: StoredPermit, reason: string): Promise<void> {
    await this.lock.run(async () => {
      const now = await this.permit(p.id);
      if (now) await this.retire(now, reason);
    });
  }

  /** The router answered a call on this permit: remember its session id. */
  async answered(p: StoredPermit, routerSessionId: string | null): Promise<void> {
    if (!routerSessionId || p.routerSessionId === routerSessionId) return;
    const now = await this.permit(p.id);
    if (now && now.routerSessionId !== routerSessionId) {
      await this.o.redis.set(this.keys.permit(p.id), JSON.stringify({ ...now, routerSessionId: routerSessionId.slice(0, 128) }), "KEEPTTL");
    }
    if (this.cached?.permit.id === p.id) this.cached.permit = { ...this.cached.permit, routerSessionId: routerSessionId.slice(0, 128) };
  }

  /** The router says the wallet cannot pay: no paid call until the balance is seen topped up (or 10 minutes pass). */
  async walletShort(text: string): Promise<boolean> {
    this.broke = text.slice(0, 120);
    return (await this.o.redis.set(this.keys.broke, this.broke, "EX", 600, "NX")) === "OK";
  }

  /** The balance monitor saw enough USDC again. */
  async walletTopped(): Promise<void> {
    this.broke = null;
    await this.o.redis.del(this.keys.broke);
  }

  /** Booked and not yet drawn by a batch, over the recent sessions. */
  async owed(): Promise<MicroUsdc> {
    const views = await this.recent(20);
    return views.reduce((s, v) => s + Math.max(0, v.bookedMicro - v.settledMicro), 0);
  }

  /** The latest sessions, newest first, with their tallies. */
  async recent(limit = 10): Promise<SessionView[]> {
    const ids = await this.o.redis.zrevrange(this.keys.all, 0, limit - 1);
    const now = this.o.clock();
    const views: SessionView[] = [];
    for (const id of ids) {
      const [p, tally, left] = await Promise.all([this.permit(id), this.tally(id), this.o.budget.sessionLeft(sessionReservation(id), now)]);
      if (p) views.push({ ...p, ...tally, leftMicro: left });
    }
    return views;
  }

  async tally(id: string): Promise<SessionTally> {
    const h = await this.o.redis.hgetall(this.keys.tally(id));
    return { calls: Number(h.calls ?? 0), bookedMicro: Number(h.booked ?? 0), settledMicro: Number(h.settled ?? 0), batches: Number(h.batches ?? 0) };
  }

  /** A session's booked calls, oldest first. */
  async calls(id: string): Promise<{ chargeId: string; micro: MicroUsdc; time: number }[]> {
    return (await this.o.redis.lrange(this.keys.calls(id), 0, -1)).map((r) => JSON.parse(r) as { chargeId: string; micro: MicroUsdc; time: number });
  }

  /** The batches matched to a session, oldest first. */
  async batches(id: string): Promise<SessionBatch[]> {
    return (await this.o.redis.lrange(this.keys.batches(id), 0, -1)).map((r) => JSON.parse(r) as SessionBatch);
  }

  /** Records a batch the chain shows as drawn for this session (the reconciliation matched it to `calls` booked calls). */
  async recordBatch(id: string, b: SessionBatch): Promise<void> {
    await this.o.redis.multi().rpush(this.keys.batches(id), JSON.stringify(b)).hincrby(this.keys.tally(id), "settled", b.micro).hincrby(this.keys.tally(id), "batches", 1).exec();
  }

  /** The writes a session call's booking makes in the ledger's own transaction. */
  bookingWrites(p: StoredPermit, chargeId: string, micro: MicroUsdc, time: number): { pushes: [string, string][]; incrs: [string, string, number][] } {
    return {
      pushes: [[this.keys.calls(p.id), JSON.stringify({ chargeId, micro, time })]],
      incrs: [
        [this.keys.tally(p.id), "calls", 1],
        [this.keys.tally(p.id), "booked", micro],
      ],
    };
  }

  /**
   * Revokes the latest permit for good: no call uses it again, then on chain the wallet submits the
   * permit itself if the router has not (so its nonce is used and nobody can submit it later) and
   * approves 0. A permit that was never applied would otherwise stay submittable until its deadline,
   * and `approve(spender, 0)` alone would not stop that. Needs ETH for gas; without it, the deadline
   * is the bound, and the permit says so.
   */
  async revoke(): Promise<{ permit?: StoredPermit; onChain: boolean; detail: string }> {
    const p = (await this.current()) ?? (await this.recent(1))[0];
    if (!p) return { onChain: false, detail: "no permit was ever signed by this wallet" };
    await this.markRevoked(p, "revoked by an admin");
    let revocation: NonNullable<StoredPermit["revocation"]>;
    try {
      const done = await this.o.chain.revoke({ asset: p.asset, spender: p.spender, value: BigInt(p.capMicro), nonce: BigInt(p.nonce), deadline: BigInt(p.deadline), signature: p.signature });
      revocation = { ...(done.permitTx ? { permitTx: done.permitTx } : {}), approveTx: done.approveTx, at: this.o.clock() };
    } catch (err) {
      const e = err as { shortMessage?: string; message?: string };
      revocation = { failed: (e.shortMessage ?? e.message ?? String(err)).split("\n")[0]!.slice(0, 160), at: this.o.clock() };
    }
    const now = (await this.permit(p.id)) ?? p;
    const next: StoredPermit = { ...now, revocation };
    await this.o.redis.set(this.keys.permit(p.id), JSON.stringify(next), "KEEPTTL");
    const until = new Date(p.deadline * 1000).toISOString().slice(11, 16);
    return revocation.failed
      ? { permit: next, onChain: false, detail: `could not revoke on chain (${revocation.failed}): the permit stays usable by the router until its deadline, ${until} UTC` }
      : { permit: next, onChain: true, detail: `${revocation.permitTx ? `its nonce was used (${revocation.permitTx}) and ` : ""}the allowance set to 0 (${revocation.approveTx})` };
  }

  /** Marks a permit revoked (no call uses it again) and lets its reservation go. */
  async markRevoked(p: StoredPermit, how: string): Promise<void> {
    this.cached = undefined;
    await this.lock.run(async () => {
      const now = (await this.permit(p.id)) ?? p;
      await this.o.redis.set(this.keys.permit(p.id), JSON.stringify({ ...now, status: "revoked", reason: how }), "KEEPTTL");
      const cur = await this.o.redis.get(this.keys.current(this.o.origin));
      if (cur === p.id) await this.o.redis.del(this.keys.current(this.o.origin));
    });
    await this.o.budget.closeSession(sessionReservation(p.id));
  }
}

/** One batch the facilitator drew from the wallet for a session. */
export interface SessionBatch {
  transaction: string;
  micro: MicroUsdc;
  block: string;
  /** How many of the session's booked calls it paid. */
  calls: number;
  at: number;
}
