// The chat layer's own types: who is talking, from where, and what a reply holds. Commands
// (commands/) and every platform adapter (src/chat/) speak these; they import nothing upward.
export type Role = "viewer" | "trader" | "admin";
export const ROLE_RANK: Record<Role, number> = { viewer: 0, trader: 1, admin: 2 };

/**
 * Every chat platform, by the name the code and the data use (audit lines, /grant, Redis keys), with
 * the name people read. The one place a platform is named: adding one is a line here, its folder
 * under src/chat/, and its entry in the registry (src/chat/platforms.ts), which the compiler then
 * asks for.
 */
export const PLATFORM_LABEL = { console: "Console", telegram: "Telegram", discord: "Discord" } as const;
export type Platform = keyof typeof PLATFORM_LABEL;
/** The platforms people reach the bot on from outside: each has its users, allow-list and alerts. */
export type ChatPlatformName = Exclude<Platform, "console">;
export const CHAT_PLATFORM_NAMES = (Object.keys(PLATFORM_LABEL) as Platform[]).filter((p): p is ChatPlatformName => p !== "console");
export const isChatPlatformName = (s: string): s is ChatPlatformName => (CHAT_PLATFORM_NAMES as string[]).includes(s);

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
  /** Opens this https address as a Telegram Mini App instead of answering a press (Telegram only). */
  webAppUrl?: string;
}

/** A picture sent with a reply (a chart). */
export interface ReplyImage {
  png: Uint8Array;
  /** File name, e.g. "btc-decision.png". */
  name: string;
  /** What it shows, in words (caption, alt text, and what the console prints). */
  alt: string;
}

/** A file sent with a reply (a CSV export): a document on Telegram, an attachment on Discord, a saved file on the console. */
export interface ReplyFile {
  /** File name, e.g. "trades-2026-01-01-2026-01-31.csv". */
  name: string;
  /** e.g. "text/csv". */
  mime: string;
  data: Uint8Array;
  /** What it holds, in words (the caption, the attachment's description). */
  caption: string;
}

/** What a command answers. Platform adapters decide how to show it. */
export interface CommandReply {
  text: string;
  /** True when the command could not run (bad input, not allowed): nothing was changed. */
  error?: boolean;
  /** Rows of buttons under the text. */
  buttons?: ReplyButton[][];
  image?: ReplyImage;
  /** Files after the text (and the picture). */
  files?: ReplyFile[];
  /** Meant for the person who asked only (Discord shows it to them alone; other platforms reply normally). */
  ephemeral?: boolean;
  /** Set when the reply asks for a confirmation: adapters record where they posted it, so it can be edited later. */
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


/** A command as a platform sees it: enough to list it, offer its options, and check the role. */
export interface CommandInfo {
  name: string;
  summary: string;
  usage: string;
  minRole: Role;
  options?: CommandOption[];
  /** Its replies are for the asker only (Discord: ephemeral). */
  personal?: boolean;
  /** Running it can change state (it is audited), or a test of its arguments that says so. */
  mutates?: boolean | ((args: never) => boolean);
}

/** Who typed a command and where, as the platform that received it knows. */
export interface CommandCall {
  user: ChatUser;
  /** Where the command was typed, for the audit log, e.g. "telegram chat -1001 topic 7". */
  where?: string;
  /** Shows a first answer at once; the platform replaces it with the final reply. */
  progress?: (text: string) => Promise<void>;
  /**
   * Names the request the platform received (e.g. one Telegram message), the same if it is handed
   * over again: ids made from it (a decision's, an order's) dedupe a second run. Unset: a fresh one.
   */
  requestId?: string;
}

/** A command line read and allowed, ready to run; or the reply that refuses it. */
export type PreparedCommand = { ok: true; command: CommandInfo; args: unknown; line: string } | { ok: false; reply: CommandReply };

/** What a button press comes to. */
export interface PressOutcome {
  /** A short answer to the person who pressed (a toast, or an ephemeral reply). */
  toast: string;
  /** True when the press did not do what was asked (refused, too late): show it prominently. */
  alert: boolean;
  /** The message's new text, when this press settled it; it was already edited everywhere it was posted. */
  final?: string;
}

/**
 * The commands, as every platform serves them. Written once (commands/registry.ts) and handed to
 * each platform by the composition root, so the chat layer never imports the commands.
 */
export interface CommandDispatcher {
  list(): CommandInfo[];
  find(name: string): CommandInfo | undefined;
  /** Splits "/decide@my_bot BTC" into the command name and its words. */
  parseLine(text: string): { name: string; args: string[] } | undefined;
  /** Reads a line and checks the role, without running it: quick, so a refusal is answered at once. */
  prepare(text: string, call: CommandCall): Promise<PreparedCommand>;
  /** Runs a prepared command (asking for a confirmation first when it wants one). */
  execute(prepared: Extract<PreparedCommand, { ok: true }>, call: CommandCall): Promise<CommandReply>;
  /** prepare + execute; never throws. */
  handle(text: string, call: CommandCall): Promise<CommandReply>;
  /**
   * A pressed button; `user` is undefined for someone not on the allow-list. `onAccepted` hears
   * the presser's answer once the press has won, before the work it starts (see ChatServices.press).
   */
  press(action: string, user: ChatUser | undefined, where: string, onAccepted?: (toast: string) => void): Promise<PressOutcome>;
}

/** Whether a chat platform works now, and what is wrong when not (shown by /status, read by /metrics and /healthz). */
export interface PlatformHealth {
  ok: boolean;
  problems: string[];
}

/** Each running platform's health, by name: what /status shows, /metrics and /healthz read. */
export type ChatHealth = Partial<Record<Platform, PlatformHealth>>;
