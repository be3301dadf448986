import { defineCommand, noArgs } from "./types.js";

export const report = defineCommand<undefined>({
  name: "report",
  summary: "Today's cost report: decisions, spend, models, success rate, projection",
  usage: "/report",
  minRole: "viewer",
  parse: noArgs("/report"),
  async run(_, { app }) {
    return { text: await app.costReport() };
  },
});
