// Who may look at the dashboard, with nothing new to remember: Telegram's signed Mini App
// `initData`, or a short-lived personal link made by /dashboard. Either way the role comes from
// the same allow-list as the commands, read again at every request, so /revoke ends a link at once.
import { createHmac, randomBytes, timingSafeEqual } from "node:crypto";
import type { Redis } from "ioredis";
import { ROLE_RANK, type Platform, type Role } from "../chat/types.js";

/** Someone let in, and how. */
export interface DashboardViewer {
  platform: Platform;
  id: string;
  name: string;
  role: Role;
  via: "telegram" | "link";
  /** When the link stops working (links only). */
  expiresAt?: number;
}

export type AuthResult = { ok: true; viewer: DashboardViewer } | { ok: false; why: string; claimed?: { platform: Platform; id: string; name: string } };

const b64url = (b: Buffer | string) => Buffer.from(b).toString("base64url");
const hmac = (key: Buffer | string, data: string) => createHmac("sha256", key).update(data).digest();

function sameBytes(a: Buffer, b: Buffer): boolean {
  return a.length === b.length && timingSafeEqual(a, b);
}

/**
 * Checks a Telegram Mini App's `initData` as Telegram documents it: the data-check-string is every
 * field but `hash`, as key=value, sorted by key, joined with newlines; the key is
 * HMAC-SHA256("WebAppData", bot token); the hash is hex HMAC-SHA256 of the string under that key.
 * `auth_date` older than `maxAgeMs` is refused (a copied initData must not work for ever).
 */
export function checkInitData(initData: string, botToken: string, now: number, maxAgeMs: number): { ok: true; user: { id: string; name: string }; authDate: number } | { ok: false; why: string } {
  let params: URLSearchParams;
  try {
    params = new URLSearchParams(initData);
  } catch {
    return { ok: false, why: "the Telegram sign-in data cannot be read" };
  }
  const hash = params.get("hash");
  if (!hash || !/^[0-9a-f]{64}$/.test(hash)) return { ok: false, why: "the Telegram sign-in data has no valid hash" };
  const pairs: string[] = [];
  for (const [k, v] of params) if (k !== "hash") pairs.push(`${k}=${v}`);
  pairs.sort();
  const secret = hmac("WebAppData", botToken);
  if (!sameBytes(hmac(secret, pairs.join("\n")), Buffer.from(hash, "hex"))) return { ok: false, why: "the Telegram sign-in data is not signed by this bot" };
  const authDate = Number(params.get("auth_date"));
  if (!Number.isFinite(authDate) || authDate <= 0) return { ok: false, why: "the Telegram sign-in data has no auth_date" };
  const age = now - authDate * 1000;
  if (age > maxAgeMs) return { ok: false, why: `the Telegram sign-in data is ${Math.round(age / 60_000)} min old (at most ${Math.round(maxAgeMs / 60_000)} min)` };
  if (age < -5 * 60_000) return { ok: false, why: "the Telegram sign-in data is dated in the future" };
  let user: { id?: number | string; username?: string; first_name?: string; last_name?: string };
  try {
    user = JSON.parse(params.get("user") ?? "") as typeof user;
  } catch {
    return { ok: false, why: "the Telegram sign-in data names no user" };
  }
  if (user.id === undefined || !/^\d+$/.test(String(user.id))) return { ok: false, why: "the Telegram sign-in data names no user" };
  const name = user.username ? `@${user.username}` : [user.first_name, user.last_name].filter(Boolean).join(" ") || String(user.id);
  return { ok: true, user: { id: String(user.id), name }, authDate };
}

/** What a personal link says: who, which role, and from when to when. */
export interface LinkClaim {
  platform: Platform;
  id: string;
  name: string;
  role: Role;
  /** Issued and expires, epoch ms. */
  iat: number;
  exp: number;
}

/** A link token: base64url(JSON claim) "." base64url(HMAC-SHA256 of that part). */
export function signLink(claim: LinkClaim, secret: string): string {
  const body = b64url(JSON.stringify({ p: claim.platform, u: claim.id, n: claim.name, r: claim.role, iat: claim.iat, exp: claim.exp }));
  return `${body}.${b64url(hmac(secret, body))}`;
}

