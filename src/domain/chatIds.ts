// What a chat platform's ids can be, so that an id no platform could send is refused where it is
// typed (/grant, /revoke) or configured (the allow-lists, the alert chats), instead of being kept
// and never matching anyone.
//
// Telegram: user and chat ids "have at most 52 significant bits" (Bot API, User.id / Chat.id);
// users are positive, groups and channels negative (supergroups -100...).
// Discord: snowflakes, 64-bit unsigned, with a millisecond timestamp since 2015 in the high bits:
// 17 to 20 digits today.

export type ChatIdPlatform = "telegram" | "discord";

const TELEGRAM_MAX = 2 ** 52 - 1;
const SNOWFLAKE_MAX = 2n ** 64n - 1n;

/** A Telegram user id: a positive integer of at most 52 bits. */
export function isTelegramUserId(s: string): boolean {
  return /^[1-9]\d{0,15}$/.test(s) && Number(s) <= TELEGRAM_MAX;
}

/** A Telegram chat id: a user's (positive) or a group's or channel's (negative), at most 52 bits. */
export function isTelegramChatId(s: string): boolean {
  return /^-?[1-9]\d{0,15}$/.test(s) && Math.abs(Number(s)) <= TELEGRAM_MAX;
}

/** A Discord snowflake (user, server, channel, role, application): 17 to 20 digits, under 2^64. */
export function isSnowflake(s: string): boolean {
  return /^[1-9]\d{16,19}$/.test(s) && BigInt(s) <= SNOWFLAKE_MAX;
}

export function isUserId(platform: ChatIdPlatform, s: string): boolean {
  return platform === "telegram" ? isTelegramUserId(s) : isSnowflake(s);
}

/** How each platform's user ids look, for a message that says how to do it right. */
export const USER_ID_SHAPE: Record<ChatIdPlatform, string> = {
  telegram: "a Telegram user id is a positive whole number of at most 16 digits (52 bits), e.g. 123456789",
  discord: "a Discord user id is a snowflake of 17 to 20 digits, e.g. 123456789012345678",
};
