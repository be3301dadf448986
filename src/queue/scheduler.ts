import { Queue, Worker, type Job, type ConnectionOptions } from "bullmq";
import type { Log } from "../log.js";

export interface ScheduleSpec {
  /** Scheduler id, e.g. "decide:BTC/USDT". */
  id: string;
  /** Job name the worker dispatches on. */
  job: "decide" | "balance" | "positions" | "report" | "reconcile" | "chain-reconcile" | "rollup";
  data?: Record<string, unknown>;
  every?: number;
  /** Cron pattern (UTC), for the daily jobs. */
  pattern?: string;
  label: string;
}

/** A schedule as /status shows it. */
export interface ScheduleLine {
  name: string;
  every: string;
  next?: number;
}

export type JobHandler = (job: Job) => Promise<unknown>;

/**
 * BullMQ at the edge: two queues so a slow model call never delays the stop-loss checks, job
 * schedulers that survive restarts, retries with exponential backoff, and a close that waits for
 * the jobs in flight.
 */
export class AgentQueues {
  readonly decisions: Queue;
  readonly monitors: Queue;
  private workers: Worker[] = [];

  constructor(private readonly connection: ConnectionOptions, private readonly log: Log, private readonly prefix = "bull") {
    this.decisions = new Queue("decisions", { connection, prefix });
    this.monitors = new Queue("monitors", { connection, prefix });
  }

  private queueFor(job: ScheduleSpec["job"]): Queue {
    return job === "decide" ? this.decisions : this.monitors;
  }

  /** Installs the schedules and removes the ones no longer configured (a symbol taken off the list). */
  async schedule(specs: ScheduleSpec[]): Promise<void> {
    const wanted = new Set(specs.map((s) => s.id));
    for (const q of [this.decisions, this.monitors]) {
      for (const existing of await q.getJobSchedulers()) {
        if (existing.key && !wanted.has(existing.key)) await q.removeJobScheduler(existing.key);
      }
    }
    for (const s of specs) {
      await this.queueFor(s.job).upsertJobScheduler(
        s.id,
        s.pattern ? { pattern: s.pattern, tz: "UTC" } : { every: s.every! },
        {
          name: s.job,
          data: s.data ?? {},
          opts: { attempts: 3, backoff: { type: "exponential", delay: 2_000 }, removeOnComplete: 200, removeOnFail: 500 },
        },
      );
    }
  }

  /** When each schedule runs next (for /status). */
  async upcoming(): Promise<{ id: string; next?: number }[]> {
    const out: { id: string; next?: number }[] = [];
    for (const q of [this.decisions, this.monitors]) {
      for (const s of await q.getJobSchedulers()) out.push({ id: s.key, ...(s.next ? { next: s.next } : {}) });
    }
    return out;
  }

  startWorkers(handler: JobHandler, decisionConcurrency = 2): void {
    const wrap = (name: string) => async (job: Job) => {
      try {
        return await handler(job);
      } catch (err) {
        this.log.warn(`${name} job ${job.name} (${job.id}) failed, attempt ${job.attemptsMade + 1}`, err);
        throw err;
      }
    };
    this.workers = [
      new Worker("decisions", wrap("decisions"), { connection: this.connection, prefix: this.prefix, concurrency: decisionConcurrency }),
      new Worker("monitors", wrap("monitors"), { connection: this.connection, prefix: this.prefix, concurrency: 1 }),
    ];
    for (const w of this.workers) w.on("error", (err) => this.log.error(`worker ${w.name}`, err));
  }

  /** Waits for running jobs to finish, then disconnects. */
  async close(): Promise<void> {
    await Promise.all(this.workers.map((w) => w.close()));
    await Promise.all([this.decisions.close(), this.monitors.close()]);
  }
}
