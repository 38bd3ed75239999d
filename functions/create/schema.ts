import * as v from "valibot";
import {
  Amount,
  Currency,
  Description,
  Metadata,
  OrderId,
  PaymentMethod,
  ProviderName,
  ReturnUrl,
} from "../../lib/http/schemas.ts";

export const CreateOrderBody = v.strictObject({
  amount: Amount,
  currency: Currency,
  description: v.optional(Description),
  metadata: v.optional(Metadata),
});

export const CreatePaymentBody = v.strictObject({
  order_id: OrderId,
  payment_method: PaymentMethod,
  provider: v.optional(ProviderName),
  capture_method: v.optional(v.picklist(["automatic", "manual"], "must be automatic or manual")),
  return_url: v.optional(ReturnUrl),
  description: v.optional(Description),
  metadata: v.optional(Metadata),
});
