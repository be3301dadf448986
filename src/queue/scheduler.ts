import { Queue, Worker, type Job, type ConnectionOptions } from "bullmq";
import type { Redis } from "ioredis";
import type { Log } from "../log.js";
import { RedisLock } from "../redis/lock.js";

export interface ScheduleSpec {
  /** Scheduler id, e.g. "decide:BTC/USDT". */
  id: string;
  /** Job name the worker dispatches on. */
  job: "decide" | "balance" | "positions" | "report" | "reconcile" | "chain-reconcile" | "rollup" | "recover-payments" | "router-refresh";
  data?: Record<string, unknown>;
  every?: number;
  /** Cron pattern (UTC), for the daily jobs. */
  pattern?: string;
  label: string;
}

/** A schedule as /status shows it. */
export interface ScheduleLine {
  name: string;
  /** The job it runs (the banner finds the first decision by it). */
  job?: ScheduleSpec["job"];
  every: string;
  next?: number;
}

export type JobHandler = (job: Job) => Promise<unknown>;

/** Where the queues' and workers' errors go, and who pauses the workers while Redis refuses writes (src/redis/outage.ts). */
export interface RedisWatch {
  listener(source: string): (err: Error) => void;
  pauseWhileRefused(p: { pause(): Promise<void>; resume(): Promise<void> }): void;
}

/** The schedule every worker of the cluster runs, kept in Redis: the highest version written wins. */
export interface SharedSchedule {
  version: number;
  specs: ScheduleSpec[];
  /** Which process wrote it, and when. */
  by: string;
  at: number;
}

export const SCHEDULE_KEY = "cluster:schedule";

/** What a process did with its own schedule when it started. */
export interface ScheduleOutcome {
  /** "ours": this process's schedule is now the cluster's; "cluster": it runs the one already in Redis. */
  applied: "ours" | "cluster";
  version: number;
  /** Set when this process's SYMBOLS or intervals differ from what the cluster runs. */
  note?: string;
}

export interface ScheduleClaim {
  redis: Redis;
  version: number;
  /** This process, as the stored schedule names its writer. */
  by: string;
  /** True when no other worker is running (so a changed SYMBOLS of a lone process simply applies). */
  alone: () => Promise<boolean>;
}

const sameSpecs = (a: ScheduleSpec[], b: ScheduleSpec[]) => {
  const key = (l: ScheduleSpec[]) => JSON.stringify([...l].sort((x, y) => x.id.localeCompare(y.id)).map((s) => [s.id, s.job, s.data ?? {}, s.every ?? null, s.pattern ?? null]));
  return key(a) === key(b);
};

/** The schedule stored in Redis, if any. */
export async function readSharedSchedule(redis: Redis): Promise<SharedSchedule | undefined> {
  const raw = await redis.get(SCHEDULE_KEY);
  return raw ? (JSON.parse(raw) as SharedSchedule) : undefined;
}

/**
 * Which schedule the cluster runs, decided under a lock so two workers starting together do not
 * both write: a higher SCHEDULE_VERSION replaces the stored one; the same version replaces it only
 * when this process is the only worker (one process whose SYMBOLS were edited); otherwise the
 * stored schedule stands and this process runs it, whatever its own SYMBOLS say.
 */
export async function claimSchedule(specs: ScheduleSpec[], claim: ScheduleClaim): Promise<{ outcome: ScheduleOutcome; run: ScheduleSpec[] }> {
  return new RedisLock(claim.redis, "lock:schedule", 10_000, 30_000).run(async () => {
    const stored = await readSharedSchedule(claim.redis);
    const write = async (): Promise<{ outcome: ScheduleOutcome; run: ScheduleSpec[] }> => {
      const next: SharedSchedule = { version: claim.version, specs, by: claim.by, at: Date.now() };
      await claim.redis.set(SCHEDULE_KEY, JSON.stringify(next));
      return { outcome: { applied: "ours", version: claim.version }, run: specs };
    };
    if (!stored || claim.version > stored.version) return write();
    if (sameSpecs(stored.specs, specs)) return { outcome: { applied: "ours", version: stored.version }, run: stored.specs };
    if (claim.version === stored.version && (await claim.alone())) return write();
    const mine = specs.filter((s) => s.job === "decide").map((s) => String(s.data?.symbol)).join(", ");
    const theirs = stored.specs.filter((s) => s.job === "decide").map((s) => String(s.data?.symbol)).join(", ");
    return {
      outcome: {
        applied: "cluster",
        version: stored.version,
        note: `this process's schedule (symbols ${mine}, version ${claim.version}) differs from the cluster's (symbols ${theirs}, version ${stored.version}, written by ${stored.by}); it runs the cluster's and changes nothing. To change the cluster's schedule, start a worker with SCHEDULE_VERSION=${stored.version + 1}`,
      },
      run: stored.specs,
    };
  });
}

export interface WorkerTuning {
  decisionConcurrency: number;
  /** How long a job's lock lasts without renewal: after it, another worker takes the job over. */
  lockDurationMs: number;
  /** Shown on each job it runs (processedBy): which worker holds a job. */
  name?: string;
}

