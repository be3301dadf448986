// The ways into the dashboard that /dashboard hands out: a personal link (signed, short-lived,
// naming the person and their role), or on Telegram the Mini App button.
import type { Redis } from "ioredis";
import type { ChatUser } from "../chat/types.js";
import { linkSecret, signLink } from "./auth.js";

export interface DashboardLinks {
  /** Where people reach the dashboard, or undefined when it is not served (no DASHBOARD_PORT nor DASHBOARD_PUBLIC_URL). */
  readonly baseUrl: string | undefined;
  /** The Mini App's address (Telegram opens only https ones), when there is one. */
  readonly miniAppUrl: string | undefined;
  readonly linkMs: number;
  /** The server is up at this address: links name it unless DASHBOARD_PUBLIC_URL says otherwise (port 0 gets a free one). */
  servedAt(url: string): void;
  /** A personal link for this person, valid `linkMs` from now. */
  personalLink(user: Pick<ChatUser, "platform" | "id" | "name" | "role">): Promise<{ url: string; expiresAt: number }>;
  /** The key links are signed with (the server checks them with it). */
  secret(): Promise<string>;
}

export interface DashboardLinkSettings {
  port?: number | undefined;
  host: string;
  publicUrl?: string | undefined;
  secret?: string | undefined;
  linkMs: number;
}

export function dashboardLinks(settings: DashboardLinkSettings, redis: Redis, clock: () => number): DashboardLinks {
  const host = settings.host === "0.0.0.0" || settings.host === "::" ? "127.0.0.1" : settings.host;
  let baseUrl = settings.publicUrl ?? (settings.port ? `http://${host.includes(":") ? `[${host}]` : host}:${settings.port}` : undefined);
  let key: Promise<string> | undefined;
  const secret = () => (key ??= linkSecret(redis, settings.secret).catch((err: unknown) => {
    key = undefined;
    throw err;
  }));
  return {
    get baseUrl() {
      return baseUrl;
    },
    get miniAppUrl() {
      return baseUrl?.startsWith("https://") ? `${baseUrl}/tg` : undefined;
    },
    servedAt(url) {
      if (!settings.publicUrl) baseUrl = url.replace("//0.0.0.0:", "//127.0.0.1:").replace("//[::]:", "//127.0.0.1:");
    },
    linkMs: settings.linkMs,
    secret,
    async personalLink(user) {
      if (!baseUrl) throw new Error("the dashboard is not served: set DASHBOARD_PORT");
      const iat = clock();
      const exp = iat + settings.linkMs;
      const token = signLink({ platform: user.platform, id: user.id, name: user.name, role: user.role, iat, exp }, await secret());
      return { url: `${baseUrl}/?t=${token}`, expiresAt: exp };
    },
  };
}
