import { randomUUID } from "node:crypto";
import type { Queryable } from "../../../lib/db/db.ts";
import type { ErrorCode } from "../../../lib/http/errors.ts";
import { PAYMENT_TRANSITIONS, type PaymentStatus } from "../../../lib/payments/state-machine.ts";
import type { Answer, Expected } from "./documented.ts";

/** One request to the service under test; rejects when no answer came back (connection refused or cut). */
export type Send = (
  method: string,
  path: string,
  options: { body?: unknown; merchant: string; idempotencyKey?: string },
) => Promise<Answer>;

/** A change the service acknowledged with a 2xx: it must be in the database afterwards, whatever happened. */
export interface Acknowledged {
  what: "order" | "payment" | "confirm" | "capture" | "cancel" | "refund";
  id: string;
  merchant: string;
  /** The status the answer reported. */
  status?: string;
  amount?: number;
}

export interface RecordedAnswer {
  request: string;
  answer: Answer;
  expected: readonly Expected[];
  phase: string;
}

export interface LoadOptions {
  send: Send;
  workers: number;
  merchants: readonly string[];
  /** Checked between flows and between requests; the run ends when it returns true. */
  stopped: () => boolean;
  /** Error codes the conditions of this run may produce on any request (a database outage: service_unavailable). */
  faults?: readonly ErrorCode[];
  /** Retries of a 5xx or 409 in-use answer with the same Idempotency-Key, as a well-behaved client does. */
  retries?: number;
  /** Longest wait before a retry, whatever Retry-After says (tests keep it short). */
  maxRetryDelayMs?: number;
  /** Pause after a request that got no answer (the service is down): the client backs off, never spins. */
  pauseAfterLostMs?: number;
  /** Payment methods to draw from, with weights; the default mixes the sandbox's behaviours (see DEFAULT_METHODS). */
  methods?: readonly [string, number][];
  /** Names what is being done to the service right now; every answer is tagged with it. */
  phase?: () => string;
}

export interface LoadResult {
  acknowledged: Acknowledged[];
  answers: RecordedAnswer[];
  /** Requests that got no answer at all (in flight when the service died, or sent while it was down). */
  lost: number;
  /** Requests still refused after every retry (an outage longer than the client's patience). */
  gaveUp: number;
  flows: number;
}

/** Every behaviour of the sandbox's test cards, weighted roughly like the deployment guide's traffic. */
export const DEFAULT_METHODS: readonly [string, number][] = [
  ["pm_card_visa", 30],
  ["pm_card_mastercard", 10],
  ["pm_card_visa:manual", 12],
  ["pm_card_async", 10],
  ["pm_card_chargeDeclined", 8],
  ["pm_card_insufficientFunds", 4],
  ["pm_card_threeDSecureRequired", 6],
  ["pm_card_providerTimeout", 8],
  ["pm_card_providerError", 4],
];

const CURRENCIES = ["USD", "EUR", "GBP", "RUB", "JPY", "KZT"];
const RETRYABLE = new Set(["service_unavailable", "provider_unavailable", "idempotency_key_in_use"]);

class Lost extends Error {}
class GaveUp extends Error {}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const pick = <T>(items: readonly T[]): T => items[Math.floor(Math.random() * items.length)] as T;
function weighted(items: readonly [string, number][]): string {
  let r = Math.random() * items.reduce((sum, [, w]) => sum + w, 0);
  for (const [item, w] of items) {
    r -= w;
    if (r <= 0) return item;
  }
  return items[0]?.[0] ?? "pm_card_visa";
}

/**
 * Runs the full flow of the deployment guide's mix (create order → create payment → confirm → capture, cancel or
 * refund → read) on `workers` concurrent clients until stopped. Every POST carries its own Idempotency-Key.
 * Every answer is recorded with what the contract allows for it; every 2xx that committed something is
 * recorded as acknowledged. A request without an answer abandons its flow; the worker starts a new one.
 */
