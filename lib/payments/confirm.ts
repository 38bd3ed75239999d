import { isUnavailable, PG_UNIQUE_VIOLATION, sqlState } from "../db/db.ts";
import { ApiError, invalidState, notFound } from "../http/errors.ts";
import { callProvider } from "../providers/call.ts";
import {
  type PaymentProvider,
  ProviderError,
  type ProviderName,
  type ProviderOutcome,
  providerIdempotencyKey,
} from "../providers/provider.ts";
import { failoverProvider } from "../providers/routing.ts";
import { metrics } from "../telemetry/metrics.ts";
import { paymentColumns } from "./columns.ts";
import type { VerbContext } from "./context.ts";
import { paymentObjectSql } from "./object-sql.ts";
import { findPayment } from "./payments.ts";
import { toProviderPayment } from "./provider-payment.ts";
import { changeCtes, FromSource } from "./records.ts";
import { type PaymentObject, type PaymentRow, paymentObject } from "./serialize.ts";
import { type Settlement, settlePayment } from "./settle.ts";
import type { PaymentStatus } from "./state-machine.ts";
import { invalidateStatusCache } from "./status-cache.ts";

export interface ConfirmInput {
  payment_method?: string;
  return_url?: string;
}

/**
 * Confirms a payment in three steps so no transaction is held across the provider call: (1) move it to
 * processing with a conditional update — of racing confirms exactly one wins, and the partial unique index stops a
 * second payment of the same order — (2) call the provider with a key derived from (payment, attempt), (3) record
 * the outcome. A crash between 1 and 3 leaves it processing for reconciliation.
 */
export async function confirmPayment(
  ctx: VerbContext,
  id: string,
  input: ConfirmInput,
): Promise<PaymentObject> {
  const started = performance.now();
  const begun = await beginProviderOperation(ctx, id, "confirm", {
    set: `status = 'processing', attempt = attempt + 1,
          payment_method = COALESCE($3, payment_method), return_url = COALESCE($4, return_url),
          failure = NULL, next_action = NULL, processing_since = now(), updated_at = now()`,
    values: [input.payment_method ?? null, input.return_url ?? null],
  });
  const payment = await unlessDatabaseLost(ctx, begun, () => routeFirstAttempt(ctx, begun), begun);
  const provider = providerOf(ctx, payment);
  const key = providerIdempotencyKey(payment.id, "authorize", payment.attempt);
  return finishProviderOperation(ctx, payment, "confirm", "requires_confirmation", started, () =>
    provider.authorize(toProviderPayment(payment), key),
  );
}

/**
 * A payment never sent to any provider whose provider's circuit is open goes to the next provider of its
 * currency's route (PROVIDER_ROUTES "RUB=yookassa|sandbox") instead of failing fast.
 */
async function routeFirstAttempt(ctx: VerbContext, payment: PaymentRow): Promise<PaymentRow> {
  const target = failoverProvider(ctx.providers, {
    provider: payment.provider,
    currency: payment.currency,
    previousAttempts: payment.attempt - 1,
  });
  if (!target) return payment;
  const { rows } = await ctx.db.query<PaymentRow>(
    `UPDATE payments SET provider = $2, updated_at = now()
     WHERE id = $1 AND status = 'processing' AND attempt = 1 RETURNING ${paymentColumns()}`,
    [payment.id, target],
  );
  await invalidateStatusCache(ctx, "payment", payment.id);
  ctx.log.warn(
    { payment_id: payment.id, from: payment.provider, to: target },
    "provider down; payment routed on",
  );
  return rows[0] ?? payment;
}

/** Captures an authorized payment, fully or partly (never more than authorized). */
export async function capturePayment(ctx: VerbContext, id: string, amount?: number): Promise<PaymentObject> {
  const started = performance.now();
  const payment = await beginProviderOperation(ctx, id, "capture", {
    set: "status = 'processing', processing_since = now(), updated_at = now()",
    condition: "COALESCE($3, amount_capturable) <= amount_capturable",
    values: [amount ?? null],
    refused: (current) => {
      if (amount !== undefined && current.status === "requires_capture") {
        throw new ApiError(
          "validation_failed",
          `amount exceeds the authorized ${current.amount_capturable}.`,
          {
            errors: [{ path: "amount", message: `must be at most ${current.amount_capturable}` }],
          },
        );
      }
    },
  });
  const provider = providerOf(ctx, payment);
  const captureAmount = amount ?? payment.amount_capturable;
  // The amount is part of the key: a capture refused for one amount may be retried for another, while a repeat of
  // the same capture (same amount) gets the provider's first answer.
  const key = providerIdempotencyKey(payment.id, "capture", `${payment.attempt}.${captureAmount}`);
  return finishProviderOperation(ctx, payment, "capture", "requires_capture", started, () =>
    provider.capture(toProviderPayment(payment), captureAmount, key),
  );
}

