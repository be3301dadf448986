import { sleep } from "../sleep.js";

/** A token bucket: `burst` messages at once, then `perSecond` on average. */
export interface Rate {
  burst: number;
  perSecond: number;
}

interface Bucket {
  tokens: number;
  at: number;
}

/**
 * Paces outgoing messages per chat and overall, so the bot stays under a platform's flood limits
 * instead of running into them. `take` waits until a message may go, and says how long it waited.
 */
export class RateLimiter {
  private readonly buckets = new Map<string, Bucket>();

  constructor(
    private readonly perChat: (key: string) => Rate,
    private readonly global: Rate,
    private readonly now: () => number = () => performance.now(),
  ) {}

  private wait(key: string, rate: Rate): number {
    const t = this.now();
    const b = this.buckets.get(key) ?? { tokens: rate.burst, at: t };
    b.tokens = Math.min(rate.burst, b.tokens + ((t - b.at) / 1000) * rate.perSecond);
    b.at = t;
    this.buckets.set(key, b);
    return b.tokens >= 1 ? 0 : ((1 - b.tokens) / rate.perSecond) * 1000;
  }

  async take(key: string): Promise<number> {
    let waited = 0;
    for (;;) {
      const w = Math.max(this.wait(`chat:${key}`, this.perChat(key)), this.wait("*", this.global));
      if (w <= 0) {
        this.buckets.get(`chat:${key}`)!.tokens -= 1;
        this.buckets.get("*")!.tokens -= 1;
        return waited;
      }
      await sleep(w);
      waited += w;
    }
  }
}

/**
 * Telegram: about one message a second in a chat, 20 a minute in a group, 30 a second overall.
 * Kept instead of @grammyjs/transformer-throttler: Bottleneck costs 5-10 ms of timer hops on every
 * call even when nothing needs to wait, and its defaults allow no burst (docs/chat.md, Numbers).
 * Discord needs none: discord.js's REST queue follows the buckets Discord announces.
 */
export const telegramLimiter = () =>
  new RateLimiter((chat) => (chat.startsWith("-") ? { burst: 10, perSecond: 20 / 60 } : { burst: 10, perSecond: 1 }), { burst: 30, perSecond: 30 });
