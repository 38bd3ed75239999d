import { randomUUID } from "node:crypto";
import { type LocalServer, type RecordedRequest, sendJson, sleep, startLocalServer } from "./http-server.ts";

/**
 * A local stand-in for YooKassa's API v3 as documented: HTTP Basic shopId:secretKey, JSON bodies, Idempotence-Key
 * required on POST (a repeat returns the stored answer, other parameters under the same key are refused), amounts
 * as decimal strings, errors as `{ type: "error", id, code, description, parameter }` with 400/401/404/429/500.
 */
export interface FakeYooKassa extends LocalServer {
  /** Base URL including /v3, as YOOKASSA_API_BASE. */
  apiBase: string;
  payments: Map<string, YooPaymentObject>;
  refunds: Map<string, YooRefundObject>;
  /** The next created payment is canceled by the payment network for this reason. */
  declineNext(reason: string): void;
  failNext(n: number, status?: number): void;
  delayNextAnswer(ms: number): void;
  /** The customer finishes (or fails) the redirect confirmation of a pending payment. */
  confirm(id: string, succeeded: boolean): void;
  refundStatus: "succeeded" | "pending";
  executed(): RecordedRequest[];
}

export interface YooPaymentObject {
  id: string;
  status: "pending" | "waiting_for_capture" | "succeeded" | "canceled";
  paid: boolean;
  amount: { value: string; currency: string };
  capture: boolean;
  confirmation?: { type: "redirect"; confirmation_url: string; return_url: string };
  cancellation_details?: { party: string; reason: string };
  created_at: string;
  description?: string;
  metadata: Record<string, string>;
  payment_method?: unknown;
  receipt?: unknown;
  test: true;
}

interface YooRefundObject {
  id: string;
  payment_id: string;
  status: "pending" | "succeeded" | "canceled";
  amount: { value: string; currency: string };
  created_at: string;
  metadata: Record<string, string>;
}

const cents = (value: string) => Math.round(Number(value) * 100);

