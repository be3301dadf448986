import { defineCommand, noArgs, type Needs } from "./types.js";

const until = (t: number) => new Date(t).toISOString().slice(11, 16) + " UTC";

/**
 * The team dashboard (docs/dashboard.md): on Telegram a button that opens it inside the app; on
 * Discord and the console a personal link, valid a short time, shown to the asker only.
 */
export const dashboard = defineCommand<undefined, Needs<"dashboard">>({
  name: "dashboard",
  summary: "Open the team dashboard (positions, P&L, decision diary, AI spend): a personal link, or a button in Telegram",
  usage: "/dashboard",
  minRole: "viewer",
  personal: true,
  parse: noArgs("/dashboard"),
  async run(_, { app, user, where }) {
    const d = app.dashboard;
    // Telegram has no replies for one person in a group: a link (or a Mini App button, which
    // Telegram allows only there) goes in the private chat with the bot.
    if (user.platform === "telegram" && where && !where.startsWith("telegram private chat")) {
      return { text: "Ask /dashboard in your private chat with the bot: a personal link posted here would be seen by everyone in this chat.", error: true };
    }
    if (!d?.baseUrl) return { text: "The dashboard is not served: an admin sets DASHBOARD_PORT (and DASHBOARD_PUBLIC_URL behind a reverse proxy with TLS), see docs/dashboard.md.", error: true };
    const minutes = Math.round(d.linkMs / 60_000);
    if (user.platform === "telegram" && d.miniAppUrl) {
      return {
        text: `The dashboard opens inside Telegram, as ${user.name} (${user.role}). The button works in a private chat with the bot.`,
        buttons: [[{ label: "📊 Open the dashboard", action: "dashboard", webAppUrl: d.miniAppUrl }]],
        ephemeral: true,
      };
    }
    const link = await d.personalLink(user);
    return {
      text: `Your personal dashboard link, as ${user.name} (${user.role}), valid ${minutes} min (until ${until(link.expiresAt)}). Do not share it: it shows what you may see.\n${link.url}`,
      ephemeral: true,
    };
  },
});