/** The claim of a link, unchecked: only to say whose refused link it was in the audit log. */
export function peekLink(token: string): { platform: Platform; id: string; name: string } | undefined {
  try {
    const c = JSON.parse(Buffer.from(token.split(".")[0] ?? "", "base64url").toString("utf8")) as { p?: unknown; u?: unknown; n?: unknown };
    if (typeof c.p !== "string" || typeof c.u !== "string") return undefined;
    if (!["console", "telegram", "discord"].includes(c.p)) return undefined;
    return { platform: c.p as Platform, id: c.u.slice(0, 40), name: typeof c.n === "string" ? c.n.slice(0, 60) : "?" };
  } catch {
    return undefined;
  }
}

export function verifyLink(token: string, secret: string, now: number): { ok: true; claim: LinkClaim } | { ok: false; why: string } {
  const [body, sig, extra] = token.split(".");
  if (!body || !sig || extra !== undefined || token.length > 2000) return { ok: false, why: "the link is damaged" };
  if (!sameBytes(hmac(secret, body), Buffer.from(sig, "base64url"))) return { ok: false, why: "the link's signature is wrong" };
  let c: { p: Platform; u: string; n: string; r: Role; iat: number; exp: number };
  try {
    c = JSON.parse(Buffer.from(body, "base64url").toString("utf8")) as typeof c;
  } catch {
    return { ok: false, why: "the link is damaged" };
  }
  if (!(c.r in ROLE_RANK)) return { ok: false, why: "the link is damaged" };
  if (!(now < c.exp)) return { ok: false, why: `the link expired at ${new Date(c.exp).toISOString().slice(0, 16).replace("T", " ")} UTC` };
  return { ok: true, claim: { platform: c.p, id: c.u, name: c.n, role: c.r, iat: c.iat, exp: c.exp } };
}

/** The key that signs links: DASHBOARD_SECRET, or one made once and kept in Redis for every process. */
export async function linkSecret(redis: Redis, configured: string | undefined, key = "dashboard:secret"): Promise<string> {
  if (configured) return configured;
  await redis.set(key, randomBytes(32).toString("base64url"), "NX");
  const s = await redis.get(key);
  if (!s) throw new Error("the dashboard's link key could not be kept in Redis");
  return s;
}

/** The allow-list, as the dashboard asks it at every request. */
export interface AccessReader {
  roleOf(platform: Platform, id: string): Promise<Role | undefined>;
  /** When an admin last changed this person's access from chat (/grant, /revoke), if ever. */
  changedAt(platform: Platform, id: string): Promise<number | undefined>;
  /** Discord roles map to bot roles (a person may have access through a Discord role alone). */
  hasRoleMap: boolean;
}

const lower = (a: Role, b: Role): Role => (ROLE_RANK[a] <= ROLE_RANK[b] ? a : b);

/**
 * The role a link's holder has now. A link made before an admin changed the person's access is
 * refused (a /revoke, or a /grant that lowered it, ends the links already out); otherwise the
 * lower of the link's role and the allow-list's. Someone on Discord with a mapped Discord role
 * only (not listed by id) keeps the link's role: the guild is not asked here, the link's short
 * life bounds it, and a /revoke still ends it.
 */
export async function standing(access: AccessReader, claim: Pick<LinkClaim, "platform" | "id" | "role" | "iat">): Promise<{ ok: true; role: Role } | { ok: false; why: string }> {
  if (claim.platform === "console") return { ok: true, role: claim.role };
  const [role, changed] = await Promise.all([access.roleOf(claim.platform, claim.id), access.changedAt(claim.platform, claim.id)]);
  if (changed !== undefined && changed > claim.iat) return { ok: false, why: "your access was changed after this link was made" };
  if (role) return { ok: true, role: lower(role, claim.role) };
  if (claim.platform === "discord" && changed === undefined && access.hasRoleMap) return { ok: true, role: claim.role };
  return { ok: false, why: "you are not on the allow-list" };
}
