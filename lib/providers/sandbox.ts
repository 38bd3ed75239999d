import { setTimeout as sleep } from "node:timers/promises";
import type { Db, Queryable } from "../db/db.ts";
import type { Logger } from "../telemetry/logger.ts";
import type { FailureCode } from "./failures.ts";
import {
  type PaymentProvider,
  ProviderError,
  type ProviderOutcome,
  type ProviderPayment,
  type ProviderRefund,
  ProviderRequestRejected,
} from "./provider.ts";
import {
  findOperation,
  ledgerRows,
  lockSandboxPayment,
  outcomeOf,
  recordOperation,
  type SandboxState,
  stateOf,
  threeDSecureUrl,
} from "./sandbox-ledger.ts";
import { deliverSandboxEvent, parseSandboxWebhook, sandboxEvent } from "./sandbox-webhook.ts";

export interface SandboxOptions {
  db: Db;
  latencyMs: number;
  publicBaseUrl: string;
  /** Signs the notifications the sandbox sends (SANDBOX_WEBHOOK_SECRET). */
  webhookSecret: string;
  /** How long pm_card_async stays processing before the sandbox settles it and notifies us. */
  asyncDelayMs: number;
  /** Notification retries: deliveries in all, and the first backoff delay. */
  webhookAttempts?: number;
  webhookInitialDelayMs?: number;
  log?: Logger;
}

const DECLINES: Record<string, FailureCode> = {
  pm_card_chargeDeclined: "card_declined",
  pm_card_insufficientFunds: "insufficient_funds",
  pm_card_expired: "expired_card",
};
const APPROVED = new Set(["pm_card_visa", "pm_card_mastercard", "pm_card_mir"]);

export const SANDBOX_PAYMENT_METHODS = [
  ...APPROVED,
  ...Object.keys(DECLINES),
  "pm_card_threeDSecureRequired",
  "pm_card_async",
  "pm_card_providerError",
  "pm_card_providerTimeout",
];

const settledStatus = (payment: ProviderPayment) =>
  payment.captureMethod === "manual" ? "requires_capture" : "succeeded";

/**
 * A provider that behaves like a real one without leaving the process: it keeps its own ledger (sandbox_charges,
 * unique per idempotency key, as a real provider dedupes), answers per the test payment method, can be slow, and
 * notifies asynchronous outcomes through a signed webhook to our own endpoint.
 */
