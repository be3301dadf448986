// What this process says when Redis goes away or refuses writes: one line when it starts, one when
// it ends, whatever number of connections, queues, workers and loops run into it meanwhile.
//
// Every log line of the agent passes through `log` here: a line about a connection error is left
// out and turns into the one "unreachable" line (then "back" once the main connection is ready
// again); a line about a refused write (OOM at maxmemory with noeviction, a read-only replica, a
// failed disk save) turns into the one "refuses writes" line, and the job workers registered with
// `pauseWhileRefused` stop taking jobs until a probe write succeeds again. Without that, BullMQ's
// worker loop retries a refused write at once, forever (measured: 7,300 lines a second).
import type { Redis } from "ioredis";
import type { Log } from "../log.js";

const CONNECTION_CODES = new Set(["ECONNREFUSED", "ECONNRESET", "ETIMEDOUT", "EPIPE", "ENOTFOUND", "EHOSTUNREACH", "ENETUNREACH", "EAI_AGAIN", "ECONNABORTED"]);
const CONNECTION_TEXT = /ECONNREFUSED|ECONNRESET|ETIMEDOUT|EPIPE|EHOSTUNREACH|ENETUNREACH|ENOTFOUND|EAI_AGAIN/;
// What only ioredis says: these are Redis's whoever logs them.
const IOREDIS_TEXT = /Connection is closed|Stream isn't writeable|enableOfflineQueue options is false|Reached the max retries per request limit/;
const REFUSAL_TEXT = /^(OOM command not allowed|READONLY|MISCONF)|\b(OOM command not allowed|READONLY You can't write|MISCONF Redis is configured)/;

/** The error a log call carries, if any. */
function errorOf(extra: unknown): { message: string; code?: string } | undefined {
  if (extra instanceof Error) return { message: extra.message, ...((extra as NodeJS.ErrnoException).code ? { code: (extra as NodeJS.ErrnoException).code! } : {}) };
  if (extra && typeof extra === "object" && typeof (extra as { message?: unknown }).message === "string") return extra as { message: string; code?: string };
  return undefined;
}

/**
 * True when `err` (or a log line's text) says a connection to Redis failed, not a command. A
 * generic network error (ECONNREFUSED...) counts only when it came from a Redis object, or names
 * Redis's address (`at`, host:port): a refused connection to Telegram or an exchange is not Redis's.
 */
export function isConnectionError(err: { message?: string; code?: string } | undefined, text = "", from: { redisObject?: boolean; at?: string } = {}): boolean {
  const all = `${err?.message ?? ""} ${text}`;
  if (IOREDIS_TEXT.test(all)) return true;
  const generic = (err?.code !== undefined && CONNECTION_CODES.has(err.code)) || CONNECTION_TEXT.test(all);
  return generic && (from.redisObject === true || (from.at !== undefined && all.includes(from.at)));
}

/** True when Redis refused a write (OOM at maxmemory, a read-only replica, a failed save). */
export function isWriteRefusal(err: { message?: string } | undefined, text = ""): boolean {
  return REFUSAL_TEXT.test(err?.message ?? "") || REFUSAL_TEXT.test(text.replace(/^[^:]*:\s*/, ""));
}

export interface RedisCondition {
  /** "ok", or what is wrong and since when. */
  reachable: boolean;
  writable: boolean;
  /** Since when it is unreachable or refuses writes (ms). */
  since?: number;
  detail?: string;
}

export interface RedisOutageOptions {
  /** The main connection: its "ready" ends an outage, and its probe write ends a refusal. */
  redis: Redis;
  log: Log;
  /** The server's URL without credentials, for the lines. */
  where: string;
  clock?: () => number;
  /** First wait between probe writes while writes are refused; doubled up to maxProbeMs. */
  firstProbeMs?: number;
  maxProbeMs?: number;
}

export class RedisOutage {
  /** The agent's log, with Redis trouble collapsed into one line at each start and end. */
  readonly log: Log;
  private downSince: number | undefined;
  private refusedSince: number | undefined;
  private refusal = "";
  private left = 0;
  private stopping = false;
  private probeTimer: NodeJS.Timeout | undefined;
  private readonly pausers: Array<{ pause(): Promise<void>; resume(): Promise<void> }> = [];
  private readonly clock: () => number;

  private readonly at: string | undefined;
  private readonly lastSaid = new Map<string, number>();

  constructor(private readonly o: RedisOutageOptions) {
    this.clock = o.clock ?? Date.now;
    try {
      const u = new URL(o.where);
      this.at = `${u.hostname}:${u.port || 6379}`;
    } catch {
      this.at = undefined;
    }
    const base = o.log;
    const pass = (level: "warn" | "error") => (msg: string, extra?: unknown) => {
      if (this.absorb(msg, extra, false)) return;
      base[level](msg, extra);
    };
    this.log = { debug: base.debug, info: base.info, warn: pass("warn"), error: pass("error") };
    o.redis.on("ready", () => this.reachableAgain());
  }

  /** An "error" listener for any Redis or BullMQ object (every one needs one: without it BullMQ prints a raw stack). */
  listener(source: string): (err: Error) => void {
    return (err) => {
      if (this.absorb(source, err, true)) return;
      // Anything else a Redis object reports, once a minute at most per message: a loop that hits
      // the same error cannot fill the log.
      const key = `${source}\u0000${err.message}`;
      const last = this.lastSaid.get(key);
      if (last !== undefined && this.clock() - last < 60_000) return;
      this.lastSaid.set(key, this.clock());
      this.o.log.warn(source, err);
    };
  }

  /** Job workers to pause while Redis refuses writes, and resume once it takes them again. */
  pauseWhileRefused(p: { pause(): Promise<void>; resume(): Promise<void> }): void {
    this.pausers.push(p);
    // Workers started while Redis already refuses writes wait like the others.
    if (this.refusedSince !== undefined) void p.pause().catch(() => {});
  }

  condition(): RedisCondition {
    if (this.downSince !== undefined) return { reachable: false, writable: false, since: this.downSince };
    if (this.refusedSince !== undefined) return { reachable: true, writable: false, since: this.refusedSince, detail: this.refusal };
    return { reachable: true, writable: true };
  }

  /** From here on the process is stopping: closed connections are expected, and nothing is said about them. */
  stop(): void {
    this.stopping = true;
    if (this.probeTimer) clearTimeout(this.probeTimer);
  }

  /** True when the line is about Redis trouble already (or now) reported once. */
  private absorb(msg: string, extra: unknown, redisObject: boolean): boolean {
    const err = errorOf(extra);
    if (isConnectionError(err, msg, { redisObject, ...(this.at ? { at: this.at } : {}) })) {
      if (this.stopping) return true;
      // A late error from a connection that had not reconnected yet, while the main one works.
      if (this.o.redis.status === "ready" && this.downSince === undefined) return true;
      if (this.downSince === undefined) {
        this.downSince = this.clock();
        this.left = 0;
        this.o.log.error(`Redis unreachable at ${this.o.where} (${err?.code ?? err?.message ?? msg}); retrying. Jobs, chat state and notices wait until it is back; nothing else will be said until then.`);
      } else this.left++;
      return true;
    }
    if (isWriteRefusal(err, msg)) {
      if (this.stopping) return true;
      if (this.refusedSince === undefined) this.refused(err?.message ?? msg);
      else this.left++;
      return true;
    }
    return false;
  }

  private reachableAgain(): void {
    if (this.downSince === undefined || this.stopping) return;
    const seconds = ((this.clock() - this.downSince) / 1000).toFixed(1);
    this.downSince = undefined;
    this.o.log.info(`Redis is back at ${this.o.where} after ${seconds} s${this.left ? ` (${this.left} messages about it left out)` : ""}`);
    this.left = 0;
  }

  private refused(message: string): void {
    this.refusedSince = this.clock();
    this.refusal = message.split("\n")[0]!.slice(0, 160);
    this.left = 0;
    const first = this.o.firstProbeMs ?? 1_000;
    this.o.log.error(
      `Redis refuses writes (${this.refusal}): the job workers pause and a write is tried again in ${first / 1000} s, then less often; ` +
        "free memory or raise maxmemory (keep maxmemory-policy noeviction). Nothing else will be said until it takes writes again.",
    );
    void Promise.allSettled(this.pausers.map((p) => p.pause()));
    this.scheduleProbe(first);
  }

  /**
   * True when a write goes through and, where INFO says, memory is clear of maxmemory: at the limit
   * one small write can pass (a key just expired) and the next fail, and resuming there would only
   * make the workers run into the wall again.
   */
  private async takesWrites(): Promise<boolean> {
    try {
      // A write that expires on its own: the question is only whether Redis takes one.
      await this.o.redis.set("outage:probe", String(this.clock()), "PX", 60_000);
    } catch {
      return false;
    }
    try {
      const info = await this.o.redis.info("memory");
      const used = Number(/^used_memory:(\d+)/m.exec(info)?.[1]);
      const max = Number(/^maxmemory:(\d+)/m.exec(info)?.[1]);
      if (!max || !used) return true;
      return used < max - Math.max(512 * 1024, max * 0.02);
    } catch {
      // INFO refused (some managed Redis): the write alone decides.
      return true;
    }
  }

  private scheduleProbe(ms: number): void {
    if (this.stopping) return;
    this.probeTimer = setTimeout(() => void this.probe(ms), ms);
    this.probeTimer.unref();
  }

  private async probe(lastMs: number): Promise<void> {
    if (!(await this.takesWrites())) {
      this.scheduleProbe(Math.min(lastMs * 2, this.o.maxProbeMs ?? 30_000));
      return;
    }
    if (this.stopping || this.refusedSince === undefined) return;
    const seconds = ((this.clock() - this.refusedSince) / 1000).toFixed(1);
    this.refusedSince = undefined;
    this.o.log.info(`Redis takes writes again after ${seconds} s${this.left ? ` (${this.left} messages about it left out)` : ""}; the job workers resume`);
    this.left = 0;
    await Promise.allSettled(this.pausers.map((p) => p.resume()));
  }
}
