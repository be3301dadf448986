import { randomUUID } from "node:crypto";
import type { Redis } from "ioredis";
import type { NoticeInput } from "../chat/notices.js";
import type { ChatUser } from "../chat/types.js";
import type { Log } from "../log.js";
import { LEASE_KEY } from "./lease.js";

export const NOTICE_STREAM = "cluster:notices";
const GROUP = "frontends";
const SENT_PREFIX = "cluster:notice:sent:";
const SENT_TTL_SECONDS = 7 * 24 * 3600;
/** Undelivered notices kept at most (oldest dropped past it): days of alerts with no frontend up. */
const MAX_LEN = 50_000;

// Marks a notice delivered and acknowledges it, only while the lease is still ours (fencing): a
// deposed frontend's late ack can neither hide a notice from the new holder nor mark one sent.
const MARK_SENT = `
if redis.call("GET", KEYS[1]) ~= ARGV[1] then return 0 end
redis.call("SET", KEYS[2], "1", "EX", ARGV[4])
redis.call("XACK", KEYS[3], ARGV[2], ARGV[3])
return 1`;

/** A notice as it travels through Redis. */
export interface StreamedNotice {
  id: string;
  raisedAt: number;
  input: NoticeInput;
  origin?: ChatUser;
}

// Pictures (charts) travel as base64; everything else in a notice is plain JSON.
const encode = (v: unknown) => JSON.stringify(v, (_k, x: unknown) => (x instanceof Uint8Array ? { $b64: Buffer.from(x).toString("base64") } : x));
const decode = (s: string): unknown =>
  JSON.parse(s, (_k, x: unknown) => (x && typeof x === "object" && "$b64" in x ? new Uint8Array(Buffer.from(String((x as { $b64: string }).$b64), "base64")) : x));

/** The worker's side: every notice goes into the stream, to be delivered by the active frontend. */
export async function publishNotice(redis: Redis, input: NoticeInput, origin?: ChatUser, now = Date.now()): Promise<string> {
  const id = randomUUID();
  await redis.xadd(NOTICE_STREAM, "MAXLEN", "~", String(MAX_LEN), "*", "id", id, "at", String(now), "notice", encode(input), ...(origin ? ["origin", encode(origin)] : []));
  return id;
}

/** Notices raised and not yet delivered (for /metrics: the backlog while no frontend is up). */
export async function noticeBacklog(redis: Redis): Promise<number> {
  try {
    const groups = (await redis.xinfo("GROUPS", NOTICE_STREAM)) as unknown[][];
    const g = groups.map((row) => toRecord(row)).find((r) => r.name === GROUP);
    if (!g) return await redis.xlen(NOTICE_STREAM);
    return Number(g.pending ?? 0) + Number(g.lag ?? 0);
  } catch {
    return 0;
  }
}

function toRecord(row: unknown[]): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (let i = 0; i + 1 < row.length; i += 2) out[String(row[i])] = row[i + 1];
  return out;
}

export interface NoticeConsumerOptions {
  /** The connection it blocks on (XREADGROUP BLOCK): its own, so other commands never wait behind it. */
  redis: Redis;
  /** The lease id of this frontend (consumer name and fencing token). */
  leaseId: string;
  isActive: () => boolean;
  deliver: (input: NoticeInput, origin?: ChatUser) => Promise<void>;
  lateAfterMs: number;
  log: Log;
  leaseKey?: string;
  clock?: () => number;
}

/**
 * The active frontend's side: reads the stream in a consumer group, oldest first, delivers each
 * notice to the chats, then marks it sent and acks it. On taking over it first claims what the
 * previous frontend read and did not ack. A notice already marked sent is acked and skipped, so a
 * failover never sends one twice; a notice is lost only if its worker's XADD never reached Redis.
 * (One window remains: killed after the platform took the message and before the mark, the next
 * frontend sends it again. It is milliseconds wide; losing an alert would be worse.)
 */
export class NoticeConsumer {
  private running = false;
  private loop: Promise<void> | undefined;
  delivered = 0;
  skippedAsSent = 0;

