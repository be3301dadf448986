// What /healthz (and the agent_health gauges) report: each part the process depends on, checked
// on its own, so a worker whose jobs are stuck or a frontend whose chats fail is not "healthy"
// because Redis answers a PING. A part is ok, or failing with a detail that says what to look at.
import { Queue, type ConnectionOptions } from "bullmq";
import { withTimeout } from "./metrics.js";

export interface PartHealth {
  ok: boolean;
  /** What is wrong (or, when ok, a short fact worth showing: "2 live"). */
  detail?: string;
}

/** One part of the process: "redis", "queues", "workers", "chat:telegram", "chain". */
export interface HealthCheck {
  part: string;
  check(): Promise<PartHealth> | PartHealth;
}

/** The parts' results, failing ones named. */
export interface PartsHealth {
  ok: boolean;
  failing: string[];
  parts: Record<string, PartHealth>;
}

/** Runs every check, each within `timeoutMs` (a part that does not answer in time is failing). */
export async function checkParts(checks: readonly HealthCheck[], timeoutMs = 1_000): Promise<PartsHealth> {
  const results = await Promise.all(
    checks.map(async (c): Promise<[string, PartHealth]> => {
      try {
        return [c.part, await withTimeout(Promise.resolve().then(() => c.check()), timeoutMs)];
      } catch (err) {
        return [c.part, { ok: false, detail: `check failed: ${(err as Error).message}` }];
      }
    }),
  );
  const parts = Object.fromEntries(results);
  const failing = results.filter(([, r]) => !r.ok).map(([p]) => p);
  return { ok: failing.length === 0, failing, parts };
}

/** Redis answers PING, and takes writes (a full Redis answers PING and refuses every write). */
export function redisCheck(redis: { ping(): Promise<string> }, condition?: () => { writable: boolean; reachable: boolean; detail?: string; since?: number }): HealthCheck {
  return {
    part: "redis",
    async check() {
      let reply: string;
      try {
        reply = await redis.ping();
      } catch (err) {
        return { ok: false, detail: `down: ${(err as Error).message}` };
      }
      if (reply !== "PONG") return { ok: false, detail: "unexpected reply to PING" };
      const c = condition?.();
      if (c && !c.writable) return { ok: false, detail: `refuses writes${c.detail ? ` (${c.detail})` : ""}${c.since ? ` for ${Math.round((Date.now() - c.since) / 1000)} s` : ""}` };
      return { ok: true };
    },
  };
}

/**
 * The queues move: failing when a job that was due more than `stuckAfterMs` ago is still waiting
 * (no worker takes jobs, or every one is stuck). Reads through queue handles of its own.
 */
export function queuesCheck(o: { connection: ConnectionOptions; prefix: string; names: readonly string[]; stuckAfterMs: number; onError: (source: string) => (err: Error) => void; clock?: () => number }): HealthCheck & { close(): Promise<void> } {
  const clock = o.clock ?? Date.now;
  let queues: Queue[] | undefined;
  const open = () =>
    (queues ??= o.names.map((name) => {
      const q = new Queue(name, { connection: o.connection, prefix: o.prefix });
      q.on("error", o.onError(`health ${name} queue`));
      return q;
    }));
  return {
    part: "queues",
    async check() {
      const late: string[] = [];
      for (const q of open()) {
        // The oldest job waiting: a delayed job counts from when it became due, not when it was made.
        const [oldest] = await q.getJobs(["wait"], 0, 0, true);
        if (!oldest) continue;
        const waitedMs = clock() - (oldest.timestamp + (oldest.delay ?? 0));
        if (waitedMs > o.stuckAfterMs) late.push(`${q.name}: a job has waited ${Math.round(waitedMs / 1000)} s for a worker`);
      }
      return late.length ? { ok: false, detail: late.join("; ") } : { ok: true };
    },
    async close() {
      await Promise.allSettled((queues ?? []).map((q) => q.close()));
    },
  };
}

/**
 * The workers' heartbeats: in a worker (or role all, once its jobs run), its own heartbeat is
 * live; in any role, at least one worker of the cluster is, or nothing runs the jobs.
 */
export function workersCheck(o: { live: () => Promise<string[]>; self?: () => string | undefined }): HealthCheck {
  return {
    part: "workers",
    async check() {
      const live = await o.live();
      const self = o.self?.();
      if (self && !live.includes(self)) return { ok: false, detail: `this worker's heartbeat (${self}) is not being written` };
      if (live.length === 0) return { ok: false, detail: "no worker is running: scheduled decisions, monitors and /decide wait (start one with npm run worker)" };
      return { ok: true, detail: `${live.length} live` };
    },
  };
}

/** Each chat platform's delivery, as the platform reports it (src/chat/platform.ts health()): failing while it says so. */
export function chatChecks(platforms: readonly string[], health: () => Partial<Record<string, { ok: boolean; problems: string[] }>> | undefined): HealthCheck[] {
  return platforms.map((platform) => ({
    part: `chat:${platform}`,
    check() {
      const h = health()?.[platform];
      return !h || h.ok ? { ok: true } : { ok: false, detail: h.problems.join("; ") || "failing" };
    },
  }));
}

/** The chain's JSON-RPC endpoint answers eth_blockNumber (the wallet's balance and the chain reconciliation read through it). */
export function chainCheck(rpcUrl: () => Promise<string>): HealthCheck {
  return {
    part: "chain",
    async check() {
      const url = await rpcUrl();
      let res: Response;
      try {
        res = await fetch(url, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ jsonrpc: "2.0", id: 1, method: "eth_blockNumber", params: [] }) });
      } catch (err) {
        return { ok: false, detail: `RPC unreachable: ${(err as Error).message}` };
      }
      const body = (await res.json().catch(() => undefined)) as { result?: string; error?: { message?: string } } | undefined;
      if (!res.ok || !body?.result) return { ok: false, detail: `RPC answered ${res.status}${body?.error?.message ? `: ${body.error.message}` : ""}` };
      return { ok: true, detail: `block ${Number(BigInt(body.result))}` };
    },
  };
}
