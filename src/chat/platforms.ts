// The registry of chat platforms, and what runs them: one entry a platform, each from its own
// folder. Adding one (Slack, Matrix) is its folder with a ChatPlatform and its entry, its name in
// PLATFORM_LABEL (src/chat/types.ts), its settings in src/config/config.ts, and a line here.
import type { ChatHost } from "./host.js";
import { installNoticeCharts } from "./charts/hooks.js";
import { consolePlatform } from "./console/platform.js";
import { discordPlatform } from "./discord/platform.js";
import type { ChatPlatform, ChatPlatformEntry, PlatformIo } from "./platform.js";
import { telegramPlatform } from "./telegram/platform.js";
import { PLATFORM_LABEL, type ChatHealth, type Platform } from "./types.js";

export type { ChatPlatform, ChatPlatformEntry, PlatformIo } from "./platform.js";

/** Every platform the product knows, in the order they start. */
export const CHAT_PLATFORMS: Readonly<Record<Platform, ChatPlatformEntry>> = {
  console: consolePlatform,
  telegram: telegramPlatform,
  discord: discordPlatform,
};

/** What each platform is in this configuration: "on", or why it is off (the startup banner's words). */
export function platformStates(chat: ChatHost["config"]["chat"], io?: PlatformIo): { name: Platform; label: string; off?: string }[] {
  return Object.values(CHAT_PLATFORMS).map((e) => {
    const off = e.offReason(chat, io);
    return { name: e.name, label: PLATFORM_LABEL[e.name], ...(off ? { off } : {}) };
  });
}

export interface ChatPlatforms {
  /** The platforms this process runs, by name. */
  readonly running: ReadonlyMap<Platform, ChatPlatform>;
  /** Resolves when every platform has started or failed (each failure is logged). */
  started: Promise<void>;
  /** Each running platform's health: what /status shows, /metrics and /healthz read. */
  health(): ChatHealth;
  /** Stops them all, each after its replies and notices in flight, and takes them off the notifier (and out of `running`). */
  stop(): Promise<void>;
}

/**
 * Starts every platform that is on, each through the same interface. They start in the
 * background: one that cannot be reached is logged and retried by its library, and never holds up
 * the console, the trading loop or the other platforms. One that fails to start is told to the
 * others (a `chat-down` notice) and shows in the health.
 */
export async function startChatPlatforms(host: ChatHost, io: PlatformIo = {}): Promise<ChatPlatforms> {
  installNoticeCharts(host);
  host.chat.startSweeper();
  const running = new Map<Platform, ChatPlatform>();
  const starting: Promise<void>[] = [];
  for (const entry of Object.values(CHAT_PLATFORMS)) {
    if (entry.offReason(host.config.chat, io) !== undefined) continue;
    const platform = await entry.create(host, io);
    const label = PLATFORM_LABEL[entry.name];
    running.set(entry.name, platform);
    host.notifier.add(platform);
    starting.push(
      platform.start().then(
        () => {
          const ready = platform.readyLine();
          if (ready) host.log.info(`${label}: ${ready}`);
        },
        (err: unknown) => {
          const reason = host.redact(String(err));
          host.notifier.remove(platform);
          platform.failedToStart(reason);
          host.log.error(`${label} did not start`, reason);
          if (entry.name !== "console") void host.notifier.notify({ type: "chat-down", platform: entry.name, since: Date.now(), reason: `it did not start: ${reason}` });
        },
      ),
    );
  }
  return {
    running,
    started: Promise.all(starting).then(() => {}),
    health: () => Object.fromEntries([...running].map(([name, p]) => [name, p.health()])),
    async stop() {
      await host.chat.stop();
      await Promise.allSettled([...running.values()].map((p) => p.stop()));
      // A later takeover starts new ones: these must not stay sinks and send every notice twice,
      // nor be reported on (a standby runs no chat: its health is empty, not stale).
      for (const p of running.values()) host.notifier.remove(p);
      running.clear();
    },
  };
}
