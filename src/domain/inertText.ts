// Text from outside (a Telegram display name, a command line, a model's reasons, an exchange's
// error) is shown, never obeyed by a terminal. A terminal acts on control characters: ESC starts
// the sequences that clear the screen, set the window title (OSC 0), plant a link (OSC 8) or move
// the cursor to overwrite a line; C1 characters (0x9b CSI, 0x9d OSC) do the same on terminals that
// take 8-bit controls; a carriage return or a backspace overwrites what is shown; bidi overrides
// (U+202E ...) show text in another order than it is stored. Each such character is replaced by
// its escape in plain characters (ESC becomes the four characters \x1b), so a reader sees that it
// was there and nothing acts on it. Everything else passes unchanged.
//
// Applied where outside text enters the audit log (src/chat/audit.ts), where the logs are
// written (src/log.ts) and where the console prints (src/chat/console.ts).

// C0 except tab and newline, DEL, C1, the Arabic letter mark, LRM/RLM, the bidi embeddings and
// overrides, the bidi isolates, and the line and paragraph separators.
const CONTROLS = "\\u0000-\\u0008\\u000b-\\u001f\\u007f-\\u009f\\u061c\\u200e\\u200f\\u202a-\\u202e\\u2066-\\u2069\\u2028\\u2029";
const IN_LINE = new RegExp(`[\\t\\n${CONTROLS}]`, "g");
const IN_TEXT = new RegExp(`[${CONTROLS}]`, "g");

const escapeOf = (c: string): string => {
  const code = c.charCodeAt(0);
  return code <= 0xff ? `\\x${code.toString(16).padStart(2, "0")}` : `\\u${code.toString(16).padStart(4, "0")}`;
};

/**
 * `text` with every control character a terminal would act on made visible. `lines: true` keeps
 * newlines and tabs (a message of several lines); otherwise they are made visible too, so a name
 * or a command cannot start a line of its own in a one-line record.
 */
export function inert(text: string, opts: { lines?: boolean } = {}): string {
  return text.replace(opts.lines ? IN_TEXT : IN_LINE, escapeOf);
}

const ENTITIES: Record<string, string> = { nbsp: " ", amp: "&", lt: "<", gt: ">", quot: '"', apos: "'", "#39": "'" };

/**
 * Text from outside (an exchange's or a server's error, which may be a whole HTML page) as one
 * short line fit for a chat: tags gone (scripts and styles with their content), entities
 * decoded, the query of a URL cut (signatures, timestamps), whitespace collapsed, control
 * characters made visible, at most `max` characters. The full text belongs in the log.
 */
export function shortPlain(raw: string, max = 200): string {
  const text = raw
    .replace(/<(script|style)\b[\s\S]*?<\/\1\s*>/gi, " ")
    .replace(/<!--[\s\S]*?-->/g, " ")
    .replace(/<[^>]*>/g, " ")
    .replace(/&(nbsp|amp|lt|gt|quot|apos|#39);/g, (_, e: string) => ENTITIES[e] ?? " ")
    .replace(/(https?:\/\/[^\s?#]+)[?#]\S*/g, "$1")
    .replace(/\s+/g, " ")
    .trim();
  const shown = inert(text);
  return shown.length > max ? `${shown.slice(0, max - 1)}…` : shown;
}
