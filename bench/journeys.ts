import { randomUUID } from "node:crypto";
import { setTimeout as sleep } from "node:timers/promises";
import { THINK, type ThinkRange } from "../k6/think-times.ts";
import type { HttpClient } from "./http-client.ts";
import type { Recorder } from "./recorder.ts";

/**
 * The seed's traffic mix, journey by journey, as the k6 mix replays it against a deployment (same steps, same
 * test cards, same page size), minus the think times: here every virtual user goes straight on, so a fixed number
 * of users offers as much load as the service can take (a closed loop).
 */
export const MIX = [
  ["payment_flow", 0.7],
  ["status_checks", 0.15],
  ["cancellations", 0.1],
  ["health", 0.05],
] as const;

export type Scenario = (typeof MIX)[number][0] | "confirm_flow" | "confirm_prepared";

export interface Merchant {
  id: string;
  token: string;
}

type Json = Record<string, unknown>;

// Mostly approved cards and a few declines, so the failure path (200 with status failed) is under load too.
const PAYMENT_METHODS: ReadonlyArray<readonly [{ method: string; failureCode?: string }, number]> = [
  [{ method: "pm_card_visa" }, 80],
  [{ method: "pm_card_mastercard" }, 7],
  [{ method: "pm_card_mir" }, 7],
  [{ method: "pm_card_chargeDeclined", failureCode: "card_declined" }, 6],
];
const CURRENCIES: ReadonlyArray<readonly [string, number]> = [
  ["RUB", 40],
  ["USD", 25],
  ["EUR", 20],
  ["GBP", 5],
  ["JPY", 5],
  ["KZT", 5],
];
const PAGE_LIMIT = 20;
/** Share of cancellations that also cancel the order afterwards (the customer abandons it). */
const ORDER_CANCEL_SHARE = 0.3;

export function pickWeighted<T>(items: ReadonlyArray<readonly [T, number]>): T {
  const total = items.reduce((sum, [, w]) => sum + w, 0);
  let r = Math.random() * total;
  for (const [item, w] of items) {
    r -= w;
    if (r < 0) return item;
  }
  return (items[items.length - 1] as readonly [T, number])[0];
}

const randomInt = (min: number, max: number) => min + Math.floor(Math.random() * (max - min + 1));

function parse(body: string): Json | undefined {
  try {
    const value: unknown = JSON.parse(body);
    return typeof value === "object" && value !== null ? (value as Json) : undefined;
  } catch {
    return undefined;
  }
}

/** An unexpected answer as "status code (fields)", e.g. "400 validation_failed (order_id)": groups well. */
function problemOf(status: number, json: Json | undefined): string {
  const fields = Array.isArray(json?.errors)
    ? (json.errors as Json[]).map((e) => String(e.path ?? "?")).join(", ")
    : "";
  return `${status} ${String(json?.code ?? "")}${fields ? ` (${fields})` : ""}`.trim();
}

/** The pause before each step, as the k6 journeys take it (k6/journeys.ts); a journey's first step has none. */
const PAUSE_BEFORE: Record<string, ThinkRange> = {
  create_payment: THINK.checkout,
  confirm: THINK.confirm,
  cancel_payment: THINK.cancel,
  cancel_order: THINK.detail,
  list_orders: THINK.page,
  get_order: THINK.detail,
};

/** What went wrong with an answer, in a few words that group well (status and problem code), or undefined. */
type Check = (json: Json) => string | undefined;

/**
 * One user's calls within one journey. Each call is timed and checked (status and the fields the journey relies
 * on); a failed call ends the journey, as a real client could not go on without the id it was waiting for.
 */
export class Api {
  lastError: string | undefined;
  private calls = 0;

  /** thinkScale: 1 pauses between steps as a real user would (the paced mix), 0 goes straight on. */
  constructor(
    private readonly client: HttpClient,
    private readonly recorder: Recorder,
    private readonly scenario: Scenario,
    private readonly merchant: Merchant,
    private readonly stopAt: number,
    private readonly thinkScale = 0,
  ) {}

  private async call(
    step: string,
    method: "GET" | "POST",
    path: string,
    body: Json | undefined,
    expected: number,
    check: Check,
  ): Promise<Json | undefined> {
    const pause = PAUSE_BEFORE[step];
    if (this.calls++ > 0 && this.thinkScale > 0 && pause) {
      const [min, max] = pause;
      const ms = (min + Math.random() * (max - min)) * 1000 * this.thinkScale;
      await sleep(Math.max(0, Math.min(ms, this.stopAt - performance.now())));
    }
    if (performance.now() >= this.stopAt) return undefined;
    const headers: Record<string, string> = {
      Authorization: `Bearer ${this.merchant.token}`,
      Accept: "application/json",
    };
    // Every POST carries a key, as a careful client sends it, so idempotency is under load too.
    if (method === "POST") headers["Idempotency-Key"] = randomUUID();
    const started = performance.now();
    let error: string | undefined;
    let json: Json | undefined;
    try {
      const reply = await this.client.request(
        method,
        path,
        headers,
        body === undefined ? undefined : JSON.stringify(body),
      );
      json = parse(reply.body);
      if (reply.status !== expected) error = problemOf(reply.status, json);
      else if (!json) error = `${reply.status} body is not JSON`;
      else error = check(json);
    } catch (e) {
      error = (e as NodeJS.ErrnoException).code ?? (e as Error).message;
    }
    this.recorder.request(this.scenario, step, started, performance.now(), error);
    this.lastError = error === undefined ? undefined : `${step}: ${error}`;
    return error === undefined ? json : undefined;
  }

