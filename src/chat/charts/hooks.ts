import type { Ledger } from "../../ledger/ledger.js";
import type { Log } from "../../log.js";
import type { NotifierHub } from "../notifier.js";
import type { CommandReply, ReplyImage } from "../types.js";
import { costChart, spendSeries } from "./costChart.js";

/** What the cost chart is drawn from. */
export interface ChartSource {
  services: { ledger: Ledger; clock: () => number };
  log: Log;
}

/** The cost chart that goes with /report and the daily report: the last 14 days, per model. */
export async function costChartImage(src: ChartSource, now = src.services.clock()): Promise<ReplyImage> {
  const charges = await src.services.ledger.charges(now - 14 * 86_400_000, now);
  const png = await costChart(spendSeries(charges, now, 14));
  return { png, name: `cost-${new Date(now).toISOString().slice(0, 10)}.png`, alt: "Model spend per day and per model, last 14 days" };
}

/**
 * Attachments added to a command's reply outside the command itself (the report command belongs
 * to the ledger's owner; its chart is the chat layer's business).
 */
export async function attachReplyExtras(command: string, reply: CommandReply, src: ChartSource): Promise<CommandReply> {
  if (command !== "report" || reply.error || reply.image) return reply;
  try {
    return { ...reply, image: await costChartImage(src) };
  } catch (err) {
    src.log.warn("cost chart failed", err);
    return reply;
  }
}

/** The daily report notice carries the cost chart too. */
export function installNoticeCharts(src: ChartSource & { notifier: NotifierHub }): void {
  src.notifier.decorate(async (n) => (n.kind === "report" && !n.image ? { ...n, image: await costChartImage(src) } : n));
}
