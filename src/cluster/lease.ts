import { randomUUID } from "node:crypto";
import type { Redis } from "ioredis";
import type { Log } from "../log.js";

// Renews only a lease that is still ours: a frontend that was deposed (its lease expired while it
// was stalled or cut off) cannot extend the new holder's.
const RENEW = `if redis.call("GET", KEYS[1]) == ARGV[1] then return redis.call("PEXPIRE", KEYS[1], ARGV[2]) else return 0 end`;
// Wins a free lease, or finds it already ours (a SET that reached Redis after we stopped waiting).
const ACQUIRE = `if redis.call("SET", KEYS[1], ARGV[1], "PX", ARGV[2], "NX") then return 1 elseif redis.call("GET", KEYS[1]) == ARGV[1] then redis.call("PEXPIRE", KEYS[1], ARGV[2]) return 1 else return 0 end`;
const RELEASE = `if redis.call("GET", KEYS[1]) == ARGV[1] then return redis.call("DEL", KEYS[1]) else return 0 end`;

export const LEASE_KEY = "cluster:frontend:lease";

/** What the lease looks like from this process (for /status, /healthz and /metrics). */
export interface LeaseState {
  /** This process holds the lease and serves chat. */
  active: boolean;
  /** Our lease id (fencing token): the value the key holds while we are active. */
  id: string;
  /** When we last became active (ms since epoch), if we are. */
  since?: number;
  /** How many times this process became active. */
  acquisitions: number;
}

export interface LeaseOptions {
  ttlMs: number;
  /** Called when the lease is won; chat starts here. */
  onActive: () => Promise<void>;
  /** Called when the lease is lost or given up; chat stops here. */
  onInactive: (why: string) => Promise<void>;
  log: Log;
  key?: string;
}

/**
 * The frontend lease: exactly one frontend serves chat. SET NX PX wins it; a Lua compare-and-set
 * renews it every third of its time to live; the id in the key fences the holder (notice acks
 * check it). A holder that cannot renew before its own deadline (Redis unreachable, the process
 * stalled) steps down by itself before another can take over, so two never serve at once.
 */
export class FrontendLease {
  private readonly key: string;
  private readonly id = `${process.pid}-${randomUUID()}`;
  private active = false;
  private since: number | undefined;
  private deadline = 0;
  private acquisitions = 0;
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;
  private transition: Promise<void> = Promise.resolve();

  constructor(private readonly redis: Redis, private readonly opts: LeaseOptions) {
    this.key = opts.key ?? LEASE_KEY;
  }

  state(): LeaseState {
    return { active: this.isActive(), id: this.id, acquisitions: this.acquisitions, ...(this.since ? { since: this.since } : {}) };
  }

  /** True only while the lease is ours and, by our own clock, not yet expired. */
  isActive(): boolean {
    return this.active && Date.now() < this.deadline;
  }

  get leaseId(): string {
    return this.id;
  }

  /** Starts trying; resolves after the first attempt (won or not). */
  async start(): Promise<void> {
    await this.tick();
  }

  private schedule(ms: number): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => void this.tick(), ms);
  }

  private async tick(): Promise<void> {
    const ttl = this.opts.ttlMs;
    const attemptAt = Date.now();
    try {
      if (this.active) {
        const renewed = await withTimeout(this.redis.eval(RENEW, 1, this.key, this.id, String(ttl)) as Promise<number>, ttl / 3);
        if (renewed === 1) this.deadline = attemptAt + ttl - ttl / 10;
        else await this.stepDown("the lease was taken by another frontend");
      } else {
        const won = await withTimeout(this.redis.eval(ACQUIRE, 1, this.key, this.id, String(ttl)) as Promise<number>, ttl / 3);
        if (won === 1) await this.stepUp(attemptAt);
      }
    } catch (err) {
      if (this.active && Date.now() >= this.deadline) await this.stepDown(`Redis did not answer in time (${(err as Error).message})`);
      else this.opts.log.warn(`frontend lease: ${(err as Error).message}`);
    }
    // Active: renew at a third of the lease. Standby: look again often, so a takeover is quick.
    this.schedule(this.active ? ttl / 3 : Math.min(500, ttl / 4));
  }

  private async stepUp(at: number): Promise<void> {
    this.active = true;
    this.deadline = at + this.opts.ttlMs - this.opts.ttlMs / 10;
    this.since = Date.now();
    this.acquisitions++;
    this.opts.log.info(`frontend lease won (${this.id}): this process serves chat`);
    this.transition = this.transition.then(() => this.opts.onActive()).catch((err: unknown) => this.opts.log.error("frontend start", err));
    await this.transition;
  }

  private async stepDown(why: string): Promise<void> {
    if (!this.active) return;
    this.active = false;
    this.since = undefined;
    this.opts.log.warn(`frontend lease lost: ${why}; chat stops here and this process stands by`);
    this.transition = this.transition.then(() => this.opts.onInactive(why)).catch((err: unknown) => this.opts.log.error("frontend stop", err));
    await this.transition;
  }

  /**
   * Stops trying and gives the lease up at once, so a standby need not wait for it to expire. Chat
   * is stopped while the lease is still ours, so notices already read are delivered and acked.
   */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    if (!this.active) return;
    await this.transition;
    // The drain can outlast the lease (replies and notices are paced to Telegram's limits): keep it
    // renewed meanwhile, or the acks of what is delivered would fail the fence.
    const ttl = this.opts.ttlMs;
    const keep = setInterval(() => {
      const at = Date.now();
      void withTimeout(this.redis.eval(RENEW, 1, this.key, this.id, String(ttl)) as Promise<number>, ttl / 3).then(
        (renewed) => {
          if (renewed === 1) this.deadline = at + ttl - ttl / 10;
        },
        () => {},
      );
    }, ttl / 3);
    await this.opts.onInactive("this process is stopping").catch((err: unknown) => this.opts.log.error("frontend stop", err));
    clearInterval(keep);
    this.active = false;
    this.since = undefined;
    await withTimeout(this.redis.eval(RELEASE, 1, this.key, this.id) as Promise<number>, 1000).catch(() => {});
  }
}

/** The fencing check for writes only the active frontend may make (see FrontendLease). */
export const FENCE_LUA = `redis.call("GET", KEYS[1]) == ARGV[1]`;

function withTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`no answer in ${Math.round(ms)} ms`)), ms);
    p.then(
      (v) => {
        clearTimeout(t);
        resolve(v);
      },
      (e: unknown) => {
        clearTimeout(t);
        reject(e instanceof Error ? e : new Error(String(e)));
      },
    );
  });
}
