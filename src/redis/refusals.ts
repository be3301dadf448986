// What Redis says when it refuses a write, in words for a person. The raw reply names a script's
// sha and line, which tells a trader nothing.

/** A plain sentence for a Redis refusal (full, read-only, cannot persist), or undefined for any other error. */
export function redisRefusal(err: unknown): string | undefined {
  const m = err instanceof Error ? err.message : String(err);
  if (/OOM command not allowed|used memory > 'maxmemory'/i.test(m)) {
    return "the agent's Redis is full (maxmemory reached), so nothing more is paid or traded until it has room; a payment already made is booked once it has. Free memory, or raise maxmemory";
  }
  if (/^READONLY|READONLY You can't write/i.test(m)) return "the agent's Redis is a read-only replica: point REDIS_URL at the primary";
  if (/^MISCONF|MISCONF /i.test(m)) return "the agent's Redis cannot save to disk, so it refuses writes: check its disk and logs";
  return undefined;
}
