// Why a payment did not happen, from either side: our own guardrails refused to pay, or the
// gateway answered with a wait (Retry-After). Pure.

/**
 * Our own guardrails: the price per call, the per-decision ceiling, the daily/monthly budget, the
 * balance rule; and a permit session that must wait for the router to apply the last permit.
 */
export type SpendGuard = "price" | "ceiling" | "budget" | "balance" | "session";

/** Retry-After in milliseconds, from seconds or an HTTP date. */
export function parseRetryAfter(value: string | null, now = Date.now()): number | undefined {
  if (!value) return undefined;
  const seconds = Number(value);
  if (Number.isFinite(seconds) && seconds >= 0) return Math.round(seconds * 1000);
  const at = Date.parse(value);
  return Number.isFinite(at) ? Math.max(0, at - now) : undefined;
}
