// How every process connects to Redis, local or managed: the URL (redis:// or rediss:// with TLS,
// a username and password), an optional CA for a server whose certificate no public CA signed, and
// a key prefix so several agents can share one Redis.
//
// Two kinds of connection, on purpose:
//  - ours (createRedis) carries ioredis's `keyPrefix`, which prefixes the keys of every command and
//    the KEYS[] of every Lua script, so the modules keep building their keys as plain strings;
//  - BullMQ's (bullConnection) has no keyPrefix (BullMQ refuses one) and gets the same prefix
//    through its own `prefix` option instead (bullPrefix).
// ioredis does not prefix the patterns of KEYS or SCAN: code that scans must add
// `redis.options.keyPrefix` itself and strip it from what comes back (see scanKeys).
import { readFileSync } from "node:fs";
import { hostname } from "node:os";
import type { ConnectionOptions } from "bullmq";
import { Redis, type RedisOptions } from "ioredis";

export interface RedisSettings {
  url: string;
  /** Prepended to every key; "" for none. Ends with ":" when set. */
  keyPrefix: string;
  /** A PEM file of the CA that signed a rediss:// server's certificate, when no public CA did. */
  tlsCa?: string | undefined;
}

const caCache = new Map<string, string>();

/** The URL without user or password, for messages and logs. */
export function withoutCredentials(url: string): string {
  try {
    const u = new URL(url);
    u.username = "";
    u.password = "";
    return u.toString().replace(/\/$/, "");
  } catch {
    return "(unparseable REDIS_URL)";
  }
}

/** Connection options both kinds share: TLS when the URL is rediss:// (ioredis reads user, password and db from the URL). */
export function connectionOptions(s: RedisSettings): RedisOptions {
  const tls = new URL(s.url).protocol === "rediss:";
  if (!tls) return {};
  if (!s.tlsCa) return { tls: {} };
  let ca = caCache.get(s.tlsCa);
  if (ca === undefined) {
    try {
      ca = readFileSync(s.tlsCa, "utf8");
    } catch (err) {
      throw new Error(`REDIS_TLS_CA: cannot read ${s.tlsCa} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message}); give the path of the CA's PEM file, or leave it empty for a server with a publicly signed certificate`);
    }
    caCache.set(s.tlsCa, ca);
  }
  return { tls: { ca } };
}

/** Every connection of the agent is named `chatops-agent:HOST:PID`, so CLIENT LIST shows which processes use a server. */
export const AGENT_CLIENT_PREFIX = "chatops-agent:";

/** This process's connection name. */
export function agentClientName(): string {
  // CLIENT SETNAME allows no spaces; a host name has none, but keep it to the safe characters.
  return `${AGENT_CLIENT_PREFIX}${hostname().replace(/[^A-Za-z0-9._-]/g, "_")}:${process.pid}`;
}

const urls = new WeakMap<Redis, string>();
const urlOf = (redis: Redis) => urls.get(redis);

/** Our own connection: every key it touches is under the prefix. */
export function createRedis(s: RedisSettings, extra: RedisOptions = {}): Redis {
  const redis = new Redis(s.url, { maxRetriesPerRequest: null, connectionName: agentClientName(), ...connectionOptions(s), ...extra, ...(s.keyPrefix ? { keyPrefix: s.keyPrefix } : {}) });
  urls.set(redis, s.url);
  return redis;
}

/**
 * BullMQ's connection options, checked: BullMQ needs `maxRetriesPerRequest: null` (its blocking
 * commands must wait, not fail after a few retries) and must not get an ioredis keyPrefix.
 */
export function bullConnection(s: RedisSettings, extra: RedisOptions = {}): ConnectionOptions {
  const options = {
    url: s.url,
    ...connectionOptions(s),
    // BullMQ reads the server's version with INFO at connect, and fails where INFO is refused (as
    // some managed Redis do): there it is told to skip the check (checkRedisForBull found out).
    ...(infoRefused.has(s.url) ? { skipVersionCheck: true } : {}),
    ...extra,
    maxRetriesPerRequest: extra.maxRetriesPerRequest === undefined ? null : extra.maxRetriesPerRequest,
  };
  checkBullConnection(options);
  return options as ConnectionOptions;
}