export async function runLoad(options: LoadOptions): Promise<LoadResult> {
  const result: LoadResult = { acknowledged: [], answers: [], lost: 0, gaveUp: 0, flows: 0 };
  const faults = options.faults ?? [];
  const methods = options.methods ?? DEFAULT_METHODS;

  async function request(
    label: string,
    method: string,
    path: string,
    merchant: string,
    body: unknown,
    expected: readonly Expected[],
  ): Promise<Answer> {
    const idempotencyKey = method === "POST" ? randomUUID() : undefined;
    let previous = "";
    for (let attempt = 0; ; attempt++) {
      let answer: Answer;
      try {
        answer = await options.send(method, path, { body, merchant, idempotencyKey });
      } catch {
        result.lost++;
        await sleep(options.pauseAfterLostMs ?? 50);
        throw new Lost(label);
      }
      const allowed = [...expected, ...faults];
      result.answers.push({
        request: attempt === 0 ? label : `${label} (retry ${attempt} after ${previous})`,
        answer,
        expected: allowed,
        phase: options.phase?.() ?? "",
      });
      const code = answer.body?.code as string | undefined;
      if (answer.status < 400 || !code || !RETRYABLE.has(code) || expected.includes(code as ErrorCode)) {
        return answer;
      }
      if (attempt >= (options.retries ?? 0) || options.stopped()) {
        result.gaveUp++;
        throw new GaveUp(label);
      }
      previous = `${answer.status} ${code}: ${answer.body?.detail}`;
      const retryAfter = Number(answer.headers.get("retry-after") ?? 1) * 1000;
      await sleep(Math.min(retryAfter, options.maxRetryDelayMs ?? 200));
    }
  }

  async function flow() {
    result.flows++;
    const merchant = pick(options.merchants);
    const ack = (a: Omit<Acknowledged, "merchant">) => result.acknowledged.push({ ...a, merchant });
    const amount = 100 + Math.floor(Math.random() * 50_000);
    const order = await request(
      "create order",
      "POST",
      "/v1/orders",
      merchant,
      {
        amount,
        currency: pick(CURRENCIES),
        description: "reliability load",
      },
      [201],
    );
    if (order.status !== 201) return;
    ack({ what: "order", id: order.body.id, amount });

    const [paymentMethod, capture] = weighted(methods).split(":") as [string, string?];
    const payment = await request(
      "create payment",
      "POST",
      "/v1/payments",
      merchant,
      {
        order_id: order.body.id,
        payment_method: paymentMethod,
        ...(capture === "manual" ? { capture_method: "manual" } : {}),
      },
      [201],
    );
    if (payment.status !== 201) return;
    const id = payment.body.id as string;
    ack({ what: "payment", id });
    if (Math.random() < 0.08) {
      const canceled = await request(
        "cancel payment",
        "POST",
        `/v1/payments/${id}/cancel`,
        merchant,
        {},
        [200],
      );
      if (canceled.status === 200) ack({ what: "cancel", id, status: canceled.body.status });
      return;
    }

    // A decline is a 200; only the provider-error card is refused, and the payment stays confirmable.
    const confirmed = await request("confirm", "POST", `/v1/payments/${id}/confirm`, merchant, {}, [
      200,
      "provider_unavailable",
    ]);
    if (confirmed.status !== 200) return;
    ack({ what: "confirm", id, status: confirmed.body.status });

    if (confirmed.body.status === "requires_capture") {
      if (Math.random() < 0.75) {
        const part = Math.max(1, Math.floor(confirmed.body.amount_capturable * (0.5 + Math.random() / 2)));
        const captured = await request(
          "capture",
          "POST",
          `/v1/payments/${id}/capture`,
          merchant,
          {
            amount: part,
          },
          [200],
        );
        if (captured.status === 200) ack({ what: "capture", id, status: captured.body.status });
      } else {
        const canceled = await request(
          "cancel held payment",
          "POST",
          `/v1/payments/${id}/cancel`,
          merchant,
          {},
          [200],
        );
        if (canceled.status === 200) ack({ what: "cancel", id, status: canceled.body.status });
      }
    }
    const current = await request("read payment", "GET", `/v1/payments/${id}`, merchant, undefined, [200]);
    if (current.body?.status === "succeeded" && Math.random() < 0.4) {
      const refundable = current.body.amount_captured - current.body.amount_refunded;
      const part = Math.max(1, Math.floor(refundable * Math.random()));
      const refund = await request(
        "refund",
        "POST",
        "/v1/refunds",
        merchant,
        { payment_id: id, amount: part },
        [201],
      );
      if (refund.status === 201)
        ack({ what: "refund", id: refund.body.id, status: refund.body.status, amount: part });
    }
    await request("read order", "GET", `/v1/orders/${order.body.id}`, merchant, undefined, [200]);
  }

  await Promise.all(
    Array.from({ length: options.workers }, async () => {
      while (!options.stopped()) {
        try {
          await flow();
        } catch (error) {
          if (!(error instanceof Lost) && !(error instanceof GaveUp)) throw error;
        }
      }
    }),
  );
  return result;
}

