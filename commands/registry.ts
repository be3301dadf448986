import { balance, refill } from "./balance.js";
import { pause, resume } from "./control.js";
import { decide } from "./decide.js";
import { model } from "./model.js";
import { report } from "./report.js";
import { positions, status } from "./status.js";
import { defineCommand, noArgs, ROLE_RANK, type Command, type CommandContext, type CommandReply } from "./types.js";

const help = defineCommand<undefined>({
  name: "help",
  summary: "This list",
  usage: "/help",
  minRole: "viewer",
  parse: noArgs("/help"),
  async run(_, { user }) {
    const lines = ["Commands:"];
    for (const c of COMMANDS) {
      if (ROLE_RANK[user.role] < ROLE_RANK[c.minRole]) continue;
      lines.push(`  ${c.usage.padEnd(20)} ${c.summary}${c.example ? ` (e.g. ${c.example})` : ""}`);
    }
    return { text: lines.join("\n") };
  },
});

export const COMMANDS: Command[] = [help, decide, balance, refill, pause, resume, model, status, positions, report];

const byName = new Map(COMMANDS.map((c) => [c.name, c]));

/** Splits "/decide@my_bot BTC" into the command name and its words. */
export function parseCommandLine(text: string): { name: string; args: string[] } | undefined {
  const words = text.trim().split(/\s+/).filter(Boolean);
  const head = words[0];
  if (!head || !head.startsWith("/") || head.length < 2) return undefined;
  return { name: head.slice(1).split("@")[0]!.toLowerCase(), args: words.slice(1) };
}

/**
 * Runs one line of chat input for one user. Never throws: bad input, a refused role or a failure
 * inside a command all come back as a short reply, and bad input changes nothing.
 */
export async function handleCommand(text: string, ctx: CommandContext, redact: (s: string) => string = (s) => s): Promise<CommandReply> {
  const line = parseCommandLine(text);
  if (!line) return { text: "Commands start with /. Type /help for the list.", error: true };
  const command = byName.get(line.name);
  if (!command) return { text: `Unknown command /${line.name.slice(0, 30)}. Type /help for the list.`, error: true };
  if (ROLE_RANK[ctx.user.role] < ROLE_RANK[command.minRole]) {
    return { text: `Sorry, /${command.name} needs the ${command.minRole} role; you are a ${ctx.user.role}.`, error: true };
  }
  const parsed = command.parse(line.args, ctx);
  if (!parsed.ok) return { text: parsed.error, error: true };
  try {
    return await command.run(parsed.value, ctx);
  } catch (err) {
    ctx.app.log.error(`/${command.name} failed`, err);
    return { text: `/${command.name} failed: ${redact((err as Error).message).slice(0, 300)}`, error: true };
  }
}
