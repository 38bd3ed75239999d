import * as v from "valibot";
import { ipAllowList } from "../http/ip-allowlist.ts";
import { isCurrency } from "../payments/money.ts";
import {
  type PaymentProvider,
  ProviderError,
  type ProviderNotification,
  type ProviderOutcome,
  type ProviderPayment,
  type ProviderRefund,
  ProviderRequestRejected,
  WebhookRejected,
  type WebhookRequest,
} from "./provider.ts";
import { yookassaClient } from "./yookassa-client.ts";
import {
  createBody,
  parseAnswer,
  paymentOutcome,
  refundOutcome,
  YooPayment,
  YooRefund,
  yooAmount,
} from "./yookassa-mapping.ts";

/** YooKassa's published notification sources (https://yookassa.ru/developers/using-api/webhooks#ip). */
export const YOOKASSA_NOTIFICATION_IPS =
  "185.71.76.0/27,185.71.77.0/27,77.75.153.0/25,77.75.156.11,77.75.156.35,77.75.154.128/25,2a02:5180::/32";

export interface YooKassaOptions {
  shopId: string;
  secretKey: string;
  /** Including the version; default https://api.yookassa.ru/v3. */
  apiBase?: string;
  /** Comma-separated addresses and CIDR ranges notifications may come from; default YooKassa's published ones. */
  allowedIps?: string;
  timeoutMs: number;
}

const Notification = v.object({
  type: v.literal("notification"),
  event: v.string(),
  object: v.looseObject({ id: v.pipe(v.string(), v.minLength(1), v.maxLength(100)) }),
});

/**
 * YooKassa API v3. Amounts cross as exact decimal strings; statuses pending / waiting_for_capture / succeeded /
 * canceled map onto ours; a redirect confirmation becomes next_action. Notifications are not signed, so one is
 * believed only if it comes from YooKassa's addresses, and even then only as a hint: the payment (or refund) is
 * fetched from the API and that answer is what the notification reports.
 */
