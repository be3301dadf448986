import { autoRetry } from "@grammyjs/auto-retry";
import { apiThrottler, type APIThrottlerOptions } from "@grammyjs/transformer-throttler";
import type { Transformer } from "grammy";

export type { APIThrottlerOptions };

/**
 * Telegram's flood limits as Bottleneck token buckets: in a private chat 10 messages at once, then
 * one a second; in a group 10 at once, then 20 a minute; 30 a second overall. The throttler's own
 * defaults allow no burst at all (one message a second, always), which made a reply split in three
 * parts take two seconds to arrive; a short burst is within what Telegram tolerates.
 */
export const TELEGRAM_PACING: APIThrottlerOptions = {
  global: { reservoir: 30, reservoirIncreaseAmount: 1, reservoirIncreaseInterval: 1000 / 30, reservoirIncreaseMaximum: 30 },
  group: { maxConcurrent: 1, reservoir: 10, reservoirIncreaseAmount: 1, reservoirIncreaseInterval: 3000, reservoirIncreaseMaximum: 10 },
  out: { maxConcurrent: 1, reservoir: 10, reservoirIncreaseAmount: 1, reservoirIncreaseInterval: 1000, reservoirIncreaseMaximum: 10 },
};

export interface FloodOptions {
  /** Bottleneck settings for the throttler; TELEGRAM_PACING when unset. */
  pacing?: APIThrottlerOptions;
  /** Told about every 429 before it is waited out. */
  onWait: (method: string, seconds: number) => void;
  maxRetries?: number;
  /** A longer retry_after fails the call instead of holding the reply up. */
  maxWaitS?: number;
}

/**
 * The Bot API transformers, in the order to install them (`api.config.use(...)`: each one wraps
 * those before it). Outermost, auto-retry waits out a 429's retry_after (and retries
 * a 5xx a few times), the throttler keeps sends under the flood limits (a retry queues again), and
 * the innermost one only reports each 429 it sees so the wait shows in the log.
 */
export function floodControl(opts: FloodOptions): Transformer[] {
  const report: Transformer = async (prev, method, payload, signal) => {
    const res = await prev(method, payload, signal);
    if (!res.ok && res.error_code === 429) opts.onWait(method, res.parameters?.retry_after ?? 0);
    return res;
  };
  return [
    report,
    apiThrottler(opts.pacing ?? TELEGRAM_PACING),
    // Network errors fail at once, as grammy's own would: a reply must not hang for an hour.
    autoRetry({ maxRetryAttempts: opts.maxRetries ?? 3, maxDelaySeconds: opts.maxWaitS ?? 60, rethrowHttpErrors: true }),
  ];
}