const OPERATION_FROM: Record<"confirm" | "capture", PaymentStatus> = {
  confirm: "requires_confirmation",
  capture: "requires_capture",
};

/** Step 1's move: SET and extra WHERE of the payment's update (parameters from $3), and what a refusal means. */
export interface Move {
  set: string;
  /** Besides the status the operation starts from (OPERATION_FROM), which the statement checks itself. */
  condition?: string;
  values: unknown[];
  /** Called with the payment as it is when the move did not apply, before the status conflict is answered. */
  refused?: (current: PaymentRow) => void;
}

/**
 * Step 1's statement: locks the order, then the payment, and moves the payment if it is still in the operation's
 * starting status; `changes` (WITH-clauses over `moved`) record the move in the same statement. The status is
 * checked on the locked row (a CTE, which no condition is pushed into), not as a condition on `payments`: there the
 * planner would weigh the partial index on open statuses, and while the statistics count fewer open payments than
 * there are, it picks it and reads all of them on every confirm.
 */
function providerMoveStatement(
  operation: "confirm" | "capture",
  move: Pick<Move, "set" | "condition">,
  changes: string,
) {
  const orderCondition =
    operation === "confirm"
      ? "(SELECT status FROM locked_order) = 'pending'"
      : "EXISTS (SELECT 1 FROM locked_order)";
  return `WITH locked_order AS (
      SELECT o.status FROM orders o JOIN payments p ON p.order_id = o.id
      WHERE p.id = $1 AND p.merchant_id = $2 FOR UPDATE OF o
    ), locked_payment AS (
      SELECT id AS locked_id, status AS locked_status FROM payments
      WHERE id = $1 AND merchant_id = $2 AND EXISTS (SELECT 1 FROM locked_order) FOR UPDATE
    ), moved AS (
      UPDATE payments SET ${move.set}
      FROM locked_payment
      WHERE id = $1 AND id = locked_id AND locked_status = '${OPERATION_FROM[operation]}'
        AND ${move.condition ?? "TRUE"} AND ${orderCondition}
      RETURNING ${paymentColumns("payments")}
    ), ${changes}
    SELECT ${paymentColumns()} FROM moved`;
}

/** Step 1's whole statement, the move and its audit row and event, with its parameters. */
export function providerMoveQuery(
  ctx: Pick<VerbContext, "actor">,
  id: string,
  operation: "confirm" | "capture",
  move: Move,
): { sql: string; values: unknown[] } {
  const change = changeCtes(
    ctx,
    {
      objectType: "payment",
      objectId: id,
      action: `payment.${operation}`,
      statusBefore: OPERATION_FROM[operation],
      statusAfter: "processing",
      amount: new FromSource("moved.amount"),
      currency: new FromSource("moved.currency"),
      event: "payment.processing",
      data: new FromSource(paymentObjectSql("moved")),
    },
    "moved",
    3 + move.values.length,
  );
  return {
    sql: providerMoveStatement(operation, move, change.sql),
    values: [id, ctx.actor.merchantId, ...move.values, ...change.values],
  };
}

/**
 * Step 1: the conditional move to processing, with its audit row and event, under the order's lock: one
 * statement, so one round trip and no transaction to open and commit. The order's lock sits in the update's
 * condition, so it is taken before the payment row is (confirms of an order's payments and its cancellation take
 * turns, always order first). The event carries the moved row, which only the statement knows: PostgreSQL builds
 * its API object (paymentObjectSql).
 */
async function beginProviderOperation(
  ctx: VerbContext,
  id: string,
  operation: "confirm" | "capture",
  move: Move,
): Promise<PaymentRow> {
  const { sql, values } = providerMoveQuery(ctx, id, operation, move);
  let payment: PaymentRow | undefined;
  try {
    const { rows } = await ctx.db.query<PaymentRow>(sql, values);
    payment = rows[0];
  } catch (error) {
    if (sqlState(error) === PG_UNIQUE_VIOLATION) {
      throw invalidState("The order already has a payment in progress or paid.");
    }
    throw error;
  }
  if (!payment) throw await refusal(ctx, id, operation, move);
  await invalidateStatusCache(ctx, "payment", payment.id);
  ctx.onEventsWritten();
  return payment;
}