  createOrder(): Promise<Json | undefined> {
    const currency = pickWeighted(CURRENCIES);
    const amount = currency === "JPY" ? randomInt(100, 50_000) : randomInt(100, 250_000);
    // No long digit runs in the description: the service rejects anything that could be a card number.
    const body = { amount, currency, description: `Load test order (${currency})` };
    return this.call("create_order", "POST", "/v1/orders", body, 201, (o) =>
      o.status === "pending" && o.amount === amount && typeof o.id === "string"
        ? undefined
        : "order is not the pending order asked for",
    );
  }

  createPayment(order: Json, method: string): Promise<Json | undefined> {
    return this.call(
      "create_payment",
      "POST",
      "/v1/payments",
      { order_id: order.id, payment_method: method },
      201,
      (p) =>
        p.status === "requires_confirmation" && p.order_id === order.id && p.amount === order.amount
          ? undefined
          : "payment is not requires_confirmation for its order",
    );
  }

  confirm(payment: Json, failureCode?: string): Promise<Json | undefined> {
    return this.call("confirm", "POST", `/v1/payments/${payment.id}/confirm`, {}, 200, (p) => {
      if (failureCode === undefined) return p.status === "succeeded" ? undefined : `status ${p.status}`;
      const failure = p.failure as Json | null;
      return p.status === "failed" && failure?.code === failureCode
        ? undefined
        : `status ${p.status}, expected failed`;
    });
  }

  cancelPayment(payment: Json): Promise<Json | undefined> {
    return this.call(
      "cancel_payment",
      "POST",
      `/v1/payments/${payment.id}/cancel`,
      { reason: "requested_by_customer" },
      200,
      (p) => (p.status === "canceled" ? undefined : `status ${p.status}`),
    );
  }

  cancelOrder(order: Json): Promise<Json | undefined> {
    return this.call("cancel_order", "POST", `/v1/orders/${order.id}/cancel`, {}, 200, (o) =>
      o.status === "canceled" ? undefined : `status ${o.status}`,
    );
  }

  listOrders(seen: Set<string>, startingAfter?: string): Promise<Json | undefined> {
    const query = `limit=${PAGE_LIMIT}${startingAfter ? `&starting_after=${startingAfter}` : ""}`;
    return this.call("list_orders", "GET", `/v1/orders?${query}`, undefined, 200, (page) => {
      if (page.object !== "list" || !Array.isArray(page.data)) return "not a list";
      // Keyset pages, newest first: orders created meanwhile land before page 1, never on a later page again.
      if ((page.data as Json[]).some((o) => seen.has(o.id as string))) return "next page repeats orders";
      return undefined;
    });
  }

  getOrder(id: string): Promise<Json | undefined> {
    return this.call("get_order", "GET", `/v1/orders/${id}`, undefined, 200, (o) =>
      o.id === id ? undefined : "another order",
    );
  }

  health(): Promise<Json | undefined> {
    return this.call("health", "GET", "/health", undefined, 200, (h) =>
      h.status === "ok" ? undefined : `status ${h.status}`,
    );
  }
}

/** Each journey resolves true when it ran to its end. */
export const JOURNEYS: Record<Scenario, (api: Api, prepared?: Json) => Promise<boolean>> = {
  /** 70 %: create order, create payment, confirm; succeeded or failed as the test card says. */
  async payment_flow(api) {
    const order = await api.createOrder();
    if (!order) return false;
    const { method, failureCode } = pickWeighted(PAYMENT_METHODS);
    const payment = await api.createPayment(order, method);
    if (!payment) return false;
    return (await api.confirm(payment, failureCode)) !== undefined;
  },

  /** 15 %: a dashboard paging through orders (two or three keyset pages), then opening one of them. */
  async status_checks(api) {
    const pages = randomInt(2, 3);
    const seen = new Set<string>();
    let startingAfter: string | undefined;
    for (let i = 0; i < pages; i++) {
      const page = await api.listOrders(seen, startingAfter);
      if (!page) return false;
      const data = page.data as Json[];
      for (const order of data) seen.add(order.id as string);
      const last = data[data.length - 1];
      if (page.has_more !== true || !last) break;
      startingAfter = last.id as string;
    }
    const ids = [...seen];
    const id = ids[Math.floor(Math.random() * ids.length)];
    if (id === undefined) return true; // a merchant with no orders yet
    return (await api.getOrder(id)) !== undefined;
  },

  /** 10 %: create order, create payment, the customer backs out; sometimes the order is abandoned too. */
  async cancellations(api) {
    const order = await api.createOrder();
    if (!order) return false;
    const payment = await api.createPayment(order, "pm_card_visa");
    if (!payment) return false;
    if (!(await api.cancelPayment(payment))) return false;
    if (Math.random() < ORDER_CANCEL_SHARE) return (await api.cancelOrder(order)) !== undefined;
    return true;
  },

  /** 5 %: what a monitor or a load balancer does. */
  async health(api) {
    return (await api.health()) !== undefined;
  },

  /** The confirm reference: every journey ends in one confirm, so journeys/s = confirms/s. */
  async confirm_flow(api) {
    const order = await api.createOrder();
    if (!order) return false;
    const payment = await api.createPayment(order, "pm_card_visa");
    if (!payment) return false;
    return (await api.confirm(payment)) !== undefined;
  },

  /** The confirm reference beside pgbench's confirm script: a payment created beforehand, confirmed. */
  async confirm_prepared(api, prepared) {
    return prepared !== undefined && (await api.confirm(prepared)) !== undefined;
  },
};
