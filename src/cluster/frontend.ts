import type { Redis } from "ioredis";
import type { NotifierHub } from "../chat/notifier.js";
import type { Config } from "../config/config.js";
import type { Log } from "../log.js";
import { FrontendLease, type LeaseState } from "./lease.js";
import { NoticeConsumer, publishNotice } from "./noticeStream.js";

/** What a frontend needs of the composition root. */
export interface FrontendHost {
  redis: Redis;
  log: Log;
  notifier: NotifierHub;
  config: { cluster: Pick<Config["cluster"], "leaseMs" | "noticeLateMs"> };
}

/** Starts this process's chat (Telegram, Discord, the console); resolves to what stops it again. */
export type ChatStarter = () => Promise<() => Promise<void>>;

export interface Frontend {
  state(): LeaseState;
  /** Notices delivered from the stream by this process. */
  delivered(): number;
  stop(): Promise<void>;
}

/**
 * A frontend: chat runs only while this process holds the frontend lease. Notices raised here
 * while it does not (a standby, or role all beside another frontend) go into the notice stream,
 * and the active frontend delivers the stream's notices, those raised while no frontend was up
 * first.
 */
export async function startFrontend(host: FrontendHost, startChat: ChatStarter): Promise<Frontend> {
  // The lease fails fast while Redis is away (no offline queue), so its deadline is honest.
  const leaseRedis = host.redis.duplicate({ enableOfflineQueue: false });
  const streamRedis = host.redis.duplicate();
  leaseRedis.on("error", () => {});
  streamRedis.on("error", () => {});
  await new Promise<void>((resolve) => (leaseRedis.status === "ready" ? resolve() : leaseRedis.once("ready", () => resolve())));

  let stopChat: (() => Promise<void>) | undefined;
  let consumer: NoticeConsumer | undefined;
  let delivered = 0;
  const lease: FrontendLease = new FrontendLease(leaseRedis, {
    ttlMs: host.config.cluster.leaseMs,
    log: host.log,
    onActive: async () => {
      stopChat = await startChat();
      consumer = new NoticeConsumer({
        redis: streamRedis,
        leaseId: lease.leaseId,
        isActive: () => lease.isActive(),
        deliver: (input, origin) => host.notifier.deliverHere(input, origin),
        lateAfterMs: host.config.cluster.noticeLateMs,
        log: host.log,
      });
      consumer.start();
    },
    onInactive: async () => {
      const c = consumer;
      consumer = undefined;
      await c?.stop();
      delivered += c?.delivered ?? 0;
      const stop = stopChat;
      stopChat = undefined;
      await stop?.();
    },
  });
  host.notifier.forwardWhen(
    () => !lease.isActive(),
    async (input, origin) => {
      await publishNotice(host.redis, input, origin);
    },
  );
  await lease.start();
  return {
    state: () => lease.state(),
    delivered: () => delivered + (consumer?.delivered ?? 0),
    async stop() {
      await lease.stop();
      streamRedis.disconnect();
      leaseRedis.disconnect();
    },
  };
}

/** A worker serves no chat: every notice it raises goes to the stream, for the active frontend. */
export function forwardAllNotices(host: Pick<FrontendHost, "redis" | "notifier">): void {
  host.notifier.forwardWhen(
    () => true,
    async (input, origin) => {
      await publishNotice(host.redis, input, origin);
    },
  );
}
