// Platform limits, handled here once for every command and notice: message length, and the
// characters each platform would otherwise read as formatting.

export const TELEGRAM_MAX = 4096;
export const TELEGRAM_CAPTION_MAX = 1024;
export const DISCORD_MAX = 2000;

/**
 * Splits text into chunks of at most `max` (as measured by `measure`, e.g. the escaped length),
 * breaking between lines. Only a line longer than a whole chunk is cut, at a space if it has one,
 * and never inside a character: not between the two halves of an emoji's surrogate pair (a lone
 * half shows as a broken glyph, and Telegram refuses text that is not valid UTF-8), nor inside a
 * grapheme such as a flag or a family joined with ZWJ.
 */
export function splitMessage(text: string, max: number, measure: (s: string) => number = (s) => s.length): string[] {
  if (max < 10) throw new Error("splitMessage: max is too small");
  const chunks: string[] = [];
  let current = "";
  const push = () => {
    if (current !== "") chunks.push(current);
    current = "";
  };
  for (const line of text.split("\n")) {
    const candidate = current === "" ? line : `${current}\n${line}`;
    if (measure(candidate) <= max) {
      current = candidate;
      continue;
    }
    push();
    if (measure(line) <= max) {
      current = line;
      continue;
    }
    // A single line longer than a message: cut it, preferring the last space that fits.
    let rest = line;
    while (measure(rest) > max) {
      const cut = longestFit(rest, max, measure);
      const space = rest.lastIndexOf(" ", cut);
      const at = space > cut / 2 ? space : safeCut(rest, cut);
      chunks.push(rest.slice(0, at));
      rest = rest.slice(at).replace(/^ /, "");
    }
    current = rest;
  }
  push();
  return chunks.length ? chunks : [""];
}

/** Telegram's HTML parse mode: only &, < and > are special. */
export const escapeHtml = (s: string): string => s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");

/**
 * Discord markdown: backslash-escapes emphasis, code, spoilers, quotes, masked links and, at the
 * start of a line, headers and lists, so a symbol name or a model's reason shows as typed.
 * (Mentions are disarmed separately, with allowed_mentions.)
 */
export function escapeDiscord(s: string): string {
  return s
    .split("\n")
    .map((line) =>
      line
        .replace(/([\\*_~`|>[\]])/g, "\\$1")
        .replace(/^(\s*)(#{1,3} |-# |- |\* |\+ )/, "$1\\$2")
        .replace(/^(\s*)(\d+)\. /, "$1$2\\. "),
    )
    .join("\n");
}

/** Cuts text to `max` (measured), marking the cut, for places that cannot take a second message (edits, captions). */
export function truncate(text: string, max: number, measure: (s: string) => number = (s) => s.length): string {
  if (measure(text) <= max) return text;
  const mark = "\n… (cut)";
  return text.slice(0, safeCut(text, longestFit(text, max, (s) => measure(s + mark)), 0)) + mark;
}

const graphemes = new Intl.Segmenter(undefined, { granularity: "grapheme" });
const isHighSurrogate = (code: number) => code >= 0xd800 && code <= 0xdbff;

/**
 * The cut at or before `at` that splits no character: the last grapheme boundary, else (one
 * grapheme longer than the room, e.g. a letter under hundreds of combining marks) the last
 * code-point boundary. Never below `least` unless nothing fits; splitMessage asks for at least one
 * code point, so it always moves on.
 */
function safeCut(text: string, at: number, least = 1): number {
  if (at >= text.length) return text.length;
  let boundary = 0;
  for (const { index } of graphemes.segment(text)) {
    if (index > at) break;
    boundary = index;
  }
  if (boundary > 0) return boundary;
  let cut = at > 0 && isHighSurrogate(text.charCodeAt(at - 1)) ? at - 1 : at;
  if (cut < least) cut = isHighSurrogate(text.charCodeAt(0)) ? 2 : 1;
  return cut;
}

/** The longest prefix length of `text` whose measure fits in `max` (measures grow with length). */
function longestFit(text: string, max: number, measure: (s: string) => number): number {
  let lo = 0;
  let hi = text.length;
  while (lo < hi) {
    const mid = Math.ceil((lo + hi) / 2);
    if (measure(text.slice(0, mid)) <= max) lo = mid;
    else hi = mid - 1;
  }
  return lo;
}
