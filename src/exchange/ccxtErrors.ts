// ccxt's errors in a few plain words for a chat, without loading ccxt: the market adapter sits on
// the startup path of every mode, and ccxt takes about half a second to import. ccxt names each
// error class (err.name), and its hierarchy is fixed (ccxt/ts/src/base/errorHierarchy.ts), so a
// name says what an error is.
import { STATUS_CODES } from "node:http";
import { shortPlain } from "../domain/inertText.js";

/** Each ccxt error class, with the class it extends (ccxt 4.5's hierarchy). */
const PARENT: Record<string, string | undefined> = {
  BaseError: undefined,
  ExchangeError: "BaseError",
  AuthenticationError: "ExchangeError",
  PermissionDenied: "AuthenticationError",
  AccountNotEnabled: "PermissionDenied",
  AccountSuspended: "AuthenticationError",
  ArgumentsRequired: "ExchangeError",
  BadRequest: "ExchangeError",
  BadSymbol: "BadRequest",
  OperationRejected: "ExchangeError",
  NoChange: "OperationRejected",
  MarginModeAlreadySet: "NoChange",
  MarketClosed: "OperationRejected",
  ManualInteractionNeeded: "OperationRejected",
  RestrictedLocation: "OperationRejected",
  InsufficientFunds: "ExchangeError",
  InvalidAddress: "ExchangeError",
  AddressPending: "InvalidAddress",
  InvalidOrder: "ExchangeError",
  OrderNotFound: "InvalidOrder",
  OrderNotCached: "InvalidOrder",
  OrderImmediatelyFillable: "InvalidOrder",
  OrderNotFillable: "InvalidOrder",
  DuplicateOrderId: "InvalidOrder",
  ContractUnavailable: "InvalidOrder",
  NotSupported: "ExchangeError",
  InvalidProxySettings: "ExchangeError",
  ExchangeClosedByUser: "ExchangeError",
  OperationFailed: "BaseError",
  NetworkError: "OperationFailed",
  DDoSProtection: "NetworkError",
  RateLimitExceeded: "NetworkError",
  ExchangeNotAvailable: "NetworkError",
  OnMaintenance: "ExchangeNotAvailable",
  InvalidNonce: "NetworkError",
  ChecksumError: "InvalidNonce",
  RequestTimeout: "NetworkError",
  BadResponse: "OperationFailed",
  NullResponse: "BadResponse",
  CancelPending: "OperationFailed",
  UnsubscribeError: "BaseError",
};

/** Whether `err` is a ccxt error of class `cls` or one below it. */
export function isCcxtError(err: unknown, cls = "BaseError"): boolean {
  if (!(err instanceof Error) || !(err.name in PARENT)) return false;
  for (let name: string | undefined = err.name; name; name = PARENT[name]) if (name === cls) return true;
  return false;
}

/**
 * A ccxt error in a few words fit for a chat, never the exchange's raw answer (an HTML error page,
 * a URL with its signature): the exchange's own message when it sent one (`binance
 * {"code":-2010,"msg":"..."}` -> `... (code -2010)`), else what the error's class means, with the
 * HTTP status. The raw error goes to the log.
 */
export function exchangeReason(err: unknown): string {
  const message = err instanceof Error ? err.message : String(err);
  const json = /\{.*\}/s.exec(message)?.[0];
  if (json) {
    try {
      const body = JSON.parse(json) as { code?: unknown; msg?: unknown; message?: unknown };
      const text = typeof body.msg === "string" ? body.msg : typeof body.message === "string" ? body.message : undefined;
      if (text) return shortPlain(body.code !== undefined ? `${text} (code ${String(body.code)})` : text);
    } catch {
      // not JSON after all: what the error's class says follows
    }
  }
  // ccxt's HTTP errors read "<id> <METHOD> <url> <status> <reason> <body>".
  const code = /\b(?:GET|POST|PUT|DELETE|PATCH)\s+\S+\s+(\d{3})\b/.exec(message)?.[1];
  const http = code ? ` (HTTP ${code}${STATUS_CODES[code] ? ` ${STATUS_CODES[code]}` : ""})` : "";
  const is = (cls: string) => isCcxtError(err, cls);
  if (is("RequestTimeout")) return `the exchange did not answer in time${http}`;
  if (is("DDoSProtection") || is("RateLimitExceeded")) return `the exchange is limiting our requests${http}`;
  if (is("OnMaintenance")) return `the exchange is under maintenance${http}`;
  if (is("ExchangeNotAvailable")) return `the exchange is not available${http}`;
  if (is("InvalidNonce")) return `the exchange refused the request's timestamp (is this machine's clock right?)${http}`;
  if (is("NetworkError")) return `the connection to the exchange failed${http}`;
  if (is("BadResponse")) return `the exchange's answer could not be read${http}`;
  if (is("AuthenticationError")) return `the exchange refused the API key${http} (check EXCHANGE_API_KEY, EXCHANGE_SECRET, the key's permissions and its IP allow-list)`;
  if (is("OrderNotFound")) return "the exchange has no such order";
  if (code) return `the exchange answered an error${http}`;
  // Whatever else: without the leading exchange id, one short plain line.
  return shortPlain(message.replace(/^\w+\s+/, ""));
}
