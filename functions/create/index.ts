import { defineRoute, type FunctionDefinition } from "../../lib/http/route.ts";
import { OrderObject, PaymentObject } from "../../lib/http/schemas.ts";
import { createOrder, getOrder } from "../../lib/payments/orders.ts";
import { createPayment, getPayment } from "../../lib/payments/payments.ts";
import { CreateOrderBody, CreatePaymentBody } from "./schema.ts";

/** create: new orders and new payments of an order. */
export const createFunction: FunctionDefinition = {
  name: "create",
  routes: [
    defineRoute({
      method: "post",
      path: "/v1/orders",
      operationId: "createOrder",
      summary: "Create an order",
      tag: "Orders",
      scope: "payments:write",
      body: CreateOrderBody,
      response: OrderObject,
      status: 201,
      errors: ["validation_failed"],
      recover: (ctx, id) => getOrder(ctx, id),
      handler: ({ ctx, body }) => createOrder(ctx, body),
    }),
    defineRoute({
      method: "post",
      path: "/v1/payments",
      operationId: "createPayment",
      summary: "Create a payment for an order",
      tag: "Payments",
      scope: "payments:write",
      body: CreatePaymentBody,
      response: PaymentObject,
      status: 201,
      errors: ["validation_failed", "not_found", "invalid_state"],
      recover: (ctx, id) => getPayment(ctx, id),
      handler: ({ ctx, body }) => createPayment(ctx, body),
    }),
  ],
};
