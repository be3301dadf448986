import { randomBytes } from "node:crypto";
import type { Redis } from "ioredis";
import type { Platform, ReplyButton, Role } from "./types.js";

/** Where a message asking for a confirmation was posted, so it can be edited when it resolves. */
export type MessageRef =
  | { platform: "telegram"; chatId: number | string; messageId: number }
  | { platform: "discord"; messageId: string; channelId?: string; webhook?: { appId: string; token: string } }
  | { platform: "console" };

/** Something that waits for a button: a command that asked for a confirmation, or a decision that asked for approval. */
export interface PendingAction {
  id: string;
  kind: "command" | "approval";
  /** What is being confirmed, in words, e.g. "/refill 10". */
  line: string;
  /** kind "command": the command and its parsed arguments, run when confirmed. */
  command?: string;
  args?: unknown;
  /** kind "approval": the decision that waits. */
  decisionId?: string;
  symbol?: string;
  /** Who asked (absent when the agent itself asks, as approvals do). They may always press. */
  requester?: { platform: Platform; id: string; name: string };
  /** Anyone else needs at least this role to press. */
  pressRole: Role;
  /** APPROVALS=2: only someone other than the requester (with pressRole) can confirm; the requester may still cancel. */
  secondApprover?: boolean;
  prompt: string;
  where?: string;
  createdAt: number;
  expiresAt: number;
}

export type PendingState = "pending" | "confirmed" | "cancelled" | "expired";

export type ResolveResult =
  | { result: "won"; action: PendingAction }
  /** It was past its deadline: this call expired it (and must report that). */
  | { result: "expired"; action: PendingAction }
  | { result: "already"; state: PendingState; by?: string; action: PendingAction }
  | { result: "missing" };

// Check-and-set in one step, so two presses that race (or a press racing the expiry sweep) can
// never both win: exactly one caller moves a pending action on, and only it acts on the result.
const RESOLVE = `
local state = redis.call('HGET', KEYS[1], 'state')
if not state then redis.call('ZREM', KEYS[2], ARGV[4]) return {'missing'} end
if state ~= 'pending' then return {'already', state, redis.call('HGET', KEYS[1], 'by') or ''} end
if tonumber(ARGV[1]) >= tonumber(redis.call('HGET', KEYS[1], 'expiresAt')) then
  redis.call('ZREM', KEYS[2], ARGV[4])
  redis.call('HSET', KEYS[1], 'state', 'expired', 'by', '')
  return {'expired'}
end
if ARGV[2] == 'expire' then return {'pending'} end
redis.call('ZREM', KEYS[2], ARGV[4])
redis.call('HSET', KEYS[1], 'state', ARGV[2], 'by', ARGV[3])
return {'won'}
`;

/** Keeps a record this long after its deadline, so a late press can still be told what happened. */
const KEEP_MS = 2 * 86_400_000;

export const CONFIRM_PREFIX = "cf:";

/** The buttons of a pending action. Telegram allows 64 bytes of callback data: these use 13. */
export function confirmButtons(id: string, labels: { yes: string; no: string } = { yes: "Confirm", no: "Cancel" }): ReplyButton[][] {
  return [[
    { label: labels.yes, action: `${CONFIRM_PREFIX}${id}:ok`, style: "primary" },
    { label: labels.no, action: `${CONFIRM_PREFIX}${id}:no`, style: "danger" },
  ]];
}

export function parseButtonAction(action: string): { id: string; yes: boolean } | undefined {
  const m = /^cf:([A-Za-z0-9_-]{6,24}):(ok|no)$/.exec(action);
  return m ? { id: m[1]!, yes: m[2] === "ok" } : undefined;
}

/**
 * Pending confirmations and approvals in Redis, shared by every platform and process. Deadlines
 * use the app's clock; a sweep expires the ones whose deadline passed unanswered.
 */
export class ConfirmationStore {
  constructor(
    private readonly redis: Redis,
    private readonly clock: () => number,
    private readonly prefix = "confirm:",
  ) {}

  private key(id: string): string {
    return `${this.prefix}${id}`;
  }

  private get pendingKey(): string {
    return `${this.prefix}pending`;
  }

  static newId(): string {
    return randomBytes(6).toString("base64url");
  }

  async create(a: Omit<PendingAction, "id" | "createdAt" | "expiresAt">, ttlMs: number, id = ConfirmationStore.newId()): Promise<PendingAction> {
    const now = this.clock();
    const action: PendingAction = { ...a, id, createdAt: now, expiresAt: now + ttlMs };
    await this.redis
      .multi()
      .hset(this.key(action.id), "data", JSON.stringify(action), "state", "pending", "expiresAt", String(action.expiresAt))
      .pexpire(this.key(action.id), ttlMs + KEEP_MS)
      .zadd(this.pendingKey, action.expiresAt, action.id)
      .exec();
    return action;
  }

  async get(id: string): Promise<{ action: PendingAction; state: PendingState; by?: string } | undefined> {
    const h = await this.redis.hgetall(this.key(id));
    if (!h.data || !h.state) return undefined;
    return { action: JSON.parse(h.data) as PendingAction, state: h.state as PendingState, ...(h.by ? { by: h.by } : {}) };
  }

  /** Moves a pending action to confirmed or cancelled, at most once; past its deadline it expires instead. */
  async resolve(id: string, to: "confirmed" | "cancelled", by: string): Promise<ResolveResult> {
    return this.transition(id, to, by);
  }

  private async transition(id: string, to: "confirmed" | "cancelled" | "expire", by: string): Promise<ResolveResult> {
    const data = await this.redis.hget(this.key(id), "data");
    if (!data) return { result: "missing" };
    const action = JSON.parse(data) as PendingAction;
    const [result, state, who] = (await this.redis.eval(RESOLVE, 2, this.key(id), this.pendingKey, String(this.clock()), to, by, id)) as string[];
    if (result === "won") return { result: "won", action };
    if (result === "expired") return { result: "expired", action };
    if (result === "already") return { result: "already", state: state as PendingState, ...(who ? { by: who } : {}), action };
    if (result === "pending") return { result: "already", state: "pending", action };
    return { result: "missing" };
  }

  /** Expires every pending action past its deadline; returns the ones this call expired. */
  async expireDue(): Promise<PendingAction[]> {
    const now = this.clock();
    const due = await this.redis.zrangebyscore(this.pendingKey, "-inf", now);
    const out: PendingAction[] = [];
    for (const id of due) {
      const r = await this.transition(id, "expire", "");
      if (r.result === "expired") out.push(r.action);
      else if (r.result === "missing") await this.redis.zrem(this.pendingKey, id);
    }
    return out;
  }

  async addRef(id: string, ref: MessageRef): Promise<void> {
    await this.redis.multi().rpush(`${this.key(id)}:refs`, JSON.stringify(ref)).pexpire(`${this.key(id)}:refs`, KEEP_MS).exec();
  }

  async refs(id: string): Promise<MessageRef[]> {
    return (await this.redis.lrange(`${this.key(id)}:refs`, 0, -1)).map((r) => JSON.parse(r) as MessageRef);
  }

  /** One approval per decision, however often its job is retried: returns the id that won. */
  async claimForDecision(decisionId: string, id: string): Promise<string> {
    const key = `${this.prefix}decision:${decisionId}`;
    await this.redis.set(key, id, "PX", KEEP_MS, "NX");
    return (await this.redis.get(key)) ?? id;
  }

  async forDecision(decisionId: string): Promise<string | undefined> {
    return (await this.redis.get(`${this.prefix}decision:${decisionId}`)) ?? undefined;
  }
}
