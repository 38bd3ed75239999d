import type { ServiceContext } from "../payments/context.ts";
import {
  afterNotificationCommit,
  applyNotification,
  type NotificationEffect,
  settleNotifiedRefund,
} from "../payments/notifications.ts";
import type { ProviderName, ProviderNotification } from "../providers/provider.ts";
import { metrics } from "../telemetry/metrics.ts";
import {
  type Decision,
  type DeliveryMeta,
  expirePendingEvents,
  type IgnoreReason,
  listPendingEvents,
  lockPendingEvent,
  recordDecision,
  storeProviderEvent,
} from "./provider-events.ts";

export type ReceiveResult =
  | { result: "applied"; paymentId?: string }
  | { result: "ignored"; reason: IgnoreReason }
  | { result: "duplicate" }
  /** Stored but not applicable yet: its payment is unknown so far. The caller answers 5xx to be asked again. */
  | { result: "pending" };

/**
 * Stores a verified notification and applies it in the same transaction: either both happen or neither, so a
 * crash never leaves a notification applied but unrecorded (it would be applied twice) or recorded as applied but
 * not applied. A repeated delivery of a decided notification is a duplicate; of a pending one, another try.
 */
export async function receiveNotification(
  service: ServiceContext,
  provider: ProviderName,
  n: ProviderNotification,
  meta: DeliveryMeta,
): Promise<ReceiveResult> {
  const effect = await service.db.transaction(async (tx) => {
    const stored = await storeProviderEvent(tx, provider, n, meta);
    if (!stored.fresh && stored.status !== "pending") return "duplicate" as const;
    const effect = await applyNotification(tx, service, provider, n, meta);
    await recordDecision(tx, provider, n.eventId, decisionOf(effect));
    return effect;
  });
  const result =
    effect === "duplicate" ? ({ result: "duplicate" } as const) : await finish(service, provider, n, effect);

  if (result.result === "duplicate") metrics.webhooksDuplicate.inc({ provider });
  if (result.result === "pending") metrics.webhooksFailed.inc({ provider });
  if (result.result === "ignored" && result.reason === "unhandled_type")
    metrics.webhooksIgnored.inc({ provider });
  service.log.info(
    {
      request_id: meta.requestId,
      provider,
      event_id: n.eventId,
      event_type: n.type,
      payment_id: n.paymentId,
      ...result,
    },
    "provider notification",
  );
  return result;
}

export interface SweepResult {
  applied: number;
  ignored: number;
  pending: number;
  expired: number;
}

// Providers stop retrying after about three days (Stripe: 3 days); a notification whose payment has not appeared by
// then never will.
const PENDING_MAX_AGE_SECONDS = 3 * 86_400;

/**
 * Applies notifications kept because their payment was not known yet, oldest occurrence first — the retry of a
 * provider or broker usually gets there first, this catches the rest. Run by the outbox drain and reconciliation
 * passes; each event is taken with SKIP LOCKED in its own transaction, so concurrent sweeps share the work.
 */
export async function sweepPendingNotifications(service: ServiceContext, limit = 100): Promise<SweepResult> {
  const counts: SweepResult = { applied: 0, ignored: 0, pending: 0, expired: 0 };
  counts.expired = await expirePendingEvents(service.db, PENDING_MAX_AGE_SECONDS);
  for (const candidate of await listPendingEvents(service.db, limit)) {
    const taken = await service.db.transaction(async (tx) => {
      const stored = await lockPendingEvent(tx, candidate.provider, candidate.event_id);
      if (!stored) return undefined;
      const effect = await applyNotification(tx, service, stored.provider, stored.notification, stored.meta);
      await recordDecision(tx, stored.provider, stored.notification.eventId, decisionOf(effect));
      return { stored, effect };
    });
    if (!taken) continue;
    const result = await finish(service, taken.stored.provider, taken.stored.notification, taken.effect);
    if (result.result === "applied") counts.applied++;
    else if (result.result === "ignored") counts.ignored++;
    else counts.pending++;
  }
  return counts;
}

/** After the storing transaction committed: settle a reported refund, then invalidate caches and wake the outbox. */
async function finish(
  service: ServiceContext,
  provider: ProviderName,
  n: ProviderNotification,
  effect: NotificationEffect,
): Promise<Exclude<ReceiveResult, { result: "duplicate" }>> {
  if (effect.status === "refund_due") {
    // settleRefund has its own transaction; if this process dies before the decision below is written, the
    // notification is still pending, and its next delivery finds the refund settled and records it as such.
    const moved = await settleNotifiedRefund(effect);
    const decision: Decision = moved
      ? { status: "applied", paymentId: effect.refund.payment_id, refundId: effect.refund.id }
      : {
          status: "ignored",
          reason: "not_applicable",
          paymentId: effect.refund.payment_id,
          refundId: effect.refund.id,
        };
    await service.db.transaction((tx) => recordDecision(tx, provider, n.eventId, decision));
    return moved
      ? { result: "applied", paymentId: effect.refund.payment_id }
      : { result: "ignored", reason: "not_applicable" };
  }
  await afterNotificationCommit(effect);
  if (effect.status === "applied") return { result: "applied", paymentId: effect.payment.id };
  if (effect.status === "ignored") return { result: "ignored", reason: effect.reason };
  return { result: "pending" };
}

function decisionOf(effect: NotificationEffect): Decision {
  switch (effect.status) {
    case "applied":
      return { status: "applied", paymentId: effect.payment.id };
    case "ignored":
      return {
        status: "ignored",
        reason: effect.reason,
        paymentId: effect.paymentId,
        refundId: effect.refundId,
      };
    case "pending":
    case "refund_due":
      return { status: "pending" };
  }
}
