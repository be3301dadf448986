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
  /** Suggestions asked for as the user types, instead of a fixed list (Discord allows 25 choices). */
  autocomplete?: boolean;
  min_value?: number;
  max_value?: number;
}

export interface SlashCommandJson {
  name: string;
  description: string;
  type: 1;
  options: SlashOptionJson[];
  /** Global commands only: where they may be used (0 servers, 1 the bot's DMs). Guild commands exist in their server alone. */
  contexts?: number[];
}

// Discord shows at most 25 choices or 25 autocomplete suggestions.
const MAX_CHOICES = 25;

const basesOf = (symbols: string[]) => [...new Set(symbols.map((s) => s.split("/")[0]!))];

/** Up to 25 watched bases for what the user has typed: those starting with it first, then those containing it. */
export function symbolChoices(symbols: string[], typed: string): string[] {
  const q = typed.trim().toUpperCase().split("/")[0]!;
  const bases = basesOf(symbols);
  const starts = bases.filter((b) => b.startsWith(q));
  const contains = bases.filter((b) => !b.startsWith(q) && b.includes(q));
  return [...starts, ...contains].slice(0, MAX_CHOICES);
}

const short = (s: string, max = 100) => (s.length <= max ? s : `${s.slice(0, max - 1)}…`);

function optionJson(o: CommandOption, symbols: string[]): SlashOptionJson {
  const base = { name: o.name, description: short(o.description), required: o.required };
  if (o.kind === "number") return { ...base, type: NUMBER, ...(o.min !== undefined ? { min_value: o.min } : {}), ...(o.max !== undefined ? { max_value: o.max } : {}) };
  if (o.kind === "symbol") {
    const bases = basesOf(symbols);
    if (bases.length > MAX_CHOICES) return { ...base, type: STRING, autocomplete: true };
    return { ...base, type: STRING, choices: bases.map((b) => ({ name: b, value: b })) };
  }
  if (o.kind === "choice") return { ...base, type: STRING, choices: (o.choices ?? []).slice(0, MAX_CHOICES).map((c) => ({ name: c, value: c })) };
  return { ...base, type: STRING };
}

/**
 * The slash commands for Discord, from the same command list the console and Telegram use. Global
 * ones (no server configured) are offered in servers and in DMs with the bot.
 */
export function slashCommands(commands: Command[], symbols: string[], opts: { global?: boolean } = {}): SlashCommandJson[] {
  return commands.map((c) => ({
    name: c.name,
    description: short(c.summary),
    type: 1,
    options: (c.options ?? []).map((o) => optionJson(o, symbols)),
    ...(opts.global ? { contexts: [0, 1] } : {}),
  }));
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
