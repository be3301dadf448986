// What the console adds when it talks to a person at a terminal: completion of command names,
// their choices and the watched symbols, and colour for actions, alerts and errors. Plain
// functions; consoleChat.ts wires them to readline.
import type { CommandInfo } from "../types.js";

/**
 * Whether to colour: NO_COLOR (any value but empty) turns it off, FORCE_COLOR turns it on ("0" or
 * "false" off), as most terminal programs read them (no-color.org, force-color.org); else only on
 * a terminal.
 */
export function colourWanted(env: Record<string, string | undefined>, isTTY: boolean): boolean {
  if (env.NO_COLOR !== undefined && env.NO_COLOR !== "") return false;
  if (env.FORCE_COLOR !== undefined) return !["0", "false"].includes(env.FORCE_COLOR.trim().toLowerCase());
  return isTTY;
}

const SGR = { reset: "\x1b[0m", bold: "\x1b[1m", red: "\x1b[31m", green: "\x1b[32m", yellow: "\x1b[33m", cyan: "\x1b[36m" };

/** How a piece of output reads: an error reply, a notice of some kind, or a plain reply. */
export type Tone = "reply" | "error" | "alert" | "critical" | "trade" | "info";

/**
 * Colours text already made inert (nothing in it can drive the terminal): a whole line by its tone
 * (errors and critical notices red, alerts yellow), and BUY and SELL wherever they stand as words.
 */
export function paint(text: string, tone: Tone = "reply"): string {
  const line = tone === "error" || tone === "critical" ? SGR.bold + SGR.red : tone === "alert" ? SGR.yellow : "";
  const words = text.replace(/\b(BUY|SELL)\b/g, (w) => `${w === "BUY" ? SGR.green : SGR.red}${SGR.bold}${w}${SGR.reset}${line}`);
  return line ? `${line}${words}${SGR.reset}` : words;
}

/** What the completer knows: the commands (with their options) and, each time it is asked, the watched symbols. */
export interface CompletionSource {
  commands: Pick<CommandInfo, "name" | "usage" | "options">[];
  symbols: () => string[];
}

/** Lowercase words a usage line offers at argument `i`, e.g. "/model [NAME|auto|policy]" -> auto, policy. */
function usageWords(usage: string, i: number): string[] {
  const args = usage.split(/\s+/).slice(1);
  const at = args[i];
  if (!at) return [];
  return at.replace(/[[\]]/g, "").split("|").filter((w) => /^[a-z][a-z_]*$/.test(w));
}

/**
 * readline's completer: the candidates for the word under the cursor, and that word. The first
 * word completes to a command name ("/" optional); later ones to the command's choices (limit
 * names, buy or sell, a literal of its usage) or, where it takes a symbol, the watched symbols.
 */
export function complete(line: string, source: CompletionSource): [string[], string] {
  const words = line.split(/\s+/);
  const word = words[words.length - 1] ?? "";
  const sorted = (xs: string[]) => [...new Set(xs)].sort();
  if (words.length === 1) {
    const names = source.commands.map((c) => `/${c.name}`);
    const typed = word.startsWith("/") ? word : `/${word}`;
    const hits = names.filter((n) => n.startsWith(typed.toLowerCase()));
    // A bare "dec" completes to "/decide": the replacement covers the word as typed.
    return [sorted(hits.length ? hits : names), word];
  }
  const name = words[0]!.replace(/^\//, "").split("@")[0]!.toLowerCase();
  const command = source.commands.find((c) => c.name === name);
  if (!command) return [[], word];
  const i = words.length - 2;
  const option = command.options?.[i];
  const takesSymbol = option?.kind === "symbol" || /SYMBOL/.test(command.usage.split(/\s+/)[i + 1] ?? "");
  const candidates = takesSymbol ? source.symbols().map((s) => s.split("/")[0]!) : [...(option?.choices ?? []), ...usageWords(command.usage, i)];
  const upper = word.toUpperCase();
  const hits = candidates.filter((c) => c.startsWith(word) || c.startsWith(upper) || c.toLowerCase().startsWith(word.toLowerCase()));
  return [sorted(hits), word];
}

/** Lines for readline's history (newest first) from a saved file (oldest first), at most `max`. */
export function historyFromFile(text: string, max: number): string[] {
  return text
    .split("\n")
    .map((l) => l.trimEnd())
    .filter((l) => l.trim() !== "")
    .slice(-max)
    .reverse();
}

/** A file's text from readline's history (newest first), at most `max` lines. */
export function historyToFile(history: string[], max: number): string {
  const lines = history.slice(0, max).reverse();
  return lines.length ? lines.join("\n") + "\n" : "";
}
