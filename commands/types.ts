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

/** A button under a reply. Platforms hand `action` back, unchanged, when it is pressed. */
export interface ReplyButton {
  label: string;
  action: string;
  style?: "primary" | "danger" | "secondary";
}

/** A picture sent with a reply (a chart). */
export interface ReplyImage {
  png: Uint8Array;
  /** File name, e.g. "btc-decision.png". */
  name: string;
  /** What it shows, in words (caption, alt text, and what the console prints). */
  alt: string;
}

/** What a command answers. Platform adapters decide how to show it. */
export interface CommandReply {
  text: string;
  /** True when the command could not run (bad input, not allowed): nothing was changed. */
  error?: boolean;
  /** Rows of buttons under the text. */
  buttons?: ReplyButton[][];
  image?: ReplyImage;
  /** Meant for the person who asked only (Discord shows it to them alone; other platforms reply normally). */
  ephemeral?: boolean;
  /** Set when the reply asks for a confirmation: adapters record where they posted it, so it can be edited later. */
  confirmationId?: string;
}

export interface CommandContext {
  user: ChatUser;
  app: App;
  /** Where the command was typed, for the audit log, e.g. "telegram chat -1001 topic 7". */
  where?: string;
  /** Shows a first answer at once; the platform replaces it with the final reply. */
  progress?: (text: string) => Promise<void>;
  /** Set when the command runs because its confirmation was pressed. */
  confirmationId?: string;
}

/** One argument, described for platforms with typed options (Discord slash commands). */
export interface CommandOption {
  name: string;
  description: string;
  /** "symbol": one of the watched symbols; "choice": one of `choices`. */
  kind: "string" | "number" | "symbol" | "choice";
  required: boolean;
  choices?: string[];
  min?: number;
  max?: number;
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
  /** Its arguments in order, for typed options; none means it takes no arguments. */
  options?: CommandOption[];
  /** Its replies are for the asker only (Discord: ephemeral). */
  personal?: boolean;
  /** Running it can change state: it goes into the audit log. A function when that depends on the arguments. */
  mutates?: boolean | ((args: A) => boolean);
  /** A question to confirm with a button first, or undefined to run at once. */
  confirm?(args: A, ctx: CommandContext): Promise<string | undefined>;
  /** Turns the words after the command into typed arguments, or says how to do it right. */
  parse(args: string[], ctx: CommandContext): ParseResult<A>;
  run(args: A, ctx: CommandContext): Promise<CommandReply>;
}

export function defineCommand<A>(c: Command<A>): Command<unknown> {
  return c as unknown as Command<unknown>;
}

export const noArgs = (usage: string) => (args: string[]): ParseResult<undefined> =>
  args.length === 0 ? { ok: true, value: undefined } : { ok: false, error: `This command takes no arguments. Usage: ${usage}` };
