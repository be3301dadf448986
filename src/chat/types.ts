// The chat layer's own types: who is talking, from where, and what a reply holds. Commands
// (commands/) and every platform adapter (src/chat/) speak these; they import nothing upward.
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

