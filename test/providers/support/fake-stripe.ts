import { randomBytes } from "node:crypto";
import type { ServerResponse } from "node:http";
import { type LocalServer, type RecordedRequest, sendJson, sleep, startLocalServer } from "./http-server.ts";

/**
 * A local stand-in for Stripe's PaymentIntents and Refunds API, answering as Stripe documents: form-encoded
 * requests, Bearer secret key, `{ error: { type, code, decline_code, message, payment_intent } }` errors with 400,
 * 401, 402, 404 and 5xx, and Idempotency-Key semantics (a repeated key replays the stored answer; the same key with
 * other parameters is a 400 idempotency_error). Test payment methods follow Stripe's own names.
 */
export interface FakeStripe extends LocalServer {
  intents: Map<string, Intent>;
  refunds: Map<string, Refund>;
  /** The next n requests answer 500 without doing anything (Stripe stores no result for them). */
  failNext(n: number, status?: number): void;
  /** The next request is carried out, then answered only after this delay (longer than the client waits). */
  delayNextAnswer(ms: number): void;
  /** Refunds are created in this status. */
  refundStatus: "succeeded" | "pending";
  /** Requests that reached an endpoint (not the injected failures). */
  executed(): RecordedRequest[];
}

interface Intent {
  id: string;
  object: "payment_intent";
  amount: number;
  currency: string;
  status: string;
  capture_method: string;
  amount_capturable: number;
  amount_received: number;
  metadata: Record<string, string>;
  next_action: unknown;
  last_payment_error: unknown;
  payment_method: string;
  created: number;
}

interface Refund {
  id: string;
  object: "refund";
  amount: number;
  payment_intent: string;
  status: string;
  metadata: Record<string, string>;
}

const DECLINES: Record<string, { code: string; decline_code?: string }> = {
  pm_card_chargeDeclined: { code: "card_declined", decline_code: "generic_decline" },
  pm_card_chargeDeclinedInsufficientFunds: { code: "card_declined", decline_code: "insufficient_funds" },
  pm_card_chargeDeclinedExpiredCard: { code: "expired_card" },
};

