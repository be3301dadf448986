import { autoRetry } from "@grammyjs/auto-retry";
import type { Transformer } from "grammy";
import type { RateLimiter } from "../outbox.js";

// Calls that post into a chat count against its flood limits; reads and callback answers do not.
const PACED = /^(send|edit|copy|forward)/;

export interface FloodOptions {
  limiter: RateLimiter;
  /** Told about every 429 before it is waited out. */
  onWait: (method: string, seconds: number) => void;
  maxRetries?: number;
  /** A longer retry_after fails the call instead of holding the reply up. */
  maxWaitS?: number;
}

/**
 * Flood control for every Bot API call, as transformers in the order to install them
 * (`api.config.use(...)`: each wraps those before it). Innermost, a report of each 429 so the wait
 * shows in the log; then the pacing of posts per chat; outermost, @grammyjs/auto-retry, which waits
 * out a 429's retry_after (and retries a 5xx a few times), so a retry is paced again.
 */
export function floodControl(opts: FloodOptions): Transformer[] {
  const report: Transformer = async (prev, method, payload, signal) => {
    const res = await prev(method, payload, signal);
    if (!res.ok && res.error_code === 429) opts.onWait(method, res.parameters?.retry_after ?? 0);
    return res;
  };
  const pace: Transformer = async (prev, method, payload, signal) => {
    const chat = (payload as { chat_id?: unknown } | undefined)?.chat_id;
    if (chat !== undefined && PACED.test(method)) await opts.limiter.take(String(chat));
    return prev(method, payload, signal);
  };
  return [
    report,
    pace,
    // Network errors fail at once, as before: a reply must not hang for up to an hour of backoff.
    autoRetry({ maxRetryAttempts: opts.maxRetries ?? 3, maxDelaySeconds: opts.maxWaitS ?? 60, rethrowHttpErrors: true }),
  ];
}
