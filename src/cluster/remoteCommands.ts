import { randomUUID } from "node:crypto";
import { Job, Queue, QueueEvents, Worker, type ConnectionOptions } from "bullmq";
import type { Redis } from "ioredis";
import type { ChatUser, CommandReply } from "../chat/types.js";
import type { Log } from "../log.js";
import type { RedisWatch } from "../queue/scheduler.js";
import { liveWorkers } from "./workers.js";

export const COMMANDS_QUEUE = "commands";

/** A chat command a frontend hands to a worker: what to run and as whom. */
export interface RemoteCall {
  command: string;
  args: unknown;
  user: ChatUser;
  where?: string;
  confirmationId?: string;
  /** The platform's name for the request (see CommandCall.requestId); the job's id when unset. */
  requestId?: string;
}

/** What a worker runs for a remote call; `requestId` is the same when the job is run again after a crash. */
export type RemoteHandler = (call: RemoteCall, requestId: string, progress: (text: string) => Promise<void>) => Promise<CommandReply>;

// Charts travel as base64 in BullMQ's JSON.
const encode = (v: unknown) => JSON.stringify(v, (_k, x: unknown) => (x instanceof Uint8Array ? { $b64: Buffer.from(x).toString("base64") } : x));
const decode = <T>(s: string): T =>
  JSON.parse(s, (_k, x: unknown) => (x && typeof x === "object" && "$b64" in x ? new Uint8Array(Buffer.from(String((x as { $b64: string }).$b64), "base64")) : x)) as T;

interface Pending {
  progress?: (text: string) => Promise<void>;
  settle: (outcome: { reply: CommandReply } | { failed: string }) => void;
}

/**
 * The frontend's side of commands that run on a worker (/decide, /trade, /pause all): one BullMQ
 * job per command, its progress and its answer routed back through QueueEvents to the message that
 * asked. Waiting is asynchronous, so the frontend keeps answering other commands meanwhile.
 */
export class RemoteCommands {
  readonly queue: Queue;
  private readonly events: QueueEvents;
  private readonly pending = new Map<string, Pending>();

  constructor(
    connection: ConnectionOptions,
    private readonly redis: Redis,
    private readonly timeoutMs: number,
    private readonly log: Log,
    prefix = "bull",
  ) {
    this.queue = new Queue(COMMANDS_QUEUE, { connection, prefix });
    this.events = new QueueEvents(COMMANDS_QUEUE, { connection, prefix });
    this.queue.on("error", (err) => log.warn("commands queue", err));
    this.events.on("error", (err) => log.warn("command events", err));
    this.events.on("progress", ({ jobId, data }) => {
      const text = (data as { text?: unknown } | undefined)?.text;
      if (typeof text === "string") void this.pending.get(jobId)?.progress?.(text).catch(() => {});
    });
    this.events.on("completed", ({ jobId, returnvalue }) => {
      const p = this.pending.get(jobId);
      if (p) p.settle({ reply: decode<CommandReply>(String(returnvalue)) });
    });
    this.events.on("failed", ({ jobId, failedReason }) => this.pending.get(jobId)?.settle({ failed: failedReason }));
  }

  async start(): Promise<void> {
    await this.events.waitUntilReady();
  }

  /** Runs a command on a worker and returns its answer, or says why there is none. */
  async run(call: RemoteCall, progress?: (text: string) => Promise<void>): Promise<CommandReply> {
    if ((await liveWorkers(this.redis)).length === 0) {
      return { text: `No worker is running, so /${call.command} cannot run now (it runs on a worker). Start one with \`npm run worker\` (ROLE=worker); nothing was done.`, error: true };
    }
    const jobId = randomUUID();
    const outcome = new Promise<{ reply: CommandReply } | { failed: string } | { timeout: true }>((resolve) => {
      const timer = setTimeout(() => resolve({ timeout: true }), this.timeoutMs);
      // Events can be missed (a reconnect to Redis): the job itself is looked at every 2 s as well.
      const poll = setInterval(() => void this.poll(jobId), 2_000);
      this.pending.set(jobId, {
        ...(progress ? { progress } : {}),
        settle: (o) => {
          clearTimeout(timer);
          clearInterval(poll);
          resolve(o);
        },
      });
    });
    try {
      await this.queue.add(call.command, { call: encode(call) }, { jobId, attempts: 1, removeOnComplete: { age: 3600, count: 1000 }, removeOnFail: { age: 24 * 3600 } });
      const o = await outcome;
      if ("reply" in o) return o.reply;
      if ("failed" in o) return { text: `/${call.command} failed on the worker: ${o.failed.slice(0, 300)}`, error: true };
      return {
        text: `No answer from a worker within ${Math.round(this.timeoutMs / 1000)} s: the workers are busy or stopped. /${call.command} stays queued (job ${jobId}) and runs once; its trades and notices are posted as usual.`,
        error: true,
      };
    } finally {
      this.pending.get(jobId)?.settle({ failed: "abandoned" });
      this.pending.delete(jobId);
    }
  }

  private async poll(jobId: string): Promise<void> {
    try {
      const job = await Job.fromId(this.queue, jobId);
      if (!job) return;
      const state = await job.getState();
      if (state === "completed") this.pending.get(jobId)?.settle({ reply: decode<CommandReply>(String(job.returnvalue)) });
      else if (state === "failed") this.pending.get(jobId)?.settle({ failed: job.failedReason });
    } catch {
      // Redis is away; the next poll or the event will tell.
    }
  }

  /** Jobs waiting for a worker (for /metrics). */
  async depth(): Promise<number> {
    return (await this.queue.getWaitingCount()) + (await this.queue.getActiveCount());
  }

  async close(): Promise<void> {
    await Promise.allSettled([this.events.close(), this.queue.close()]);
  }
}

/** The worker's side: runs remote calls, reporting progress as the job's progress. */
export function commandWorker(connection: ConnectionOptions, handler: RemoteHandler, opts: { prefix?: string; lockDuration: number; log: Log; concurrency?: number; watch?: RedisWatch }): Worker {
  const w = new Worker(
    COMMANDS_QUEUE,
    async (job) => {
      const call = decode<RemoteCall>(String((job.data as { call: string }).call));
      // The frontend's request id when it has one: a redelivered chat message becomes a new job,
      // and must still make the same decision and order ids as the first.
      const reply = await handler(call, call.requestId ?? `job-${job.id}`, async (text) => {
        await job.updateProgress({ text });
      });
      return encode(reply);
    },
    { connection, prefix: opts.prefix ?? "bull", concurrency: opts.concurrency ?? 4, lockDuration: opts.lockDuration, stalledInterval: Math.max(1000, Math.round(opts.lockDuration / 2)), maxStalledCount: 5 },
  );
  w.on("error", opts.watch?.listener("command worker") ?? ((err) => opts.log.warn("command worker", err)));
  opts.watch?.pauseWhileRefused({ pause: () => w.pause(true), resume: async () => w.resume() });
  return w;
}