/** Why a move did not apply, read after the fact: no such payment, its order no longer pending, or its status. */
async function refusal(ctx: VerbContext, id: string, operation: "confirm" | "capture", move: Move) {
  const { rows } = await ctx.db.query<PaymentRow & { order_status: string }>(
    `SELECT ${paymentColumns("p")}, o.status AS order_status FROM payments p JOIN orders o ON o.id = p.order_id
     WHERE p.id = $1 AND p.merchant_id = $2`,
    [id, ctx.actor.merchantId],
  );
  const current = rows[0];
  if (!current) return notFound("payment");
  if (operation === "confirm" && current.order_status !== "pending") {
    return invalidState(`The order is ${current.order_status}; its payments cannot be confirmed.`);
  }
  move.refused?.(current);
  return invalidState(
    `Payment is ${current.status}; ${operation} needs status ${OPERATION_FROM[operation]}.`,
  );
}

/** Steps 2 and 3: call the provider and record what it said. */
async function finishProviderOperation(
  ctx: VerbContext,
  payment: PaymentRow,
  operation: "confirm" | "capture",
  revertTo: PaymentStatus,
  started: number,
  call: () => Promise<ProviderOutcome>,
): Promise<PaymentObject> {
  const provider = payment.provider as ProviderName;
  const observe = (outcome: string) =>
    metrics.paymentDuration.observe({ provider, operation, outcome }, (performance.now() - started) / 1000);
  let outcome: ProviderOutcome;
  try {
    outcome = await callProvider(provider, operation === "confirm" ? "authorize" : "capture", call);
  } catch (error) {
    observe("error");
    if (error instanceof ProviderError && error.definite) {
      // The provider did not act: put the payment back so the client may retry.
      const reverted = await unlessDatabaseLost(
        ctx,
        payment,
        () =>
          settlePayment(
            ctx,
            payment.id,
            ["processing"],
            revertOutcome(revertTo, payment),
            `payment.${operation}.revert`,
          ).then(() => true),
        false,
      );
      if (!reverted) return paymentObject(payment);
      // The provider's own message stays in the log: it can name accounts, keys or internals.
      ctx.log.warn({ payment_id: payment.id, provider, err: error.message }, "provider did not act");
      const open = error.retryAfterSeconds !== undefined;
      throw new ApiError(
        "provider_unavailable",
        open
          ? `The payment provider is unavailable; nothing was charged. Retry after ${error.retryAfterSeconds} s.`
          : "The payment provider could not process the request; nothing was charged.",
        { status: open ? 503 : 502, retryAfter: error.retryAfterSeconds },
      );
    }
    // The provider may have acted: the payment stays processing until reconciliation asks it.
    ctx.log.warn(
      { payment_id: payment.id, err: error instanceof Error ? error.message : error },
      "provider outcome unknown",
    );
    const current = await unlessDatabaseLost(ctx, payment, () => findPayment(ctx, payment.id), payment);
    return paymentObject(current ?? payment);
  }
  const answer = await unlessDatabaseLost(
    ctx,
    payment,
    async () => {
      const settled = await settlePayment(
        ctx,
        payment.id,
        ["processing"],
        outcome,
        `payment.${operation}.${outcome.status}`,
        { answersRequest: true },
      );
      if (settled) return paymentObject(settled);
      // Someone else (a webhook, reconciliation) settled it first; answer with what is committed.
      const current = await findPayment(ctx, payment.id);
      return paymentObject(current ?? payment);
    },
    paymentObject(payment),
  );
  observe(outcome.status === "failed" ? "failure" : "success");
  return answer;
}

/**
 * After step 1 committed, a 5xx would tell the client that nothing was (the contract: 5xx answers are not stored,
 * a retry runs again) — and its retry would meet a payment already processing. So when the database is lost while
 * the provider's answer is being recorded, the answer is what is committed: the payment, processing, which
 * reconciliation settles with the provider's own account of it.
 */
async function unlessDatabaseLost<T>(
  ctx: VerbContext,
  payment: PaymentRow,
  work: () => Promise<T>,
  committed: T,
): Promise<T> {
  try {
    return await work();
  } catch (error) {
    if (!isUnavailable(error)) throw error;
    ctx.log.warn(
      { payment_id: payment.id, err: (error as Error).message },
      "database lost after the payment went to processing; it stays processing for reconciliation",
    );
    return committed;
  }
}

function revertOutcome(status: PaymentStatus, payment: PaymentRow): Settlement {
  return status === "requires_capture"
    ? {
        status: "requires_capture",
        providerPaymentId: payment.provider_payment_id ?? "",
        amountCapturable: payment.amount_capturable,
      }
    : { status: "requires_confirmation" };
}

function providerOf(ctx: VerbContext, payment: PaymentRow): PaymentProvider {
  const provider = ctx.providers.get(payment.provider as ProviderName);
  if (!provider)
    throw new ApiError("provider_unavailable", `Provider ${payment.provider} is not configured.`);
  return provider;
}