  constructor(private readonly o: NoticeConsumerOptions) {}

  start(): void {
    if (this.running) return;
    this.running = true;
    this.loop = this.run();
  }

  async stop(): Promise<void> {
    this.running = false;
    await this.loop;
  }

  private async ensureGroup(): Promise<void> {
    try {
      await this.o.redis.xgroup("CREATE", NOTICE_STREAM, GROUP, "0", "MKSTREAM");
    } catch (err) {
      if (!String((err as Error).message).includes("BUSYGROUP")) throw err;
    }
  }

  private async run(): Promise<void> {
    let claimed = false;
    while (this.running) {
      // A renewal late by a busy event loop makes the lease look lapsed for a moment: wait, do not quit.
      if (!this.o.isActive()) {
        await new Promise((r) => setTimeout(r, 200));
        continue;
      }
      try {
        if (!claimed) {
          await this.ensureGroup();
          await this.claimOrphans();
          claimed = true;
        }
        const res = (await this.o.redis.xreadgroup("GROUP", GROUP, this.o.leaseId, "COUNT", 20, "BLOCK", 1000, "STREAMS", NOTICE_STREAM, ">")) as
          | [string, [string, string[]][]][]
          | null;
        for (const [, entries] of res ?? []) {
          // Cut short by a lapse of the lease: what was read and not delivered is pending under
          // our name, and XREADGROUP ">" never hands it out again, so claim it on the next round.
          if (!(await this.handle(entries))) claimed = false;
        }
      } catch (err) {
        const msg = String((err as Error).message);
        // The stream or its group vanished (a Redis without persistence restarted): start over.
        if (msg.includes("NOGROUP")) claimed = false;
        else this.o.log.warn(`notice stream: ${msg}`);
        await new Promise((r) => setTimeout(r, 500));
      }
    }
  }

  /** Takes over what earlier frontends read and did not ack, oldest first. */
  private async claimOrphans(): Promise<void> {
    let cursor = "0-0";
    for (;;) {
      const [next, entries] = (await this.o.redis.xautoclaim(NOTICE_STREAM, GROUP, this.o.leaseId, 0, cursor, "COUNT", 50)) as [string, [string, string[] | null][]];
      if (!(await this.handle(entries.filter((e): e is [string, string[]] => Array.isArray(e[1]))))) throw new Error("the lease lapsed while claiming");
      if (next === "0-0" || !this.running) return;
      cursor = next;
    }
  }

  /** Delivers a batch; false when a lapse of the lease cut it short. */
  private async handle(entries: [string, string[]][]): Promise<boolean> {
    for (const [streamId, fields] of entries) {
      // Stopping still finishes the batch already read (a drain); only losing the lease cuts it short.
      if (!this.o.isActive()) return false;
      const f = toRecord(fields) as Record<string, string>;
      const id = f.id ?? streamId;
      const sentKey = SENT_PREFIX + id;
      if (await this.o.redis.exists(sentKey)) {
        this.skippedAsSent++;
        await this.o.redis.xack(NOTICE_STREAM, GROUP, streamId);
        continue;
      }
      let input: NoticeInput;
      try {
        input = decode(f.notice ?? "{}") as NoticeInput;
      } catch (err) {
        this.o.log.error(`notice ${id} unreadable; dropped`, err);
        await this.o.redis.xack(NOTICE_STREAM, GROUP, streamId);
        continue;
      }
      const raisedAt = Number(f.at ?? 0);
      const delayMs = (this.o.clock ?? Date.now)() - raisedAt;
      if (raisedAt > 0 && delayMs > this.o.lateAfterMs) input = { ...input, late: { raisedAt, delayMs } };
      const origin = f.origin ? (decode(f.origin) as ChatUser) : undefined;
      await this.o.deliver(input, origin);
      this.delivered++;
      await this.o.redis.eval(MARK_SENT, 3, this.o.leaseKey ?? LEASE_KEY, sentKey, NOTICE_STREAM, this.o.leaseId, GROUP, streamId, String(SENT_TTL_SECONDS));
    }
    return true;
  }
}
