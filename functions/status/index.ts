import { defineRoute, type FunctionDefinition } from "../../lib/http/route.ts";
import {
  IdParam,
  listOf,
  OrderId,
  OrderObject,
  PaymentId,
  PaymentObject,
  RefundId,
  RefundObject,
} from "../../lib/http/schemas.ts";
import { getOrder, listOrders } from "../../lib/payments/orders.ts";
import { getPayment, listPayments } from "../../lib/payments/payments.ts";
import { getRefund } from "../../lib/payments/refunds.ts";
import { ListOrdersQuery, ListPaymentsQuery } from "./schema.ts";

/** status: reads of orders, payments and refunds, single and listed. */
export const statusFunction: FunctionDefinition = {
  name: "status",
  routes: [
    defineRoute({
      method: "get",
      path: "/v1/orders/:id",
      operationId: "getOrder",
      summary: "Retrieve an order",
      tag: "Orders",
      scope: "payments:read",
      params: IdParam(OrderId),
      response: OrderObject,
      status: 200,
      errors: ["validation_failed", "not_found"],
      handler: ({ ctx, params }) => getOrder(ctx, params.id),
    }),
    defineRoute({
      method: "get",
      path: "/v1/orders",
      operationId: "listOrders",
      summary: "List orders, newest first",
      tag: "Orders",
      scope: "payments:read",
      query: ListOrdersQuery,
      response: listOf(OrderObject),
      status: 200,
      errors: ["validation_failed"],
      handler: ({ ctx, query }) => listOrders(ctx, query),
    }),
    defineRoute({
      method: "get",
      path: "/v1/payments/:id",
      operationId: "getPayment",
      summary: "Retrieve a payment",
      tag: "Payments",
      scope: "payments:read",
      params: IdParam(PaymentId),
      response: PaymentObject,
      status: 200,
      errors: ["validation_failed", "not_found"],
      handler: ({ ctx, params }) => getPayment(ctx, params.id),
    }),
    defineRoute({
      method: "get",
      path: "/v1/payments",
      operationId: "listPayments",
      summary: "List payments, newest first",
      tag: "Payments",
      scope: "payments:read",
      query: ListPaymentsQuery,
      response: listOf(PaymentObject),
      status: 200,
      errors: ["validation_failed"],
      handler: ({ ctx, query }) => listPayments(ctx, query),
    }),
    defineRoute({
      method: "get",
      path: "/v1/refunds/:id",
      operationId: "getRefund",
      summary: "Retrieve a refund",
      tag: "Refunds",
      scope: "payments:read",
      params: IdParam(RefundId),
      response: RefundObject,
      status: 200,
      errors: ["validation_failed", "not_found"],
      handler: ({ ctx, params }) => getRefund(ctx, params.id),
    }),
  ],
};