/** Every status a payment may reach from `from`, `from` included. */
function reachable(from: string): Set<string> {
  const seen = new Set<string>([from]);
  const queue = [from];
  while (queue.length > 0) {
    const status = queue.pop() as PaymentStatus;
    for (const next of PAYMENT_TRANSITIONS[status] ?? []) {
      if (!seen.has(next)) {
        seen.add(next);
        queue.push(next);
      }
    }
  }
  return seen;
}

const REFUND_NEXT: Record<string, string[]> = {
  pending: ["pending", "succeeded", "failed"],
  succeeded: ["succeeded"],
  failed: ["failed"],
};

/**
 * Every acknowledged change is in the database: the objects exist for their merchant, and each payment or refund
 * is in the state it was acknowledged in or one the state machine allows after it.
 */
export async function missingAcknowledged(
  db: Queryable,
  acknowledged: readonly Acknowledged[],
): Promise<string[]> {
  const ids = (what: Acknowledged["what"][]) =>
    acknowledged.filter((a) => what.includes(a.what)).map((a) => a.id);
  const orders = new Map(
    (
      await db.query<{ id: string; merchant_id: string; amount: number }>(
        "SELECT id, merchant_id, amount FROM orders WHERE id = ANY($1::text[])",
        [ids(["order"])],
      )
    ).rows.map((r) => [r.id, r]),
  );
  const payments = new Map(
    (
      await db.query<{ id: string; merchant_id: string; status: string }>(
        "SELECT id, merchant_id, status FROM payments WHERE id = ANY($1::text[])",
        [ids(["payment", "confirm", "capture", "cancel"])],
      )
    ).rows.map((r) => [r.id, r]),
  );
  const refunds = new Map(
    (
      await db.query<{ id: string; merchant_id: string; status: string; amount: number }>(
        "SELECT id, merchant_id, status, amount FROM refunds WHERE id = ANY($1::text[])",
        [ids(["refund"])],
      )
    ).rows.map((r) => [r.id, r]),
  );
  const missing: string[] = [];
  for (const a of acknowledged) {
    const row =
      a.what === "order" ? orders.get(a.id) : a.what === "refund" ? refunds.get(a.id) : payments.get(a.id);
    if (!row || row.merchant_id !== a.merchant) {
      missing.push(`${a.what} ${a.id} was acknowledged but is not in the database`);
      continue;
    }
    if (a.what === "order" && (row as { amount: number }).amount !== a.amount) {
      missing.push(
        `order ${a.id} was acknowledged for ${a.amount}, the database has ${(row as { amount: number }).amount}`,
      );
    }
    const status = (row as { status?: string }).status ?? "";
    if (a.what === "refund" && !(REFUND_NEXT[a.status ?? ""] ?? []).includes(status)) {
      missing.push(`refund ${a.id} was acknowledged ${a.status}, the database has it ${status}`);
    }
    if (["confirm", "capture", "cancel"].includes(a.what) && a.status && !reachable(a.status).has(status)) {
      missing.push(`payment ${a.id} was acknowledged ${a.status} (${a.what}), the database has it ${status}`);
    }
  }
  return missing;
}
