import type { CommandContext, CommandReply, ReplyImage } from "../../../commands/types.js";
import type { App } from "../../app.js";
import { costChart, spendSeries } from "./costChart.js";

/** The cost chart that goes with /report and the daily report: the last 14 days, per model. */
export async function costChartImage(app: App, now = app.services.clock()): Promise<ReplyImage> {
  const charges = await app.services.ledger.charges(now - 14 * 86_400_000, now);
  const png = await costChart(spendSeries(charges, now, 14));
  return { png, name: `cost-${new Date(now).toISOString().slice(0, 10)}.png`, alt: "Model spend per day and per model, last 14 days" };
}

/**
 * Attachments added to a command's reply outside the command itself (the report command belongs
 * to the ledger's owner; its chart is the chat layer's business).
 */
export async function attachReplyExtras(command: string, reply: CommandReply, ctx: CommandContext): Promise<CommandReply> {
  if (command !== "report" || reply.error || reply.image) return reply;
  try {
    return { ...reply, image: await costChartImage(ctx.app) };
  } catch (err) {
    ctx.app.log.warn("cost chart failed", err);
    return reply;
  }
}

/** The daily report notice carries the cost chart too. */
export function installNoticeCharts(app: App): void {
  app.notifier.decorate(async (n) => (n.kind === "report" && !n.image ? { ...n, image: await costChartImage(app) } : n));
}