export async function startFakeYooKassa(shopId = "100500", secretKey = "test_secret"): Promise<FakeYooKassa> {
  const payments = new Map<string, YooPaymentObject>();
  const refunds = new Map<string, YooRefundObject>();
  const stored = new Map<string, { fingerprint: string; status: number; body: unknown }>();
  const executed: RecordedRequest[] = [];
  const declines: string[] = [];
  let failures = { left: 0, status: 500 };
  let answerDelay = 0;
  const auth = `Basic ${Buffer.from(`${shopId}:${secretKey}`).toString("base64")}`;

  const server = await startLocalServer(async (req, res) => {
    if (req.headers.authorization !== auth)
      return sendJson(res, 401, error("invalid_credentials", "Authentication error"));
    if (failures.left > 0) {
      failures.left--;
      return sendJson(res, failures.status, error("internal_server_error", "Internal server error"));
    }
    executed.push(req);
    const key = req.headers["idempotence-key"] as string | undefined;
    if (req.method === "POST" && !key)
      return sendJson(res, 400, error("invalid_request", "Idempotence-Key is missing"));
    const fingerprint = `${req.path} ${req.body}`;
    const previous = key ? stored.get(key) : undefined;
    let answer: { status: number; body: unknown };
    if (previous && previous.fingerprint !== fingerprint) {
      answer = {
        status: 400,
        body: error("invalid_request", "Idempotence key duplicated with another request"),
      };
    } else if (previous) {
      answer = previous;
    } else {
      answer = handle(req);
      if (key) stored.set(key, { fingerprint, ...answer });
    }
    if (answerDelay > 0) {
      const wait = answerDelay;
      answerDelay = 0;
      await sleep(wait);
    }
    sendJson(res, answer.status, answer.body);
  });

  function handle(req: RecordedRequest): { status: number; body: unknown } {
    const parts = new URL(req.path, "http://yookassa.local").pathname.split("/").filter(Boolean);
    if (parts[0] !== "v3") return { status: 404, body: error("not_found", "Not found") };
    const body = req.body ? JSON.parse(req.body) : {};
    if (parts[1] === "payments") {
      if (req.method === "POST" && parts.length === 2) return create(body);
      const payment = payments.get(parts[2] ?? "");
      if (!payment) return { status: 404, body: error("not_found", "Payment not found") };
      if (req.method === "GET" && parts.length === 3) return { status: 200, body: payment };
      if (req.method === "POST" && parts[3] === "capture") return capture(payment, body);
      if (req.method === "POST" && parts[3] === "cancel") return cancel(payment);
    }
    if (parts[1] === "refunds") {
      if (req.method === "POST" && parts.length === 2) return refund(body);
      const found = refunds.get(parts[2] ?? "");
      if (req.method === "GET" && found) return { status: 200, body: found };
      return { status: 404, body: error("not_found", "Refund not found") };
    }
    return { status: 404, body: error("not_found", "Not found") };
  }

  function create(body: {
    amount?: { value?: string; currency?: string };
    capture?: boolean;
    confirmation?: { type: string; return_url: string };
    description?: string;
    metadata?: Record<string, string>;
    payment_method_data?: unknown;
    payment_method_id?: string;
    receipt?: unknown;
  }) {
    const value = body.amount?.value ?? "";
    if (!/^\d+\.\d{2}$/.test(value) || body.amount?.currency !== "RUB") {
      return { status: 400, body: error("invalid_request", "Invalid amount", "amount.value") };
    }
    const id = randomUUID();
    const payment: YooPaymentObject = {
      id,
      status: body.capture ? "succeeded" : "waiting_for_capture",
      paid: true,
      amount: { value, currency: "RUB" },
      capture: body.capture ?? false,
      created_at: new Date().toISOString(),
      description: body.description,
      metadata: body.metadata ?? {},
      payment_method: body.payment_method_data ?? { id: body.payment_method_id },
      receipt: body.receipt,
      test: true,
    };
    const decline = declines.shift();
    if (decline) {
      Object.assign(payment, { status: "canceled", paid: false });
      payment.cancellation_details = { party: "payment_network", reason: decline };
    } else if (body.confirmation?.type === "redirect") {
      Object.assign(payment, { status: "pending", paid: false });
      payment.confirmation = {
        type: "redirect",
        confirmation_url: `https://yoomoney.ru/checkout/payments/v2/contract?orderId=${id}`,
        return_url: body.confirmation.return_url,
      };
    }
    payments.set(id, payment);
    return { status: 200, body: payment };
  }

  function capture(payment: YooPaymentObject, body: { amount?: { value: string } }) {
    if (payment.status !== "waiting_for_capture") {
      return { status: 400, body: error("invalid_request", `Payment is ${payment.status}`) };
    }
    const value = body.amount?.value ?? payment.amount.value;
    if (cents(value) > cents(payment.amount.value)) {
      return {
        status: 400,
        body: error("invalid_request", "Amount exceeds the authorized one", "amount.value"),
      };
    }
    Object.assign(payment, { status: "succeeded", amount: { value, currency: payment.amount.currency } });
    return { status: 200, body: payment };
  }

  function cancel(payment: YooPaymentObject) {
    if (payment.status !== "waiting_for_capture" && payment.status !== "pending") {
      return { status: 400, body: error("invalid_request", `Payment is ${payment.status}`) };
    }
    Object.assign(payment, { status: "canceled", paid: false });
    payment.cancellation_details = { party: "merchant", reason: "canceled_by_merchant" };
    return { status: 200, body: payment };
  }

  function refund(body: {
    payment_id?: string;
    amount?: { value: string; currency: string };
    metadata?: Record<string, string>;
  }) {
    const payment = payments.get(body.payment_id ?? "");
    if (!payment) return { status: 404, body: error("not_found", "Payment not found") };
    if (payment.status !== "succeeded")
      return { status: 400, body: error("invalid_request", "Payment cannot be refunded") };
    const refunded = [...refunds.values()]
      .filter((r) => r.payment_id === payment.id && r.status !== "canceled")
      .reduce((sum, r) => sum + cents(r.amount.value), 0);
    if (!body.amount || refunded + cents(body.amount.value) > cents(payment.amount.value)) {
      return { status: 400, body: error("invalid_request", "Refund amount exceeds payment", "amount.value") };
    }
    const created: YooRefundObject = {
      id: randomUUID(),
      payment_id: payment.id,
      status: fake.refundStatus,
      amount: body.amount,
      created_at: new Date().toISOString(),
      metadata: body.metadata ?? {},
    };
    refunds.set(created.id, created);
    return { status: 200, body: created };
  }

  const fake: FakeYooKassa = {
    ...server,
    apiBase: `${server.url}/v3`,
    payments,
    refunds,
    refundStatus: "succeeded",
    declineNext(reason) {
      declines.push(reason);
    },
    failNext(n, status = 500) {
      failures = { left: n, status };
    },
    delayNextAnswer(ms) {
      answerDelay = ms;
    },
    confirm(id, succeeded) {
      const payment = payments.get(id);
      if (payment?.status !== "pending") throw new Error(`payment ${id} is not pending`);
      if (succeeded)
        Object.assign(payment, { status: payment.capture ? "succeeded" : "waiting_for_capture", paid: true });
      else {
        Object.assign(payment, { status: "canceled" });
        payment.cancellation_details = { party: "yoo_money", reason: "3d_secure_failed" };
      }
    },
    executed: () => executed,
  };
  return fake;
}

function error(code: string, description: string, parameter?: string) {
  return { type: "error", id: randomUUID(), code, description, ...(parameter ? { parameter } : {}) };
}
