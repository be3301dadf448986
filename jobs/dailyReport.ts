import type { App } from "../src/app.js";

export async function runDailyReport(app: App): Promise<string> {
  const text = await app.costReport();
  await app.notifier.notify({ kind: "report", text: `Daily ${text.charAt(0).toLowerCase()}${text.slice(1)}` });
  return text;
}
