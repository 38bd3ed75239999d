import * as v from "valibot";
import { Amount, PaymentMethod, ReturnUrl } from "../../lib/http/schemas.ts";

export const ConfirmBody = v.strictObject({
  payment_method: v.optional(PaymentMethod),
  return_url: v.optional(ReturnUrl),
});

export const CaptureBody = v.strictObject({
  amount: v.optional(Amount),
});
