import { defineRoute, type FunctionDefinition } from "../../lib/http/route.ts";
import { IdParam, PaymentId, PaymentObject } from "../../lib/http/schemas.ts";
import { capturePayment, confirmPayment } from "../../lib/payments/confirm.ts";
import { CaptureBody, ConfirmBody } from "./schema.ts";

/** confirm: charges (or authorizes) a payment at its provider, and captures authorized ones. */
export const confirmFunction: FunctionDefinition = {
  name: "confirm",
  routes: [
    defineRoute({
      method: "post",
      path: "/v1/payments/:id/confirm",
      operationId: "confirmPayment",
      summary: "Confirm a payment (a decline is 200 with status failed)",
      tag: "Payments",
      scope: "payments:write",
      params: IdParam(PaymentId),
      body: ConfirmBody,
      response: PaymentObject,
      status: 200,
      errors: ["validation_failed", "not_found", "invalid_state", "provider_unavailable"],
      handler: ({ ctx, params, body }) => confirmPayment(ctx, params.id, body),
    }),
    defineRoute({
      method: "post",
      path: "/v1/payments/:id/capture",
      operationId: "capturePayment",
      summary: "Capture an authorized payment, fully or partly",
      tag: "Payments",
      scope: "payments:write",
      params: IdParam(PaymentId),
      body: CaptureBody,
      response: PaymentObject,
      status: 200,
      errors: ["validation_failed", "not_found", "invalid_state", "provider_unavailable"],
      handler: ({ ctx, params, body }) => capturePayment(ctx, params.id, body.amount),
    }),
  ],
};
