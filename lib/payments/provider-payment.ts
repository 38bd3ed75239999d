import type { ProviderPayment } from "../providers/provider.ts";
import type { Currency } from "./money.ts";
import type { PaymentRow } from "./serialize.ts";

export function toProviderPayment(row: PaymentRow): ProviderPayment {
  return {
    paymentId: row.id,
    merchantId: row.merchant_id,
    amount: row.amount,
    currency: row.currency as Currency,
    paymentMethod: row.payment_method,
    captureMethod: row.capture_method,
    providerPaymentId: row.provider_payment_id ?? undefined,
    returnUrl: row.return_url ?? undefined,
    description: row.description ?? undefined,
  };
}