/** Throws a message saying what to change when options would break BullMQ. */
export function checkBullConnection(options: RedisOptions): void {
  if (options.maxRetriesPerRequest !== null) {
    throw new Error(`BullMQ's Redis connection needs maxRetriesPerRequest: null (got ${String(options.maxRetriesPerRequest)}): its workers block on Redis and must not give up after a few retries`);
  }
  if (options.keyPrefix) {
    throw new Error(`BullMQ's Redis connection must not have an ioredis keyPrefix ("${options.keyPrefix}"): give the prefix through BullMQ's own prefix option (bullPrefix)`);
  }
}

/** BullMQ's `prefix` for a queue family under the agent's key prefix, e.g. "agent1:bull". */
export function bullPrefix(s: Pick<RedisSettings, "keyPrefix">, name = "bull"): string {
  return `${s.keyPrefix}${name}`;
}

/**
 * Every key matching `pattern` (a pattern in the connection's own, unprefixed names), by SCAN,
 * returned unprefixed: ioredis prefixes the keys of commands, but neither SCAN's MATCH pattern nor
 * the keys SCAN returns.
 */
export async function scanKeys(redis: Redis, pattern: string, count = 500): Promise<string[]> {
  const prefix = redis.options.keyPrefix ?? "";
  const found: string[] = [];
  let cursor = "0";
  do {
    const [next, batch] = await redis.scan(cursor, "MATCH", prefix + pattern, "COUNT", count);
    cursor = next;
    for (const k of batch) found.push(k.slice(prefix.length));
  } while (cursor !== "0");
  return found;
}

/** Servers (by URL) that refused INFO to this process's user. */
const infoRefused = new Set<string>();

export interface BullRequirements {
  /** The eviction policy, when the server would say. */
  maxmemoryPolicy?: string;
  /** INFO was refused (NOPERM, or the command renamed away). */
  infoRefused?: boolean;
  /** Set when the policy could not be read (managed Redis often disables CONFIG). */
  unknown?: string;
}

/** Reads what BullMQ needs of the server: INFO first (allowed on most managed Redis), CONFIG GET second. */
export async function readBullRequirements(redis: Redis): Promise<BullRequirements> {
  const reasons: string[] = [];
  let refused = false;
  try {
    const info = await redis.info("memory");
    const m = /^maxmemory_policy:(\S+)/m.exec(info);
    if (m) return { maxmemoryPolicy: m[1]! };
    reasons.push("INFO memory has no maxmemory_policy");
  } catch (err) {
    refused = true;
    reasons.push(`INFO refused: ${(err as Error).message}`);
  }
  const known = refused ? { infoRefused: true } : {};
  try {
    const [, policy] = (await redis.config("GET", "maxmemory-policy")) as string[];
    if (policy) return { maxmemoryPolicy: policy, ...known };
    reasons.push("CONFIG GET maxmemory-policy gave nothing");
  } catch (err) {
    reasons.push(`CONFIG GET refused: ${(err as Error).message}`);
  }
  return { unknown: reasons.join("; "), ...known };
}

/**
 * BullMQ's (and the ledger's) need at startup: a server that never evicts keys. An evicted job,
 * ledger entry or order marker could make a retried job pay or order twice, so a known wrong policy
 * stops startup; a policy that cannot be read is only warned about.
 */
export async function checkRedisForBull(redis: Redis, warn: (message: string) => void): Promise<void> {
  const r = await readBullRequirements(redis);
  const url = urlOf(redis);
  if (url) {
    if (r.infoRefused) infoRefused.add(url);
    else infoRefused.delete(url);
  }
  if (r.maxmemoryPolicy === undefined) {
    warn(`could not read Redis's maxmemory-policy (${r.unknown}); make sure it is noeviction, or queued jobs and the books can be evicted under memory pressure`);
    return;
  }
  if (r.maxmemoryPolicy !== "noeviction") {
    throw new Error(
      `Redis's maxmemory-policy is ${r.maxmemoryPolicy}, and the queues and the books need noeviction (an evicted job or ledger entry can make a retry order or pay twice). ` +
        `Set it with \`CONFIG SET maxmemory-policy noeviction\`, in redis.conf, or in your provider's console (often "eviction policy: none")`,
    );
  }
}
