import type { Transformer } from "grammy";
import { sleep, type RateLimiter } from "../outbox.js";

// Calls that post into a chat count against its flood limits; reads and callback answers do not.
const PACED = /^(send|edit|copy|forward)/;

/**
 * Flood control for every Bot API call, in one place: outgoing messages are paced per chat by
 * `limiter`, and a 429 is retried after the `retry_after` Telegram asks for (up to `maxRetries`
 * times, and only when the wait is at most `maxWaitS`; longer waits fail the call instead).
 */
export function floodControl(limiter: RateLimiter, onWait: (method: string, seconds: number) => void, maxRetries = 3, maxWaitS = 60): Transformer {
  return async (prev, method, payload, signal) => {
    const chat = (payload as { chat_id?: unknown } | undefined)?.chat_id;
    if (chat !== undefined && PACED.test(method)) await limiter.take(String(chat));
    for (let attempt = 0; ; attempt++) {
      const res = await prev(method, payload, signal);
      if (res.ok || res.error_code !== 429 || attempt >= maxRetries) return res;
      const wait = res.parameters?.retry_after ?? 1;
      if (wait > maxWaitS) return res;
      onWait(method, wait);
      await sleep(wait * 1000);
    }
  };
}
