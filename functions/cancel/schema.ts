import * as v from "valibot";
import { Amount, PaymentId } from "../../lib/http/schemas.ts";

export const CancelPaymentBody = v.strictObject({
  reason: v.optional(
    v.picklist(
      ["requested_by_customer", "duplicate", "fraudulent", "abandoned"],
      "must be requested_by_customer, duplicate, fraudulent or abandoned",
    ),
  ),
});

export const CancelOrderBody = v.strictObject({});

export const CreateRefundBody = v.strictObject({
  payment_id: PaymentId,
  amount: v.optional(Amount),
  reason: v.optional(
    v.picklist(
      ["requested_by_customer", "duplicate", "fraudulent"],
      "must be requested_by_customer, duplicate or fraudulent",
    ),
  ),
});
