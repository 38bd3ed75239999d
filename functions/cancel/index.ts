import { defineRoute, type FunctionDefinition } from "../../lib/http/route.ts";
import {
  IdParam,
  OrderId,
  OrderObject,
  PaymentId,
  PaymentObject,
  RefundObject,
} from "../../lib/http/schemas.ts";
import { cancelPayment } from "../../lib/payments/cancel.ts";
import { cancelOrder } from "../../lib/payments/orders.ts";
import { createRefund, getRefund } from "../../lib/payments/refunds.ts";
import { CancelOrderBody, CancelPaymentBody, CreateRefundBody } from "./schema.ts";

/** cancel: cancels payments and orders, and refunds captured money. */
export const cancelFunction: FunctionDefinition = {
  name: "cancel",
  routes: [
    defineRoute({
      method: "post",
      path: "/v1/payments/:id/cancel",
      operationId: "cancelPayment",
      summary: "Cancel a payment that has not been charged",
      tag: "Payments",
      scope: "payments:write",
      params: IdParam(PaymentId),
      body: CancelPaymentBody,
      response: PaymentObject,
      status: 200,
      errors: ["validation_failed", "not_found", "invalid_state", "provider_unavailable"],
      handler: ({ ctx, params, body }) => cancelPayment(ctx, params.id, body.reason),
    }),
    defineRoute({
      method: "post",
      path: "/v1/orders/:id/cancel",
      operationId: "cancelOrder",
      summary: "Cancel a pending order and its open payments",
      tag: "Orders",
      scope: "payments:write",
      params: IdParam(OrderId),
      body: CancelOrderBody,
      response: OrderObject,
      status: 200,
      errors: ["validation_failed", "not_found", "invalid_state", "provider_unavailable"],
      handler: ({ ctx, params }) => cancelOrder(ctx, params.id),
    }),
    defineRoute({
      method: "post",
      path: "/v1/refunds",
      operationId: "createRefund",
      summary: "Refund a succeeded payment, fully or partly",
      tag: "Refunds",
      scope: "payments:write",
      body: CreateRefundBody,
      response: RefundObject,
      status: 201,
      errors: ["validation_failed", "not_found", "invalid_state", "provider_unavailable"],
      recover: (ctx, id) => getRefund(ctx, id),
      handler: ({ ctx, body }) => createRefund(ctx, body),
    }),
  ],
};
