import type { App } from "../src/app.js";

export type Role = "viewer" | "trader" | "admin";
export const ROLE_RANK: Record<Role, number> = { viewer: 0, trader: 1, admin: 2 };

export type Platform = "console" | "telegram" | "discord";

export interface ChatUser {
  id: string;
  name: string;
  platform: Platform;
  role: Role;
}

/** What a command answers. Platform adapters decide how to show it. */
export interface CommandReply {
  text: string;
  /** True when the command could not run (bad input, not allowed): nothing was changed. */
  error?: boolean;
}

export interface CommandContext {
  user: ChatUser;
  app: App;
}

export type ParseResult<A> = { ok: true; value: A } | { ok: false; error: string };

/** A chat command, written once and served by every platform (console, Telegram, Discord). */
export interface Command<A = unknown> {
  name: string;
  summary: string;
  /** e.g. "/refill AMOUNT" */
  usage: string;
  example?: string;
  minRole: Role;
  /** Turns the words after the command into typed arguments, or says how to do it right. */
  parse(args: string[], ctx: CommandContext): ParseResult<A>;
  run(args: A, ctx: CommandContext): Promise<CommandReply>;
}

export function defineCommand<A>(c: Command<A>): Command<unknown> {
  return c as unknown as Command<unknown>;
}

export const noArgs = (usage: string) => (args: string[]): ParseResult<undefined> =>
  args.length === 0 ? { ok: true, value: undefined } : { ok: false, error: `This command takes no arguments. Usage: ${usage}` };
