import * as v from "valibot";
import { CURRENCIES, MAX_AMOUNT } from "../payments/money.ts";
import { ORDER_STATUSES, PAYMENT_STATUSES } from "../payments/state-machine.ts";
import { PROVIDER_NAMES } from "../providers/provider.ts";

/** Schemas shared by several functions: money, metadata, ids, API objects and lists. */

export const Amount = v.pipe(
  v.number("must be an integer amount in minor units"),
  v.integer("must be an integer amount in minor units"),
  v.minValue(1, "must be at least 1"),
  v.maxValue(MAX_AMOUNT, `must be at most ${MAX_AMOUNT}`),
);
export const Currency = v.picklist(CURRENCIES, `must be one of ${CURRENCIES.join(", ")}`);

export const Metadata = v.pipe(
  v.record(
    v.pipe(
      v.string(),
      v.minLength(1, "keys must be 1–40 characters"),
      v.maxLength(40, "keys must be 1–40 characters"),
    ),
    v.pipe(v.string("values must be strings"), v.maxLength(500, "values must be at most 500 characters")),
  ),
  v.check((m) => Object.keys(m).length <= 20, "must have at most 20 keys"),
);

export const Description = v.pipe(v.string(), v.maxLength(1000, "must be at most 1000 characters"));

const idOf = (prefix: string, what: string) =>
  v.pipe(v.string(), v.regex(new RegExp(`^${prefix}_[0-9a-f]{32}$`), `must be a ${what} id (${prefix}_…)`));
export const OrderId = idOf("ord", "order");
export const PaymentId = idOf("pay", "payment");
export const RefundId = idOf("re", "refund");

export const PaymentMethod = v.pipe(
  v.string(),
  v.regex(/^pm_[A-Za-z0-9_]{1,100}$/, "must be a payment method token (pm_…)"),
);
export const ProviderName = v.picklist(PROVIDER_NAMES, `must be one of ${PROVIDER_NAMES.join(", ")}`);
export const ReturnUrl = v.pipe(
  v.string(),
  v.maxLength(2000),
  v.url("must be an absolute URL"),
  v.regex(/^https?:/, "must be http(s)"),
);

const Timestamp = v.pipe(v.string(), v.isoTimestamp());
const Failure = v.object({ code: v.string(), message: v.string() });
const NextAction = v.object({ type: v.literal("redirect"), redirect_url: v.string() });

export const OrderObject = v.object({
  id: v.string(),
  object: v.literal("order"),
  amount: v.number(),
  currency: v.string(),
  status: v.picklist(ORDER_STATUSES),
  description: v.nullable(v.string()),
  metadata: v.record(v.string(), v.string()),
  amount_paid: v.number(),
  amount_refunded: v.number(),
  created_at: Timestamp,
  updated_at: Timestamp,
});

export const PaymentObject = v.object({
  id: v.string(),
  object: v.literal("payment"),
  order_id: v.string(),
  amount: v.number(),
  currency: v.string(),
  status: v.picklist(PAYMENT_STATUSES),
  provider: v.string(),
  provider_payment_id: v.nullable(v.string()),
  payment_method: v.string(),
  capture_method: v.picklist(["automatic", "manual"]),
  amount_capturable: v.number(),
  amount_captured: v.number(),
  amount_refunded: v.number(),
  next_action: v.nullable(NextAction),
  failure: v.nullable(Failure),
  cancellation_reason: v.nullable(v.string()),
  return_url: v.nullable(v.string()),
  description: v.nullable(v.string()),
  metadata: v.record(v.string(), v.string()),
  created_at: Timestamp,
  updated_at: Timestamp,
});

export const RefundObject = v.object({
  id: v.string(),
  object: v.literal("refund"),
  payment_id: v.string(),
  amount: v.number(),
  currency: v.string(),
  status: v.picklist(["pending", "succeeded", "failed"]),
  reason: v.nullable(v.string()),
  failure: v.nullable(Failure),
  created_at: Timestamp,
  updated_at: Timestamp,
});

export const listOf = <S extends v.GenericSchema>(item: S) =>
  v.object({ object: v.literal("list"), data: v.array(item), has_more: v.boolean() });

/** A page size as a query string: 1–100. */
export const Limit = v.pipe(
  v.string(),
  v.regex(/^\d{1,3}$/, "must be an integer 1–100"),
  v.transform(Number),
  v.minValue(1, "must be at least 1"),
  v.maxValue(100, "must be at most 100"),
);

/** limit / starting_after / ending_before, as query strings. */
export const listQuery = <E extends v.ObjectEntries>(cursor: v.GenericSchema<string>, extra: E) =>
  v.pipe(
    v.strictObject({
      limit: v.optional(Limit, "10"),
      starting_after: v.optional(cursor),
      ending_before: v.optional(cursor),
      ...extra,
    }),
    v.check(
      (q) => !(q.starting_after && q.ending_before),
      "starting_after and ending_before cannot be used together",
    ),
  );

export const IdParam = <S extends v.GenericSchema<string>>(id: S) => v.object({ id });