export async function startFakeStripe(secretKey = "sk_test_fake"): Promise<FakeStripe> {
  const intents = new Map<string, Intent>();
  const refunds = new Map<string, Refund>();
  const stored = new Map<string, { fingerprint: string; status: number; body: unknown }>();
  const executed: RecordedRequest[] = [];
  let failures: { left: number; status: number } = { left: 0, status: 500 };
  let answerDelay = 0;

  const server = await startLocalServer(async (req, res) => {
    if (req.headers.authorization !== `Bearer ${secretKey}`) {
      return sendJson(res, 401, {
        error: { type: "invalid_request_error", message: "Invalid API Key provided" },
      });
    }
    if (failures.left > 0) {
      failures.left--;
      return sendJson(res, failures.status, {
        error: { type: "api_error", message: "An unknown error occurred" },
      });
    }
    executed.push(req);
    const key = req.headers["idempotency-key"] as string | undefined;
    const fingerprint = `${req.method} ${req.path} ${req.body}`;
    const previous = key ? stored.get(key) : undefined;
    let answer: { status: number; body: unknown };
    if (previous && previous.fingerprint !== fingerprint) {
      answer = {
        status: 400,
        body: {
          error: {
            type: "idempotency_error",
            message:
              "Keys for idempotent requests can only be used with the same parameters they were first used with.",
          },
        },
      };
    } else if (previous) {
      answer = previous;
    } else {
      answer = handle(req);
      if (key && req.method === "POST") stored.set(key, { fingerprint, ...answer });
    }
    if (answerDelay > 0) {
      const wait = answerDelay;
      answerDelay = 0;
      await sleep(wait);
    }
    reply(res, answer);
  });

  function handle(req: RecordedRequest): { status: number; body: unknown } {
    const url = new URL(req.path, "http://stripe.local");
    const params = parseForm(req.body);
    const parts = url.pathname.split("/").filter(Boolean);
    if (parts[1] === "payment_intents") {
      if (req.method === "POST" && parts.length === 2) return createIntent(params);
      const intent = intents.get(parts[2] ?? "");
      if (!intent) return notFound("payment_intent", parts[2]);
      if (req.method === "GET" && parts.length === 3) return ok(intent);
      if (req.method === "POST" && parts[3] === "capture") return capture(intent, params);
      if (req.method === "POST" && parts[3] === "cancel") return cancel(intent);
    }
    if (parts[1] === "refunds") {
      if (req.method === "POST" && parts.length === 2) return createRefund(params);
      const refund = refunds.get(parts[2] ?? "");
      if (req.method === "GET" && refund) return ok(refund);
      return notFound("refund", parts[2]);
    }
    return {
      status: 404,
      body: { error: { type: "invalid_request_error", message: "Unrecognized request URL" } },
    };
  }

  function createIntent(p: Form): { status: number; body: unknown } {
    const amount = Number(p.amount);
    if (!Number.isInteger(amount) || amount < 1 || typeof p.currency !== "string") {
      return invalid("parameter_invalid_integer", "amount");
    }
    const method = String(p.payment_method);
    const manual = p.capture_method === "manual";
    const intent: Intent = {
      id: `pi_${randomBytes(12).toString("hex")}`,
      object: "payment_intent",
      amount,
      currency: p.currency,
      status: manual ? "requires_capture" : "succeeded",
      capture_method: manual ? "manual" : "automatic",
      amount_capturable: manual ? amount : 0,
      amount_received: manual ? 0 : amount,
      metadata: (p.metadata as Record<string, string>) ?? {},
      next_action: null,
      last_payment_error: null,
      payment_method: method,
      created: Math.floor(Date.now() / 1000),
    };
    intents.set(intent.id, intent);
    const decline = DECLINES[method];
    if (decline) {
      const error = { type: "card_error", message: "Your card was declined.", ...decline };
      Object.assign(intent, { status: "requires_payment_method", amount_capturable: 0, amount_received: 0 });
      intent.last_payment_error = error;
      return { status: 402, body: { error: { ...error, payment_intent: intent } } };
    }
    if (method === "pm_card_authenticationRequired") {
      Object.assign(intent, { status: "requires_action", amount_capturable: 0, amount_received: 0 });
      intent.next_action = p.return_url
        ? {
            type: "redirect_to_url",
            redirect_to_url: { url: `https://hooks.stripe.com/3ds/${intent.id}`, return_url: p.return_url },
          }
        : { type: "use_stripe_sdk", use_stripe_sdk: {} };
    }
    return ok(intent);
  }

  function capture(intent: Intent, p: Form) {
    if (intent.status !== "requires_capture") return unexpectedState(intent);
    const amount = p.amount_to_capture === undefined ? intent.amount_capturable : Number(p.amount_to_capture);
    if (amount > intent.amount_capturable) return invalid("amount_too_large", "amount_to_capture");
    Object.assign(intent, { status: "succeeded", amount_received: amount, amount_capturable: 0 });
    return ok(intent);
  }

  function cancel(intent: Intent) {
    if (intent.status === "succeeded" || intent.status === "canceled") return unexpectedState(intent);
    Object.assign(intent, { status: "canceled", amount_capturable: 0 });
    return ok(intent);
  }

  function createRefund(p: Form) {
    const intent = intents.get(String(p.payment_intent));
    if (!intent) return notFound("payment_intent", String(p.payment_intent));
    if (intent.status !== "succeeded") return invalid("charge_not_refundable", "payment_intent");
    const refunded = [...refunds.values()]
      .filter((r) => r.payment_intent === intent.id && r.status !== "failed")
      .reduce((sum, r) => sum + r.amount, 0);
    const amount = p.amount === undefined ? intent.amount_received - refunded : Number(p.amount);
    if (amount + refunded > intent.amount_received) return invalid("amount_too_large", "amount");
    const refund: Refund = {
      id: `re_${randomBytes(12).toString("hex")}`,
      object: "refund",
      amount,
      payment_intent: intent.id,
      status: fake.refundStatus,
      metadata: (p.metadata as Record<string, string>) ?? {},
    };
    refunds.set(refund.id, refund);
    return ok(refund);
  }

  const fake: FakeStripe = {
    ...server,
    intents,
    refunds,
    refundStatus: "succeeded",
    failNext(n, status = 500) {
      failures = { left: n, status };
    },
    delayNextAnswer(ms) {
      answerDelay = ms;
    },
    executed: () => executed,
  };
  return fake;
}

type Form = Record<string, string | Record<string, string>>;

/** Stripe's form encoding, one level of brackets deep (metadata[payment_id]=…). */
export function parseForm(body: string): Form {
  const form: Form = {};
  for (const [key, value] of new URLSearchParams(body)) {
    const nested = /^(\w+)\[(\w+)\]$/.exec(key);
    if (nested) {
      const [, outer = "", inner = ""] = nested;
      const bag = (typeof form[outer] === "object" ? form[outer] : {}) as Record<string, string>;
      bag[inner] = value;
      form[outer] = bag;
    } else {
      form[key] = value;
    }
  }
  return form;
}

const ok = (body: unknown) => ({ status: 200, body });
const notFound = (what: string, id?: string) => ({
  status: 404,
  body: {
    error: { type: "invalid_request_error", code: "resource_missing", message: `No such ${what}: '${id}'` },
  },
});
const invalid = (code: string, param: string) => ({
  status: 400,
  body: { error: { type: "invalid_request_error", code, param, message: `Invalid ${param}` } },
});
const unexpectedState = (intent: Intent) => ({
  status: 400,
  body: {
    error: {
      type: "invalid_request_error",
      code: "payment_intent_unexpected_state",
      message: `This PaymentIntent's status is ${intent.status}.`,
      payment_intent: intent,
    },
  },
});

function reply(res: ServerResponse, answer: { status: number; body: unknown }) {
  sendJson(res, answer.status, answer.body, { "Request-Id": `req_${randomBytes(6).toString("hex")}` });
}
