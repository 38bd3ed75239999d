import { setTimeout as sleep } from "node:timers/promises";
import type { Db } from "../db/db.ts";
import {
  type Failure,
  type PaymentProvider,
  ProviderError,
  type ProviderOutcome,
  type ProviderPayment,
} from "./provider.ts";

export interface SandboxOptions {
  db: Db;
  latencyMs: number;
  publicBaseUrl: string;
  /** Called when an asynchronous payment settles; the webhook sender plugs in here. */
  onAsyncSettled?: (payment: ProviderPayment, providerPaymentId: string) => void;
}

const DECLINES: Record<string, Failure> = {
  pm_card_chargeDeclined: { code: "card_declined", message: "The card was declined." },
  pm_card_insufficientFunds: { code: "insufficient_funds", message: "The card has insufficient funds." },
  pm_card_expired: { code: "expired_card", message: "The card has expired." },
};
const APPROVED = new Set(["pm_card_visa", "pm_card_mastercard", "pm_card_mir"]);

export const SANDBOX_PAYMENT_METHODS = [
  ...APPROVED,
  ...Object.keys(DECLINES),
  "pm_card_threeDSecureRequired",
  "pm_card_async",
  "pm_card_providerError",
  "pm_card_providerTimeout",
];

/**
 * A provider that behaves like a real one without leaving the process: it keeps its own ledger (sandbox_charges,
 * unique per idempotency key, as a real provider dedupes), answers per the test payment method, and can be slow.
 */
export function sandboxProvider(options: SandboxOptions): PaymentProvider {
  const { db } = options;
  const pause = () => (options.latencyMs > 0 ? sleep(options.latencyMs) : Promise.resolve());

  /** Records an operation once per idempotency key and returns the first recorded result. */
  async function ledger(
    key: string,
    payment: ProviderPayment,
    operation: string,
    amount: number,
    status: string,
  ) {
    const providerPaymentId = payment.providerPaymentId ?? `sbx_${payment.paymentId.slice(4)}`;
    const inserted = await db.query<{ status: string; provider_payment_id: string }>(
      `INSERT INTO sandbox_charges (idempotency_key, provider_payment_id, payment_id, operation, amount, currency, status)
       VALUES ($1, $2, $3, $4, $5, $6, $7)
       ON CONFLICT (idempotency_key) DO UPDATE SET idempotency_key = EXCLUDED.idempotency_key
       RETURNING status, provider_payment_id`,
      [key, providerPaymentId, payment.paymentId, operation, amount, payment.currency, status],
    );
    const row = inserted.rows[0];
    if (!row) throw new Error("sandbox ledger write returned nothing");
    return row;
  }

  async function current(payment: ProviderPayment): Promise<ProviderOutcome> {
    const { rows } = await db.query<{
      operation: string;
      status: string;
      amount: number;
      provider_payment_id: string;
    }>(
      "SELECT operation, status, amount, provider_payment_id FROM sandbox_charges WHERE payment_id = $1 ORDER BY created_at, idempotency_key",
      [payment.paymentId],
    );
    let outcome: ProviderOutcome = { status: "processing" };
    for (const row of rows) {
      const id = row.provider_payment_id;
      if (row.operation === "authorize" || row.operation === "capture" || row.operation === "complete") {
        outcome =
          row.status === "succeeded"
            ? { status: "succeeded", providerPaymentId: id, amountCaptured: row.amount }
            : row.status === "requires_capture"
              ? { status: "requires_capture", providerPaymentId: id, amountCapturable: row.amount }
              : row.status === "requires_action"
                ? { status: "requires_action", providerPaymentId: id, nextAction: redirect(payment) }
                : row.status === "processing"
                  ? { status: "processing", providerPaymentId: id }
                  : { status: "failed", providerPaymentId: id, failure: failureOf(row.status) };
      }
      if (row.operation === "cancel") outcome = { status: "canceled", providerPaymentId: id };
    }
    return outcome;
  }

  const redirect = (payment: ProviderPayment) => ({
    type: "redirect" as const,
    redirect_url: `${options.publicBaseUrl}/sandbox/3ds/${payment.paymentId}`,
  });

  return {
    name: "sandbox",
    async authorize(payment, key) {
      await pause();
      const method = payment.paymentMethod;
      if (method === "pm_card_providerError") {
        throw new ProviderError("sandbox", "sandbox provider answered 503", true);
      }
      const decline = DECLINES[method];
      if (decline) {
        const row = await ledger(key, payment, "authorize", payment.amount, `failed:${decline.code}`);
        return { status: "failed", providerPaymentId: row.provider_payment_id, failure: decline };
      }
      if (method === "pm_card_threeDSecureRequired") {
        const row = await ledger(key, payment, "authorize", payment.amount, "requires_action");
        return {
          status: "requires_action",
          providerPaymentId: row.provider_payment_id,
          nextAction: redirect(payment),
        };
      }
      if (method === "pm_card_async") {
        const row = await ledger(key, payment, "authorize", payment.amount, "processing");
        options.onAsyncSettled?.(payment, row.provider_payment_id);
        return { status: "processing", providerPaymentId: row.provider_payment_id };
      }
      if (method === "pm_card_providerTimeout") {
        // The charge goes through but the answer never arrives: the caller only learns of it by retrieve.
        await ledger(key, payment, "authorize", payment.amount, settledStatus(payment));
        throw new ProviderError("sandbox", "sandbox provider did not answer in time", false);
      }
      if (!APPROVED.has(method)) {
        const row = await ledger(key, payment, "authorize", payment.amount, "failed:card_declined");
        return {
          status: "failed",
          providerPaymentId: row.provider_payment_id,
          failure: { code: "card_declined", message: `Unknown sandbox payment method ${method}.` },
        };
      }
      const row = await ledger(key, payment, "authorize", payment.amount, settledStatus(payment));
      return row.status === "succeeded"
        ? { status: "succeeded", providerPaymentId: row.provider_payment_id, amountCaptured: payment.amount }
        : {
            status: "requires_capture",
            providerPaymentId: row.provider_payment_id,
            amountCapturable: payment.amount,
          };
    },
    async capture(payment, amount, key) {
      await pause();
      const row = await ledger(key, payment, "capture", amount, "succeeded");
      return { status: "succeeded", providerPaymentId: row.provider_payment_id, amountCaptured: amount };
    },
    async cancel(payment, key) {
      await pause();
      const row = await ledger(key, payment, "cancel", 0, "canceled");
      return { status: "canceled", providerPaymentId: row.provider_payment_id };
    },
    async refund(payment, refund, key) {
      await pause();
      await ledger(key, payment, "refund", refund.amount, "succeeded");
      return "succeeded";
    },
    async retrieve(payment) {
      await pause();
      return current(payment);
    },
  };
}

function settledStatus(payment: ProviderPayment): string {
  return payment.captureMethod === "manual" ? "requires_capture" : "succeeded";
}

function failureOf(status: string): Failure {
  const code = status.startsWith("failed:") ? status.slice(7) : "provider_error";
  return (
    Object.values(DECLINES).find((f) => f.code === code) ?? {
      code,
      message: code === "authentication_failed" ? "3-D Secure authentication failed." : "The payment failed.",
    }
  );
}