/**
 * BullMQ at the edge: two queues so a slow model call never delays the stop-loss checks, job
 * schedulers that survive restarts, retries with exponential backoff, and a close that waits for
 * the jobs in flight.
 */
export class AgentQueues {
  readonly decisions: Queue;
  readonly monitors: Queue;
  private workers: Worker[] = [];

  constructor(
    private readonly connection: ConnectionOptions,
    private readonly log: Log,
    private readonly prefix = "bull",
    private readonly watch: RedisWatch = { listener: (source) => (err) => log.warn(source, err), pauseWhileRefused: () => {} },
  ) {
    this.decisions = new Queue("decisions", { connection, prefix });
    this.monitors = new Queue("monitors", { connection, prefix });
    // Without a listener, BullMQ prints every connection error with its stack.
    this.decisions.on("error", watch.listener("decisions queue"));
    this.monitors.on("error", watch.listener("monitors queue"));
  }

  private queueFor(job: ScheduleSpec["job"]): Queue {
    return job === "decide" ? this.decisions : this.monitors;
  }

  /**
   * Installs the schedules `specs` (the cluster's, see claimSchedule) and removes the ones it does
   * not hold. A scheduler already set the same way is left alone, so a worker restarting does not
   * move the next tick.
   */
  async schedule(specs: ScheduleSpec[], decisionsFrom?: number): Promise<void> {
    const wanted = new Map(specs.map((s) => [s.id, s]));
    for (const q of [this.decisions, this.monitors]) {
      for (const existing of await q.getJobSchedulers()) {
        const want = existing.key ? wanted.get(existing.key) : undefined;
        if (existing.key && !want) await q.removeJobScheduler(existing.key);
        else if (want && this.queueFor(want.job) === q && (want.pattern ? existing.pattern === want.pattern : Number(existing.every) === want.every)) wanted.delete(existing.key);
      }
    }
    for (const s of wanted.values()) {
      // `decisionsFrom`: a decision scheduler installed now first runs then (a fresh install, a
      // changed interval), not at once as BullMQ would run a new `every` scheduler.
      const startDate = s.job === "decide" && decisionsFrom !== undefined ? { startDate: decisionsFrom } : {};
      await this.queueFor(s.job).upsertJobScheduler(
        s.id,
        s.pattern ? { pattern: s.pattern, tz: "UTC" } : { every: s.every!, ...startDate },
        {
          name: s.job,
          data: s.data ?? {},
          opts: { attempts: 3, backoff: { type: "exponential", delay: 2_000 }, removeOnComplete: 1000, removeOnFail: 1000 },
        },
      );
    }
  }

  /** Jobs waiting or running, per queue (for /metrics). */
  async depth(): Promise<{ decisions: number; monitors: number }> {
    const count = async (q: Queue) => {
      const c = await q.getJobCounts("waiting", "active", "prioritized");
      return (c.waiting ?? 0) + (c.active ?? 0) + (c.prioritized ?? 0);
    };
    return { decisions: await count(this.decisions), monitors: await count(this.monitors) };
  }

  /** When each schedule runs next (for /status). */
  async upcoming(): Promise<{ id: string; next?: number }[]> {
    const out: { id: string; next?: number }[] = [];
    for (const q of [this.decisions, this.monitors]) {
      for (const s of await q.getJobSchedulers()) out.push({ id: s.key, ...(s.next ? { next: s.next } : {}) });
    }
    return out;
  }

  startWorkers(handler: JobHandler, tuning: WorkerTuning = { decisionConcurrency: 2, lockDurationMs: 30_000 }): void {
    const wrap = (name: string) => async (job: Job) => {
      try {
        return await handler(job);
      } catch (err) {
        this.log.warn(`${name} job ${job.name} (${job.id}) failed, attempt ${job.attemptsMade + 1}`, err);
        throw err;
      }
    };
    // A worker killed mid-job stops renewing the job's lock; after lockDuration another worker's
    // stalled check (every half of it) takes the job back. Several takeovers are allowed, since a
    // job may land on a second worker that dies too; the decision id keeps each job to one decision.
    const recovery = { ...(tuning.name ? { name: tuning.name } : {}), lockDuration: tuning.lockDurationMs, stalledInterval: Math.max(1000, Math.round(tuning.lockDurationMs / 2)), maxStalledCount: 5 };
    this.workers = [
      new Worker("decisions", wrap("decisions"), { connection: this.connection, prefix: this.prefix, concurrency: tuning.decisionConcurrency, ...recovery }),
      new Worker("monitors", wrap("monitors"), { connection: this.connection, prefix: this.prefix, concurrency: 1, ...recovery }),
    ];
    for (const w of this.workers) w.on("error", this.watch.listener(`worker ${w.name}`));
    // While Redis refuses writes, a worker would retry moving the next job at once, forever.
    const workers = this.workers;
    this.watch.pauseWhileRefused({
      pause: async () => void (await Promise.allSettled(workers.map((w) => w.pause(true)))),
      resume: async () => void (await Promise.allSettled(workers.map((w) => w.resume()))),
    });
  }

  /** Waits for running jobs to finish, then disconnects. */
  async close(): Promise<void> {
    await Promise.all(this.workers.map((w) => w.close()));
    await Promise.all([this.decisions.close(), this.monitors.close()]);
  }
}
