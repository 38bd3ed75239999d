import { randomUUID } from "node:crypto";
import {
  ProviderError,
  type ProviderName,
  type ProviderOutcome,
  providerIdempotencyKey,
} from "../providers/provider.ts";
import { paymentColumns, refundColumns } from "./columns.ts";
import type { ServiceContext, VerbContext } from "./context.ts";
import { toProviderPayment } from "./provider-payment.ts";
import { settleRefund } from "./refunds.ts";
import type { PaymentRow, RefundRow } from "./serialize.ts";
import { type Settlement, settlePayment } from "./settle.ts";

export interface ReconcileOptions {
  /** Only payments processing (and refunds pending) for longer than this; default RECONCILE_AFTER_SECONDS. */
  olderThanSeconds?: number;
  /** At most this many payments and this many refunds per pass. */
  limit?: number;
  /** The CloudEvent source of what this pass changes: the function or job running it. */
  source?: string;
}

export interface ReconcileCounts {
  /** Asked about at their provider. */
  checked: number;
  /** Moved to what the provider said. */
  settled: number;
  /** Still in progress at the provider, or settled by someone else meanwhile. */
  unchanged: number;
  /** The provider could not be asked; tried again next pass. */
  errors: number;
}

export interface ReconcileResult {
  payments: ReconcileCounts;
  refunds: ReconcileCounts;
}

const zero = (): ReconcileCounts => ({ checked: 0, settled: 0, unchanged: 0, errors: 0 });

/**
 * One reconciliation pass (the janitor): payments left `processing` — a provider call timed out, answered 5xx, or
 * the process died between the call and recording its answer — and refunds left `pending` are looked up at their
 * provider and settled with what it says, through the same conditional settle as every other answer. Safe to run
 * anywhere, any number of times, concurrently with live traffic: a payment that moved meanwhile is left alone,
 * and every question to a provider reuses the original idempotency key, so nothing is ever charged twice.
 */
export async function reconcile(
  service: ServiceContext,
  options: ReconcileOptions = {},
): Promise<ReconcileResult> {
  const olderThan = options.olderThanSeconds ?? service.config.reconcileAfterSeconds;
  const limit = options.limit ?? 100;
  const run = { requestId: `reconcile_${randomUUID()}`, source: options.source ?? "reconcile" };
  const result = { payments: zero(), refunds: zero() };

  const payments = await service.db.query<PaymentRow>(
    `SELECT ${paymentColumns()} FROM payments
     WHERE status = 'processing' AND processing_since < now() - $1 * interval '1 second'
     ORDER BY processing_since LIMIT $2`,
    [olderThan, limit],
  );
  for (const payment of payments.rows) {
    result.payments.checked++;
    const outcome = await ask(service, payment.provider, payment.id, (provider) =>
      // The authorize key: used only when the provider's payment id was never learned (see each adapter).
      provider.retrieve(
        toProviderPayment(payment),
        providerIdempotencyKey(payment.id, "authorize", payment.attempt),
      ),
    );
    if (outcome === undefined) {
      result.payments.errors++;
      continue;
    }
    if (outcome.status === "processing") {
      result.payments.unchanged++;
      continue;
    }
    const settled = await settlePayment(
      contextFor(service, payment.merchant_id, run),
      payment.id,
      ["processing"],
      settlementOf(outcome),
      `payment.reconcile.${outcome.status}`,
    );
    if (settled) result.payments.settled++;
    else result.payments.unchanged++;
  }

  const refunds = await service.db.query<RefundRow>(
    `SELECT ${refundColumns()} FROM refunds WHERE status = 'pending' AND created_at < now() - $1 * interval '1 second'
     ORDER BY created_at LIMIT $2`,
    [olderThan, limit],
  );
  for (const refund of refunds.rows) {
    result.refunds.checked++;
    const found = await service.db.query<PaymentRow>(
      `SELECT ${paymentColumns()} FROM payments WHERE id = $1`,
      [refund.payment_id],
    );
    const payment = found.rows[0];
    const status =
      payment &&
      (await ask(service, payment.provider, refund.id, (provider) => {
        const args = [
          toProviderPayment(payment),
          { refundId: refund.id, amount: refund.amount },
          providerIdempotencyKey(refund.id, "refund", 1),
        ] as const;
        // Without a way to look a refund up, repeating it under its key is the same question.
        return provider.retrieveRefund ? provider.retrieveRefund(...args) : provider.refund(...args);
      }));
    if (!status) {
      result.refunds.errors++;
      continue;
    }
    if (status === "pending") {
      result.refunds.unchanged++;
      continue;
    }
    const after = await settleRefund(contextFor(service, refund.merchant_id, run), refund, status);
    if (after.status !== "pending") result.refunds.settled++;
    else result.refunds.unchanged++;
  }

  if (result.payments.checked + result.refunds.checked > 0)
    service.log.info({ ...result, run: run.requestId }, "reconciled");
  return result;
}

/** Asks a provider; undefined (logged) when it is not configured or cannot answer right now. */
async function ask<T>(
  service: ServiceContext,
  name: string,
  objectId: string,
  question: (provider: NonNullable<ReturnType<ServiceContext["providers"]["get"]>>) => Promise<T>,
): Promise<T | undefined> {
  const provider = service.providers.get(name as ProviderName);
  if (!provider) {
    service.log.error({ object_id: objectId, provider: name }, "reconcile: provider not configured");
    return undefined;
  }
  try {
    return await question(provider);
  } catch (error) {
    service.log.warn(
      {
        object_id: objectId,
        provider: name,
        err: error instanceof ProviderError ? error.message : String(error),
      },
      "reconcile: provider could not be asked",
    );
    return undefined;
  }
}

/**
 * A payment in processing cannot become canceled (the state machine allows it from the waiting states only): a
 * provider that canceled it during our call means the payment did not go through.
 */
function settlementOf(outcome: ProviderOutcome): Settlement {
  if (outcome.status !== "canceled") return outcome;
  return {
    status: "failed",
    providerPaymentId: outcome.providerPaymentId,
    failure: { code: "provider_error", message: "The payment provider canceled the payment." },
  };
}

function contextFor(
  service: ServiceContext,
  merchantId: string,
  run: { requestId: string; source: string },
): VerbContext {
  return { ...service, actor: { merchantId, requestId: run.requestId, type: "system", source: run.source } };
}
