import type { Redis } from "ioredis";

export type PauseReason = "manual" | "critical-balance" | "budget";
export interface PauseState {
  paused: boolean;
  reason?: PauseReason;
  by?: string;
  since?: number;
}

/** /stopentry: no new buys, while exits, stops and take-profits keep working. */
export interface EntryStop {
  stopped: boolean;
  by?: string;
  since?: number;
}

/**
 * Switches shared by every worker and kept across restarts: whether trading is paused, and which
 * model the team chose. Read at the start of every decision and again right before any order, so
 * /pause takes effect at once everywhere.
 */
export class AgentState {
  constructor(private readonly redis: Redis, private readonly prefix = "agent:") {}

  /** The pause and the chosen model in one read: a decision needs both before it starts. */
  async forDecision(): Promise<{ pause: PauseState; chosenModel: string | undefined }> {
    const [pause, model] = await this.redis.mget(this.prefix + "pause", this.prefix + "model");
    return { pause: pause ? (JSON.parse(pause) as PauseState) : { paused: false }, chosenModel: model ?? undefined };
  }

  async pauseState(): Promise<PauseState> {
    const raw = await this.redis.get(this.prefix + "pause");
    return raw ? (JSON.parse(raw) as PauseState) : { paused: false };
  }

  async isPaused(): Promise<boolean> {
    return (await this.pauseState()).paused;
  }

  /** Returns false when trading was already paused (the first reason is kept). */
  async pause(reason: PauseReason, by: string, now = Date.now()): Promise<boolean> {
    const state: PauseState = { paused: true, reason, by, since: now };
    return (await this.redis.set(this.prefix + "pause", JSON.stringify(state), "NX")) === "OK";
  }

  /** Lifts a pause. With `onlyIf`, lifts it only when it was paused for that reason. */
  async resume(onlyIf?: PauseReason): Promise<boolean> {
    if (onlyIf) {
      const current = await this.pauseState();
      if (!current.paused || current.reason !== onlyIf) return false;
    }
    return (await this.redis.del(this.prefix + "pause")) > 0;
  }

  /** Whether new entries (buys) are stopped by /stopentry, and by whom; exits keep working either way. */
  async entryStop(): Promise<EntryStop> {
    const raw = await this.redis.get(this.prefix + "entry-stop");
    return raw ? (JSON.parse(raw) as EntryStop) : { stopped: false };
  }

  /** Returns false when entries were stopped already (the first one who stopped them is kept). */
  async stopEntries(by: string, now = Date.now()): Promise<boolean> {
    const state: EntryStop = { stopped: true, by, since: now };
    return (await this.redis.set(this.prefix + "entry-stop", JSON.stringify(state), "NX")) === "OK";
  }

  /** Returns false when entries were not stopped. */
  async allowEntries(): Promise<boolean> {
    return (await this.redis.del(this.prefix + "entry-stop")) > 0;
  }

  /** The model the team chose with /model, or undefined for the configured default. */
  async chosenModel(): Promise<string | undefined> {
    return (await this.redis.get(this.prefix + "model")) ?? undefined;
  }

  async chooseModel(model: string | undefined): Promise<void> {
    if (model === undefined) await this.redis.del(this.prefix + "model");
    else await this.redis.set(this.prefix + "model", model);
  }

  /** The wall-clock origin of the market replay, fixed at first start so a restart continues it. */
  async replayEpoch(now = Date.now()): Promise<number> {
    await this.redis.set(this.prefix + "replay-epoch", String(now), "NX");
    return Number(await this.redis.get(this.prefix + "replay-epoch"));
  }

  /** Records the balance level the monitor saw; returns the level it saw before (null the first time). */
  async swapBalanceLevel(level: string): Promise<string | null> {
    return this.redis.getset("monitor:balance-level", level);
  }
}
