import type { Notifier } from "../src/chat/notifier.js";
import { recoverPayments, type RecoveryDeps, type RecoveryResult } from "../src/payments/recovery.js";

export interface PaymentRecoveryDeps {
  recovery: Omit<RecoveryDeps, "notify">;
  notifier: Notifier;
}

/**
 * Books or releases the payments that left the agent and were never booked (a crash, a Redis that
 * refused the booking, a chat decision nobody retries): at start, when Redis is back, and on a schedule.
 */
export function runPaymentRecovery(app: PaymentRecoveryDeps): Promise<RecoveryResult> {
  return recoverPayments({ ...app.recovery, notify: (message) => app.notifier.notify({ type: "model-alert", message }) });
}