export function yookassaProvider(options: YooKassaOptions): PaymentProvider {
  const api = yookassaClient({
    shopId: options.shopId,
    secretKey: options.secretKey,
    apiBase: options.apiBase ?? "https://api.yookassa.ru/v3",
    timeoutMs: options.timeoutMs,
  });
  const allowed = ipAllowList(options.allowedIps ?? YOOKASSA_NOTIFICATION_IPS);

  const fetchPayment = async (id: string) =>
    parseAnswer(YooPayment, await api("GET", `/payments/${encodeURIComponent(id)}`));

  async function createPayment(payment: ProviderPayment, key: string): Promise<ProviderOutcome> {
    const created = parseAnswer(
      YooPayment,
      await api("POST", "/payments", { idempotenceKey: key, body: createBody(payment) }),
    );
    return paymentOutcome(created, payment.currency);
  }

  const postRefund = async (payment: ProviderPayment, refund: ProviderRefund, key: string) =>
    parseAnswer(
      YooRefund,
      await api("POST", "/refunds", {
        idempotenceKey: key,
        body: {
          payment_id: paymentIdOf(payment),
          amount: yooAmount(refund.amount, payment.currency),
          metadata: { refund_id: refund.refundId, payment_id: payment.paymentId },
        },
      }),
    );

  return {
    name: "yookassa",
    authorize: (payment, key) => createPayment(payment, key),
    async capture(payment, amount, key) {
      const captured = await api("POST", `/payments/${encodeURIComponent(paymentIdOf(payment))}/capture`, {
        idempotenceKey: key,
        body: { amount: yooAmount(amount, payment.currency) },
      });
      return paymentOutcome(parseAnswer(YooPayment, captured), payment.currency);
    },
    async cancel(payment, key) {
      if (!payment.providerPaymentId) return { status: "canceled" };
      const canceled = await api(
        "POST",
        `/payments/${encodeURIComponent(payment.providerPaymentId)}/cancel`,
        {
          idempotenceKey: key,
          body: {},
        },
      );
      return paymentOutcome(parseAnswer(YooPayment, canceled), payment.currency);
    },
    async refund(payment, refund, key) {
      try {
        return refundOutcome(await postRefund(payment, refund, key));
      } catch (error) {
        // A refused refund (more than is left, a payment that cannot be refunded) is a failed refund.
        if (error instanceof ProviderRequestRejected) return "failed";
        throw error;
      }
    },
    async retrieve(payment, key) {
      if (payment.providerPaymentId)
        return paymentOutcome(await fetchPayment(payment.providerPaymentId), payment.currency);
      // The create's answer was lost: replaying it under the same Idempotence-Key returns YooKassa's stored answer
      // (kept 24 hours) or creates it now if it never arrived; then read the payment's current state.
      const replayed = await createPayment(payment, key);
      if (!replayed.providerPaymentId) return replayed;
      return paymentOutcome(await fetchPayment(replayed.providerPaymentId), payment.currency);
    },
    async retrieveRefund(payment, refund, key) {
      let created: YooRefund;
      try {
        created = await postRefund(payment, refund, key);
      } catch (error) {
        if (error instanceof ProviderRequestRejected) return "failed";
        throw error;
      }
      if (created.status !== "pending") return refundOutcome(created);
      return refundOutcome(
        parseAnswer(YooRefund, await api("GET", `/refunds/${encodeURIComponent(created.id)}`)),
      );
    },
    async parseWebhook(request) {
      if (!allowed(request.clientIp)) {
        throw new WebhookRejected("ip", `notifications are not accepted from ${request.clientIp}`);
      }
      return parseNotification(request);
    },
  };

  async function parseNotification(request: WebhookRequest): Promise<ProviderNotification> {
    let json: unknown;
    try {
      json = JSON.parse(request.rawBody);
    } catch {
      throw new WebhookRejected("malformed", "body is not JSON");
    }
    const parsed = v.safeParse(Notification, json);
    if (!parsed.success) throw new WebhookRejected("malformed", "not a YooKassa notification");
    const { event, object } = parsed.output;
    // YooKassa sends no event id; one event happens once per object, so (event, object) identifies a delivery.
    const base = { eventId: `${event}:${object.id}`, type: event, occurredAt: new Date() };
    if (event.startsWith("payment.")) {
      const payment = await fetchPayment(object.id);
      const claimed = STAGE[event.slice("payment.".length)];
      if (
        claimed !== undefined &&
        STAGE[payment.status] !== undefined &&
        (STAGE[payment.status] ?? 0) < claimed
      ) {
        // The API does not confirm it (yet): acknowledging now would lose the event, so ask to be told again.
        throw new ProviderError(
          "yookassa",
          `YooKassa has payment ${payment.id} ${payment.status}, not ${event}`,
          true,
        );
      }
      const currency = payment.amount.currency;
      return {
        ...base,
        paymentId: payment.metadata?.payment_id,
        providerPaymentId: payment.id,
        outcome: isCurrency(currency) ? paymentOutcome(payment, currency) : undefined,
      };
    }
    if (event.startsWith("refund.")) {
      const refund = parseAnswer(YooRefund, await api("GET", `/refunds/${encodeURIComponent(object.id)}`));
      const status = refundOutcome(refund);
      return {
        ...base,
        paymentId: refund.metadata?.payment_id,
        providerPaymentId: refund.payment_id,
        ...(status === "pending"
          ? {}
          : { refund: { refundId: refund.metadata?.refund_id, providerRefundId: refund.id, status } }),
      };
    }
    return base;
  }
}

/** How far along a payment is: a notification is believed once the API shows the payment at least that far. */
const STAGE: Record<string, number> = { pending: 0, waiting_for_capture: 1, succeeded: 2, canceled: 2 };

function paymentIdOf(payment: ProviderPayment): string {
  if (!payment.providerPaymentId)
    throw new ProviderRequestRejected("yookassa", "the payment has no YooKassa id");
  return payment.providerPaymentId;
}
