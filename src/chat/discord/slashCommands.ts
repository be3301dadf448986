import type { CommandInfo as Command, CommandOption } from "../types.js";

// Discord's application command option types.
const STRING = 3;
const NUMBER = 10;

export interface SlashOptionJson {
  name: string;
  description: string;
  type: number;
  required: boolean;
  choices?: { name: string; value: string }[];
  min_value?: number;
  max_value?: number;
}

export interface SlashCommandJson {
  name: string;
  description: string;
  type: 1;
  options: SlashOptionJson[];
}

const short = (s: string, max = 100) => (s.length <= max ? s : `${s.slice(0, max - 1)}…`);

function optionJson(o: CommandOption, symbols: string[]): SlashOptionJson {
  const base = { name: o.name, description: short(o.description), required: o.required };
  if (o.kind === "number") return { ...base, type: NUMBER, ...(o.min !== undefined ? { min_value: o.min } : {}), ...(o.max !== undefined ? { max_value: o.max } : {}) };
  if (o.kind === "symbol") {
    const bases = [...new Set(symbols.map((s) => s.split("/")[0]!))].slice(0, 25);
    return { ...base, type: STRING, choices: bases.map((b) => ({ name: b, value: b })) };
  }
  if (o.kind === "choice") return { ...base, type: STRING, choices: (o.choices ?? []).slice(0, 25).map((c) => ({ name: c, value: c })) };
  return { ...base, type: STRING };
}

/** The slash commands for Discord, from the same command list the console and Telegram use. */
export function slashCommands(commands: Command[], symbols: string[]): SlashCommandJson[] {
  return commands.map((c) => ({ name: c.name, description: short(c.summary), type: 1, options: (c.options ?? []).map((o) => optionJson(o, symbols)) }));
}

/** Turns a slash command's typed options back into the command line the registry reads. */
export function commandLine(command: Command, value: (name: string) => string | number | boolean | undefined | null): string {
  const args: string[] = [];
  for (const o of command.options ?? []) {
    const v = value(o.name);
    if (v === undefined || v === null || v === "") continue;
    args.push(String(v));
  }
  return `/${command.name}${args.length ? " " + args.join(" ") : ""}`;
}
