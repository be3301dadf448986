import type { App } from "../src/app.js";
import type { ChatUser, CommandOption, CommandReply, Role } from "../src/chat/types.js";

export { ROLE_RANK, type ChatUser, type CommandOption, type CommandReply, type Platform, type ReplyButton, type ReplyImage, type Role } from "../src/chat/types.js";

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
