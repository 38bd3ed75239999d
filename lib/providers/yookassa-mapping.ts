import * as v from "valibot";
import { type Currency, fromDecimalString, isCurrency, toDecimalString } from "../payments/money.ts";
import { type FailureCode, failure } from "./failures.ts";
import type { ProviderOutcome, ProviderPayment } from "./provider.ts";

const Amount = v.object({ value: v.pipe(v.string(), v.regex(/^\d+(\.\d+)?$/)), currency: v.string() });

/** The fields of YooKassa's payment object that we read. */
export const YooPayment = v.looseObject({
  id: v.string(),
  status: v.picklist(["pending", "waiting_for_capture", "succeeded", "canceled"]),
  amount: Amount,
  confirmation: v.optional(v.looseObject({ type: v.string(), confirmation_url: v.optional(v.string()) })),
  cancellation_details: v.optional(
    v.looseObject({ party: v.optional(v.string()), reason: v.optional(v.string()) }),
  ),
  metadata: v.optional(v.nullable(v.record(v.string(), v.string()))),
});
export type YooPayment = v.InferOutput<typeof YooPayment>;

export const YooRefund = v.looseObject({
  id: v.string(),
  payment_id: v.string(),
  status: v.picklist(["pending", "succeeded", "canceled"]),
  amount: Amount,
  metadata: v.optional(v.nullable(v.record(v.string(), v.string()))),
});
export type YooRefund = v.InferOutput<typeof YooRefund>;

export function parseAnswer<S extends v.GenericSchema>(schema: S, value: unknown): v.InferOutput<S> {
  const parsed = v.safeParse(schema, value);
  if (!parsed.success) throw new Error("YooKassa answered with an object it does not document");
  return parsed.output;
}

/** `{value:"100.00", currency:"RUB"}` from minor units, exactly (no floating point). */
export const yooAmount = (minor: number, currency: Currency) => ({
  value: toDecimalString(minor, currency),
  currency,
});

/** The amount of an object in minor units, read in its own currency. */
export function minorUnits(amount: { value: string; currency: string }, fallback: Currency): number {
  return fromDecimalString(amount.value, isCurrency(amount.currency) ? amount.currency : fallback);
}

/**
 * cancellation_details.reason → our failure code (https://yookassa.ru/developers/payment-acceptance/after-the-payment/declined-payments).
 * expired_on_confirmation means the customer never finished the confirmation (3-D Secure) in time.
 */
const REASONS: Record<string, FailureCode> = {
  insufficient_funds: "insufficient_funds",
  card_expired: "expired_card",
  "3d_secure_failed": "authentication_failed",
  expired_on_confirmation: "authentication_failed",
  expired_on_capture: "authorization_expired",
  internal_timeout: "provider_error",
  issuer_unavailable: "provider_error",
};

/** A YooKassa payment's state in our terms. */
export function paymentOutcome(payment: YooPayment, currency: Currency): ProviderOutcome {
  const id = payment.id;
  switch (payment.status) {
    case "pending": {
      const url = payment.confirmation?.confirmation_url;
      return url
        ? {
            status: "requires_action",
            providerPaymentId: id,
            nextAction: { type: "redirect", redirect_url: url },
          }
        : { status: "processing", providerPaymentId: id };
    }
    case "waiting_for_capture":
      return {
        status: "requires_capture",
        providerPaymentId: id,
        amountCapturable: minorUnits(payment.amount, currency),
      };
    case "succeeded":
      return {
        status: "succeeded",
        providerPaymentId: id,
        amountCaptured: minorUnits(payment.amount, currency),
      };
    case "canceled": {
      const reason = payment.cancellation_details?.reason ?? "";
      // Our own cancel (a void) is a cancellation; every other reason is the payment failing.
      if (reason === "canceled_by_merchant") return { status: "canceled", providerPaymentId: id };
      return {
        status: "failed",
        providerPaymentId: id,
        failure: failure(REASONS[reason] ?? "card_declined"),
      };
    }
  }
}

export function refundOutcome(refund: YooRefund): "succeeded" | "pending" | "failed" {
  return refund.status === "succeeded" ? "succeeded" : refund.status === "pending" ? "pending" : "failed";
}

const METHOD_TYPES = new Set([
  "bank_card",
  "sbp",
  "yoo_money",
  "sberbank",
  "tinkoff_bank",
  "mir_pay",
  "sber_loan",
]);

/**
 * How a payment method token reaches YooKassa. `pm_<32 hex>` names a method saved at YooKassa (its UUID without
 * dashes: our tokens are [A-Za-z0-9_]); `pm_<type>` (pm_sbp, pm_yoo_money, …) asks for that type on YooKassa's page;
 * anything else (pm_card_…) is a bank card entered on YooKassa's page.
 */
export function paymentMethodFields(token: string): Record<string, unknown> {
  const rest = token.replace(/^pm_/, "");
  if (/^[0-9a-f]{32}$/.test(rest)) {
    const uuid = `${rest.slice(0, 8)}-${rest.slice(8, 12)}-${rest.slice(12, 16)}-${rest.slice(16, 20)}-${rest.slice(20)}`;
    return { payment_method_id: uuid };
  }
  return { payment_method_data: { type: METHOD_TYPES.has(rest) ? rest : "bank_card" } };
}

export function createBody(payment: ProviderPayment): Record<string, unknown> {
  return {
    amount: yooAmount(payment.amount, payment.currency),
    capture: payment.captureMethod === "automatic",
    ...paymentMethodFields(payment.paymentMethod),
    ...(payment.returnUrl ? { confirmation: { type: "redirect", return_url: payment.returnUrl } } : {}),
    // YooKassa limits descriptions to 128 characters.
    ...(payment.description ? { description: payment.description.slice(0, 128) } : {}),
    metadata: { payment_id: payment.paymentId, merchant_id: payment.merchantId },
    // 54-FZ: the fiscal receipt is registered by YooKassa with the payment when one is given.
    ...(payment.receipt ? { receipt: payment.receipt } : {}),
  };
}
