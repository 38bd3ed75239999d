import * as v from "valibot";
import { listQuery, OrderId, PaymentId } from "../../lib/http/schemas.ts";
import { ORDER_STATUSES, PAYMENT_STATUSES } from "../../lib/payments/state-machine.ts";

export const ListOrdersQuery = listQuery(OrderId, {
  status: v.optional(v.picklist(ORDER_STATUSES, `must be one of ${ORDER_STATUSES.join(", ")}`)),
});

export const ListPaymentsQuery = listQuery(PaymentId, {
  order_id: v.optional(OrderId),
  status: v.optional(v.picklist(PAYMENT_STATUSES, `must be one of ${PAYMENT_STATUSES.join(", ")}`)),
});
