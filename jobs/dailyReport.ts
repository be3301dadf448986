import type { Notifier } from "../src/chat/notifier.js";

export interface DailyReportDeps {
  costReport(now?: number): Promise<string>;
  notifier: Notifier;
}

export async function runDailyReport(app: DailyReportDeps): Promise<string> {
  const text = await app.costReport();
  await app.notifier.notify({ type: "report", daily: true, text });
  return text;
}
