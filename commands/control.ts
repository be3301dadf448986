import { levelOf } from "../src/balance/balanceManager.js";
import { usdc } from "../src/chat/format.js";
import { defineCommand, noArgs } from "./types.js";

export const pause = defineCommand<undefined>({
  name: "pause",
  summary: "Stop new trading decisions at once (open positions stay monitored)",
  usage: "/pause",
  minRole: "trader",
  parse: noArgs("/pause"),
  async run(_, { app, user }) {
    const fresh = await app.services.state.pause("manual", `${user.name} (${user.platform})`);
    if (!fresh) {
      const s = await app.services.state.pauseState();
      return { text: `Trading was already paused (${s.reason}, by ${s.by ?? "the agent"}). /resume lifts it.` };
    }
    await app.notifier.notify({ kind: "info", text: `Trading paused by ${user.name}. Open positions stay monitored.` }, user);
    return { text: "Trading paused: no new decisions or orders. Stop loss and take profit are still watched. /resume to continue." };
  },
});

export const resume = defineCommand<undefined>({
  name: "resume",
  summary: "Lift a pause",
  usage: "/resume",
  minRole: "trader",
  parse: noArgs("/resume"),
  async run(_, { app, user }) {
    const s = await app.services.state.pauseState();
    if (!s.paused) return { text: "Trading is not paused." };
    if (s.reason === "critical-balance") {
      const b = await app.services.balance.getBalance();
      if (levelOf(b, app.services.balance.rules) === "critical") {
        return {
          text: `Trading stays paused: the USDC balance ${usdc(b, 2)} is under the critical level $${app.services.balance.rules.criticalBalance.toFixed(2)}. /refill first.`,
          error: true,
        };
      }
    }
    await app.services.state.resume();
    await app.notifier.notify({ kind: "info", text: `Trading resumed by ${user.name}.` }, user);
    return { text: "Trading resumed." };
  },
});