export function sandboxProvider(options: SandboxOptions): PaymentProvider {
  const { db } = options;
  const pause = () => (options.latencyMs > 0 ? sleep(options.latencyMs) : Promise.resolve());
  const redirect = (payment: ProviderPayment) => threeDSecureUrl(options.publicBaseUrl, payment.paymentId);

  /** The sandbox deciding a charge: recorded under the key, so a retry or replay gets the first answer. */
  async function charge(payment: ProviderPayment, key: string): Promise<ProviderOutcome> {
    const method = payment.paymentMethod;
    if (method === "pm_card_providerError") {
      throw new ProviderError("sandbox", "sandbox provider answered 503", true);
    }
    const status = Object.hasOwn(DECLINES, method)
      ? `failed:${DECLINES[method]}`
      : method === "pm_card_threeDSecureRequired"
        ? "requires_action"
        : method === "pm_card_async"
          ? "processing"
          : APPROVED.has(method) || method === "pm_card_providerTimeout"
            ? settledStatus(payment)
            : "failed:card_declined";
    const row = await recordOperation(db, key, payment, "authorize", payment.amount, status);
    // Only the first request starts the clock: a retry or replay of it is the same charge.
    if (row.inserted && row.status === "processing") scheduleAsync(payment);
    return outcomeOf(row.status, row.provider_payment_id, row.amount, redirect(payment));
  }

  /** An asynchronous payment settles after the delay whatever happens here; the timer only sends the news. */
  function scheduleAsync(payment: ProviderPayment) {
    const timer = setTimeout(() => {
      void completeAsync(payment).then((event) => {
        if (!event) return;
        return deliverSandboxEvent(event, {
          url: `${options.publicBaseUrl}/v1/webhooks/sandbox`,
          secret: options.webhookSecret,
          attempts: options.webhookAttempts ?? 5,
          initialDelayMs: options.webhookInitialDelayMs ?? 1_000,
          timeoutMs: 10_000,
          log: options.log,
        });
      });
    }, options.asyncDelayMs);
    timer.unref();
  }

  async function completeAsync(payment: ProviderPayment, q: Queryable = db) {
    try {
      const row = await recordOperation(
        q,
        `${payment.paymentId}:complete`,
        payment,
        "complete",
        payment.amount,
        settledStatus(payment),
      );
      const outcome = outcomeOf(row.status, row.provider_payment_id, row.amount, redirect(payment));
      return sandboxEvent(payment.paymentId, outcome, row.amount, payment.currency, new Date(row.created_at));
    } catch (error) {
      options.log?.error(
        { payment_id: payment.paymentId, err: (error as Error).message },
        "sandbox async failed",
      );
      return undefined;
    }
  }

  /** The ledger's view; an asynchronous payment past its delay is settled first, as the real thing would be. */
  async function current(payment: ProviderPayment, q: Queryable = db): Promise<SandboxState> {
    const state = stateOf(await ledgerRows(q, payment.paymentId), redirect(payment));
    if (state.pendingSince && Date.now() - state.pendingSince.getTime() >= options.asyncDelayMs) {
      await completeAsync(payment, q);
      return stateOf(await ledgerRows(q, payment.paymentId), redirect(payment));
    }
    return state;
  }

  /** Refunds at most what is captured and not yet refunded; the first answer under a key is final. */
  async function refundOnce(payment: ProviderPayment, refund: ProviderRefund, key: string) {
    const done = await findOperation(db, key);
    if (done) return done.status === "succeeded" ? "succeeded" : "failed";
    const state = await current(payment);
    const fits = state.outcome.status === "succeeded" && state.refunded + refund.amount <= state.captured;
    const row = await recordOperation(
      db,
      key,
      payment,
      "refund",
      refund.amount,
      fits ? "succeeded" : "failed",
    );
    return row.status === "succeeded" ? "succeeded" : "failed";
  }

  return {
    name: "sandbox",
    async authorize(payment, key) {
      await pause();
      const outcome = await charge(payment, key);
      if (payment.paymentMethod === "pm_card_providerTimeout") {
        // The charge went through but the answer never arrives: only retrieve can tell.
        throw new ProviderError("sandbox", "sandbox provider did not answer in time", false);
      }
      return outcome;
    },
    async capture(payment, amount, key) {
      await pause();
      const done = await findOperation(db, key);
      if (done)
        return {
          status: "succeeded",
          providerPaymentId: done.provider_payment_id,
          amountCaptured: done.amount,
        };
      const state = await current(payment);
      if (state.outcome.status !== "requires_capture") {
        throw new ProviderRequestRejected(
          "sandbox",
          `cannot capture a payment that is ${state.outcome.status}`,
        );
      }
      if (amount > state.capturable) {
        throw new ProviderRequestRejected(
          "sandbox",
          `cannot capture ${amount}: ${state.capturable} authorized`,
        );
      }
      const row = await recordOperation(db, key, payment, "capture", amount, "succeeded");
      return { status: "succeeded", providerPaymentId: row.provider_payment_id, amountCaptured: row.amount };
    },
    async cancel(payment, key) {
      await pause();
      // Decided under the payment's lock, like the customer's 3-D Secure answer: one of the two comes first.
      return db.transaction(async (tx) => {
        await lockSandboxPayment(tx, payment.paymentId);
        const done = await findOperation(tx, key);
        if (done) return { status: "canceled", providerPaymentId: done.provider_payment_id };
        const state = await current(payment, tx);
        if (state.outcome.status === "succeeded") {
          throw new ProviderRequestRejected("sandbox", "cannot cancel a captured payment; refund it");
        }
        if (state.outcome.status === "failed") {
          throw new ProviderRequestRejected("sandbox", "cannot cancel a failed payment");
        }
        const row = await recordOperation(tx, key, payment, "cancel", 0, "canceled");
        return { status: "canceled", providerPaymentId: row.provider_payment_id } as const;
      });
    },
    async refund(payment, refund, key) {
      await pause();
      return refundOnce(payment, refund, key);
    },
    async retrieve(payment, key) {
      await pause();
      const state = await current(payment);
      // Nothing on file: the authorize never arrived. Like Stripe or YooKassa replaying a request under its
      // idempotency key, the sandbox now processes it; a charge that did arrive is never made twice.
      if (state.outcome.status === "processing" && !state.outcome.providerPaymentId) {
        // pm_card_providerError refuses every request, so its answer here is final: failed. Otherwise a payment
        // whose confirm was cut off (crash, database lost) before the refusal was recorded stays processing forever.
        if (payment.paymentMethod === "pm_card_providerError") {
          const row = await recordOperation(
            db,
            key,
            payment,
            "authorize",
            payment.amount,
            "failed:provider_error",
          );
          return outcomeOf(row.status, row.provider_payment_id, row.amount, redirect(payment));
        }
        return charge(payment, key);
      }
      return state.outcome;
    },
    async retrieveRefund(payment, refund, key) {
      await pause();
      // A refund that never arrived is processed now, as a replay under its key would be at a real provider.
      return refundOnce(payment, refund, key);
    },
    async parseWebhook(request) {
      return parseSandboxWebhook(options.webhookSecret, request);
    },
  };
}

/**
 * The customer's answer on the hosted 3-D Secure page, recorded in the sandbox's ledger. Returns the outcome the
 * sandbox now reports (the first answer wins if the form is sent twice), or undefined when the payment is not
 * waiting for authentication at the sandbox.
 */
export async function recordAuthentication(
  db: Queryable,
  payment: ProviderPayment,
  publicBaseUrl: string,
  authenticated: boolean,
): Promise<ProviderOutcome | undefined> {
  const key = `${payment.paymentId}:complete`;
  const nextAction = threeDSecureUrl(publicBaseUrl, payment.paymentId);
  // In the caller's transaction: held until it commits, so a cancel at the sandbox waits for the answer or wins.
  await lockSandboxPayment(db, payment.paymentId);
  const done = await findOperation(db, key);
  if (!done) {
    const state = stateOf(await ledgerRows(db, payment.paymentId), nextAction);
    if (state.outcome.status !== "requires_action") return undefined;
  }
  const row =
    done ??
    (await recordOperation(
      db,
      key,
      payment,
      "complete",
      payment.amount,
      authenticated ? settledStatus(payment) : "failed:authentication_failed",
    ));
  return outcomeOf(row.status, row.provider_payment_id, row.amount, nextAction);
}
