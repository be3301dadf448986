// @daydreamsai/core calls Promise.try, which arrived in Node 22.10; on Node 20 every handler
// would fail at run time without this. Import this module before core.
type PromiseTry = <T>(fn: (...args: unknown[]) => T | PromiseLike<T>, ...args: unknown[]) => Promise<T>;
const P = Promise as unknown as { try?: PromiseTry };
if (typeof P.try !== "function") {
  P.try = (fn, ...args) => new Promise((resolve) => resolve(fn(...args)));
}
export {};
