import { createHmac } from "node:crypto";
import type { App } from "../../src/app.js";
import type { ChatUser, CommandReply } from "../../commands/types.js";
import { handleCommand } from "../../commands/registry.js";

export const BOT_TOKEN = "123456:TEST-dashboard-token_abcdefghijkl";

/** initData as Telegram's client hands it to a Mini App, signed as Telegram documents it. */
export function signedInitData(user: { id: number; username?: string; first_name?: string }, authDateSec: number, token = BOT_TOKEN): string {
  const fields: Record<string, string> = {
    auth_date: String(authDateSec),
    query_id: "AAHdF6IQAAAAAN0XohDhrOrc",
    user: JSON.stringify({ first_name: "Test", ...user }),
  };
  const dcs = Object.keys(fields)
    .sort()
    .map((k) => `${k}=${fields[k]}`)
    .join("\n");
  const secret = createHmac("sha256", "WebAppData").update(token).digest();
  const hash = createHmac("sha256", secret).update(dcs).digest("hex");
  return new URLSearchParams({ ...fields, hash }).toString();
}

/** Runs /dashboard as this person (in a private chat on Telegram) and returns the link it answers with. */
export async function dashboardLink(app: App, user: ChatUser): Promise<{ reply: CommandReply; url: string }> {
  const where = user.platform === "telegram" ? `telegram private chat (${user.id})` : user.platform;
  const reply = await handleCommand("/dashboard", { user, app, where }, app.redact);
  const url = /https?:\/\/\S+/.exec(reply.text)?.[0];
  if (!url) throw new Error(`no link in the reply: ${reply.text}`);
  return { reply, url };
}
