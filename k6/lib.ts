/**
 * Shared helpers for the k6 load tests (mix.ts, spike.ts, soak.ts):
 * configuration from the environment, HS256 JWT minting, and a small typed API
 * client whose every request is authenticated, tagged with its route template
 * and checked.
 *
 * k6 runs this file directly (k6 >= 0.57 understands TypeScript); local imports
 * therefore carry their `.ts` extension.
 */

import type { JSONObject, JSONValue } from "k6";
import { check, sleep } from "k6";
import crypto from "k6/crypto";
import encoding from "k6/encoding";
import exec from "k6/execution";
import type { Params, Response } from "k6/http";
import http from "k6/http";
import { Trend } from "k6/metrics";
import type { ThinkRange } from "./think-times.ts";

// ---------------------------------------------------------------------------
// Configuration
// ---------------------------------------------------------------------------

/** Service under test, without a trailing slash. 3005 is the service's default port. */
export const BASE_URL = (__ENV.BASE_URL || "http://localhost:3005").replace(/\/+$/, "");

/**
 * A request that takes longer than this is counted as failed. It is well above
 * every latency threshold, so only a hung request reaches it, and below k6's
 * 60 s default so that hung requests do not pin VUs for a minute.
 */
const REQUEST_TIMEOUT = __ENV.REQUEST_TIMEOUT || "30s";

/** Reads a non-negative number from the environment, or the fallback when unset. */
export function envNumber(name: string, fallback: number): number {
  const raw = __ENV[name];
  if (raw === undefined || raw === "") return fallback;
  const value = Number(raw);
  if (!Number.isFinite(value) || value < 0) {
    throw new Error(`${name} must be a non-negative number, got "${raw}"`);
  }
  return value;
}

/** Reads a string from the environment, or the fallback when unset or empty. */
export function envString(name: string, fallback: string): string {
  const raw = __ENV[name];
  return raw === undefined || raw === "" ? fallback : raw;
}

/** Whether the variable was given at all (used to tell defaults from choices). */
export function envIsSet(name: string): boolean {
  const raw = __ENV[name];
  return raw !== undefined && raw !== "";
}

/**
 * k6 duration string ("90s", "1m30s", "1h", "500ms") to seconds. Needed where a
 * script derives time windows (spike phases, soak windows) from its stages.
 */
export function durationSeconds(duration: string): number {
  const part = /(\d+(?:\.\d+)?)(ms|h|m|s)/g;
  let total = 0;
  let consumed = 0;
  for (let match = part.exec(duration); match !== null; match = part.exec(duration)) {
    const value = Number(match[1]);
    const unit = match[2];
    total += unit === "h" ? value * 3600 : unit === "m" ? value * 60 : unit === "s" ? value : value / 1000;
    consumed += match[0].length;
  }
  if (consumed === 0 || consumed !== duration.length) {
    throw new Error(`not a k6 duration: "${duration}" (use e.g. 30s, 10m, 1h30m)`);
  }
  return total;
}

/**
 * System tags kept on metrics: k6's defaults minus `url` (and the TLS/gRPC
 * ones). Every request here sets `name` to its route template, so the
 * per-id `url` tag would only multiply time series in outputs such as
 * Prometheus remote write without adding information.
 */
export const SYSTEM_TAGS = [
  "proto",
  "status",
  "method",
  "name",
  "group",
  "check",
  "error",
  "error_code",
  "scenario",
  "expected_response",
];

/** Trend stats shown in the end-of-test summary: p(99) is what the soak test judges. */
export const SUMMARY_TREND_STATS = ["avg", "min", "med", "p(90)", "p(95)", "p(99)", "max", "count"];

// ---------------------------------------------------------------------------
// Randomness and think time
// ---------------------------------------------------------------------------

/** Uniform integer in [min, max]. */
export function randomInt(min: number, max: number): number {
  return min + Math.floor(Math.random() * (max - min + 1));
}

/** Picks one value from [value, weight] pairs, proportionally to the weights. */
export function pickWeighted<T>(choices: ReadonlyArray<readonly [T, number]>): T {
  const total = choices.reduce((sum, [, weight]) => sum + weight, 0);
  let roll = Math.random() * total;
  for (const [value, weight] of choices) {
    roll -= weight;
    if (roll < 0) return value;
  }
  const last = choices[choices.length - 1];
  if (last === undefined) throw new Error("pickWeighted: no choices");
  return last[0];
}

/** Picks one element uniformly, or undefined from an empty array. */
export function pickOne<T>(items: readonly T[]): T | undefined {
  return items[Math.floor(Math.random() * items.length)];
}

export type { ThinkRange };

let thinkScale = envNumber("THINK_SCALE", 1);

/**
 * Lets an entry script choose its own default scale (the spike test shortens
 * think time so that the load generator needs fewer VUs); an explicit
 * THINK_SCALE always wins.
 */
export function setDefaultThinkScale(scale: number): void {
  if (!envIsSet("THINK_SCALE")) thinkScale = scale;
}

/** The think-time multiplier in force (1 = realistic, 0 = none). */
export function getThinkScale(): number {
  return thinkScale;
}

/**
 * Sleeps a random time in the range, scaled by THINK_SCALE. Real users pause
 * between steps (reading, typing card details); without the pause a VU would
 * fire its requests back to back, which neither looks like real traffic nor
 * holds the concurrency (open sessions) that the targets speak of.
 */
export function think([min, max]: ThinkRange): void {
  if (thinkScale <= 0) return;
  sleep((min + Math.random() * (max - min)) * thinkScale);
}

/** Middle of a think range, for sizing VU pools. */
export function thinkMidpoint([min, max]: ThinkRange): number {
  return (min + max) / 2;
}

// ---------------------------------------------------------------------------
// JWT (HS256) and merchants
// ---------------------------------------------------------------------------

/** A load-test merchant (tenant) and a bearer token for it. */
export interface Merchant {
  readonly id: string;
  readonly token: string;
  /** Token expiry, seconds since the epoch. */
  readonly exp: number;
}

/** What setup() hands to every VU. */
export interface SetupData {
  readonly merchants: readonly Merchant[];
}

const TOKEN_TTL_SECONDS = 3600;
/** A VU re-mints a token this long before it expires (soak tests outlive one token). */
const RENEW_BEFORE_SECONDS = 300;
const SCOPE = "payments:read payments:write";

function nowSeconds(): number {
  return Math.floor(Date.now() / 1000);
}

/**
 * base64url without padding ("rawurl"), as JWS (RFC 7515 section 2) requires.
 * k6's plain "url" variant keeps the "=" padding, which a strict verifier
 * such as jose rejects.
 */
function base64url(text: string): string {
  return encoding.b64encode(text, "rawurl");
}

const JWT_HEADER = base64url(JSON.stringify({ alg: "HS256", typ: "JWT" }));

function jwtSecret(): string {
  const secret = __ENV.JWT_SECRET;
  if (secret === undefined || secret === "") {
    throw new Error(
      "JWT_SECRET is required: pass the same value as the service's JWT_SECRET (-e JWT_SECRET=...)",
    );
  }
  return secret;
}

/**
 * Mints an HS256 token for a merchant, with the claims the service checks:
 * `sub` (the merchant id), `scope`, `iat`, `exp`, and `iss` / `aud` when
 * JWT_ISSUER / JWT_AUDIENCE are given (the service checks them when it has
 * them set, so they must then match).
 */
export function mintToken(merchantId: string, now: number = nowSeconds()): Merchant {
  const claims: Record<string, string | number> = {
    sub: merchantId,
    scope: SCOPE,
    iat: now,
    exp: now + TOKEN_TTL_SECONDS,
  };
  if (envIsSet("JWT_ISSUER")) claims.iss = envString("JWT_ISSUER", "");
  if (envIsSet("JWT_AUDIENCE")) claims.aud = envString("JWT_AUDIENCE", "");
  const signingInput = `${JWT_HEADER}.${base64url(JSON.stringify(claims))}`;
  // "base64rawurl" for the same reason as base64url() above: no padding.
  const signature = crypto.hmac("sha256", jwtSecret(), signingInput, "base64rawurl");
  return { id: merchantId, token: `${signingInput}.${signature}`, exp: now + TOKEN_TTL_SECONDS };
}

/**
 * Tokens for merchants acct_load_1 .. acct_load_<count>. Spreading the load
 * over several merchants keeps each one under the service's per-merchant rate
 * limit (RATE_LIMIT_RPS, 200 by default) and exercises tenant isolation in
 * the data (lists only ever show the merchant's own orders).
 */
export function mintMerchants(count: number): Merchant[] {
  const now = nowSeconds();
  const merchants: Merchant[] = [];
  for (let n = 1; n <= count; n++) merchants.push(mintToken(`acct_load_${n}`, now));
  return merchants;
}

/**
 * How many merchants to use: MERCHANTS if given, else enough that each one
 * sees at most ~100 requests/s (half the default per-merchant limit), and
 * never fewer than 10.
 */
export function merchantCount(expectedPeakRps: number): number {
  return Math.floor(envNumber("MERCHANTS", Math.max(10, Math.ceil(expectedPeakRps / 100))));
}

/** Tokens re-minted by this VU, by merchant id (setup data itself is never mutated). */
const renewed = new Map<string, Merchant>();

/**
 * A random merchant for the next iteration, with a token that is valid for at
 * least five more minutes: setup() mints one-hour tokens, and a soak test
 * runs longer than that.
 */
export function pickMerchant(data: SetupData): Merchant {
  const base = pickOne(data.merchants);
  if (base === undefined) throw new Error("setup() returned no merchants");
  const current = renewed.get(base.id) ?? base;
  if (current.exp - nowSeconds() > RENEW_BEFORE_SECONDS) return current;
  const fresh = mintToken(base.id);
  renewed.set(base.id, fresh);
  return fresh;
}

/**
 * setup(): mints the merchants' tokens and, unless told not to, checks once
 * that the service is up and accepts them, so that a wrong BASE_URL or a
 * JWT_SECRET that differs from the service's stops the test at once instead
 * of producing ten minutes of 401s.
 */
export function setupMerchants(count: number, options: { preflight: boolean }): SetupData {
  const secret = jwtSecret();
  if (secret.length < 16) {
    console.warn("JWT_SECRET is shorter than 16 characters; the service refuses such a secret at start-up");
  }
  const merchants = mintMerchants(count);
  if (options.preflight) {
    const first = merchants[0];
    if (first === undefined) throw new Error("MERCHANTS must be at least 1");
    const api = new Api("setup", first);
    if (!api.health())
      throw new Error(`GET ${BASE_URL}/health did not answer 200 {status:"ok"}: is BASE_URL right?`);
    const auth = api.probeAuth();
    if (auth === 401 || auth === 403) {
      throw new Error(
        `the service answered ${auth} to a minted token: JWT_SECRET (and JWT_ISSUER / JWT_AUDIENCE) must match the service's`,
      );
    }
    if (auth !== 200) throw new Error(`GET /v1/orders answered ${auth} during the preflight`);
  }
  return { merchants };
}

// ---------------------------------------------------------------------------
// API objects (only the fields the checks look at)
// ---------------------------------------------------------------------------

export const ORDER_STATUSES = ["pending", "paid", "canceled"] as const;
export type OrderStatus = (typeof ORDER_STATUSES)[number];

export const PAYMENT_STATUSES = [
  "requires_confirmation",
  "requires_action",
  "requires_capture",
  "processing",
  "succeeded",
  "failed",
  "canceled",
] as const;
export type PaymentStatus = (typeof PAYMENT_STATUSES)[number];

export interface Order {
  readonly id: string;
  readonly status: OrderStatus;
  readonly amount: number;
  readonly currency: string;
}

export interface Payment {
  readonly id: string;
  readonly orderId: string;
  readonly status: PaymentStatus;
  readonly amount: number;
  readonly currency: string;
  readonly failureCode: string | null;
  readonly cancellationReason: string | null;
}

export interface OrderPage {
  readonly data: readonly Order[];
  readonly hasMore: boolean;
}

/** What a confirm should end in, given the sandbox test payment method used. */
export type ExpectedOutcome =
  | { readonly status: "succeeded" }
  | { readonly status: "failed"; readonly failureCode: string };

export type CancellationReason = "requested_by_customer" | "duplicate" | "fraudulent" | "abandoned";

function isObject(value: JSONValue | undefined): value is JSONObject {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function isOneOf<T extends string>(values: readonly T[], value: JSONValue | undefined): value is T {
  return typeof value === "string" && (values as readonly string[]).includes(value);
}

/** The body as JSON, or undefined when it is empty or not JSON (which a check then reports). */
function parseBody(res: Response): JSONValue | undefined {
  if (typeof res.body !== "string" || res.body === "") return undefined;
  try {
    return res.json();
  } catch {
    return undefined;
  }
}

function toOrder(value: JSONValue | undefined): Order | null {
  if (!isObject(value) || value.object !== "order") return null;
  const { id, status, amount, currency } = value;
  if (typeof id !== "string" || !isOneOf(ORDER_STATUSES, status)) return null;
  if (typeof amount !== "number" || typeof currency !== "string") return null;
  return { id, status, amount, currency };
}

function toPayment(value: JSONValue | undefined): Payment | null {
  if (!isObject(value) || value.object !== "payment") return null;
  const { id, order_id, status, amount, currency, failure, cancellation_reason } = value;
  if (typeof id !== "string" || typeof order_id !== "string" || !isOneOf(PAYMENT_STATUSES, status))
    return null;
  if (typeof amount !== "number" || typeof currency !== "string") return null;
  const failureCode = isObject(failure) && typeof failure.code === "string" ? failure.code : null;
  const cancellationReason = typeof cancellation_reason === "string" ? cancellation_reason : null;
  return { id, orderId: order_id, status, amount, currency, failureCode, cancellationReason };
}

function toOrderPage(value: JSONValue | undefined): OrderPage | null {
  if (!isObject(value) || value.object !== "list") return null;
  const { data, has_more } = value;
  if (!Array.isArray(data) || typeof has_more !== "boolean") return null;
  const orders: Order[] = [];
  for (const item of data) {
    const order = toOrder(item);
    if (order === null) return null;
    orders.push(order);
  }
  return { data: orders, hasMore: has_more };
}

// ---------------------------------------------------------------------------
// The API client
// ---------------------------------------------------------------------------

/**
 * Route templates, used as the `name` tag so that k6 aggregates
 * /v1/payments/pay_123/confirm and /v1/payments/pay_456/confirm together
 * instead of creating one metric series per id.
 */
export type Route =
  | "/health"
  | "/v1/orders"
  | "/v1/orders/:id"
  | "/v1/orders/:id/cancel"
  | "/v1/payments"
  | "/v1/payments/:id"
  | "/v1/payments/:id/confirm"
  | "/v1/payments/:id/cancel";

type Query = Readonly<Record<string, string | number | undefined>>;

/**
 * Server time of a whole journey (the sum of its requests' durations, without
 * think time): the latency a customer adds up over a checkout. Tagged with
 * the scenario, so it can carry thresholds too.
 */
const journeyServerTime = new Trend("journey_server_time", true);

/** Failed checks are logged with their request id, but only a few per VU, so a bad run does not flood the console. */
const MAX_FAILURE_LOGS_PER_VU = 5;
let failureLogs = 0;

/** Idempotency keys: unique per POST, VU and a random part so that distributed k6 instances never collide. */
let keySequence = 0;
function idempotencyKey(): string {
  keySequence += 1;
  const random = Array.from(new Uint8Array(crypto.randomBytes(8)), (b) =>
    b.toString(16).padStart(2, "0"),
  ).join("");
  return `k6-${__VU}-${keySequence}-${random}`;
}

/**
 * One journey's view of the API: which scenario it belongs to (a tag on every
 * metric), which merchant it acts for, and extra tags (e.g. the spike's
 * phase). Create a new Api per iteration and call finish() at its end.
 */
export class Api {
  private serverMs = 0;
  private readonly tags: Readonly<Record<string, string>>;

  constructor(
    readonly scenario: string,
    private readonly merchant: Merchant | null,
    extraTags: Readonly<Record<string, string>> = {},
  ) {
    this.tags = { ...extraTags, scenario };
  }

  /** Records the journey's summed server time. */
  finish(): void {
    if (this.serverMs > 0) journeyServerTime.add(this.serverMs, this.tags);
  }

  // --- transport -----------------------------------------------------------

  private request(
    method: "GET" | "POST",
    route: Route,
    id: string | undefined,
    body: JSONObject | null,
    query: Query = {},
  ): Response {
    let path: string = route;
    if (id !== undefined) path = path.replace(":id", encodeURIComponent(id));
    const search = Object.keys(query)
      .filter((key) => query[key] !== undefined)
      .map((key) => `${encodeURIComponent(key)}=${encodeURIComponent(String(query[key]))}`)
      .join("&");
    const url = `${BASE_URL}${path}${search === "" ? "" : `?${search}`}`;

    const headers: Record<string, string> = { Accept: "application/json" };
    // /health is public (a liveness probe has no token); everything else is authenticated.
    if (this.merchant !== null && route !== "/health")
      headers.Authorization = `Bearer ${this.merchant.token}`;
    if (method === "POST") {
      headers["Content-Type"] = "application/json";
      // Every POST gets its own key, as a well-behaved client would: the
      // service then records it, so the test measures the idempotency
      // store's cost too. A retry would reuse the key; this test never retries.
      headers["Idempotency-Key"] = idempotencyKey();
    }
    const params: Params = {
      headers,
      tags: { ...this.tags, name: route },
      timeout: REQUEST_TIMEOUT,
    };
    const res = http.request(method, url, body === null ? null : JSON.stringify(body), params);
    this.serverMs += res.timings.duration;
    return res;
  }

  /** Runs named checks on a response, tagged like the request, and logs the first failures. */
  private verify(res: Response, route: Route, checks: Record<string, () => boolean>): boolean {
    const ok = check(res, checks, { ...this.tags, name: route });
    if (!ok && failureLogs < MAX_FAILURE_LOGS_PER_VU) {
      failureLogs += 1;
      const failed = Object.keys(checks).filter((name) => {
        const fn = checks[name];
        return fn !== undefined && !fn();
      });
      const body = typeof res.body === "string" ? res.body.slice(0, 300) : "";
      console.warn(
        `[${this.scenario}] ${res.request.method} ${route} -> ${res.status} ` +
          `request_id=${res.headers["X-Request-Id"] ?? "-"} failed=${JSON.stringify(failed)} ` +
          `${res.error ? `error=${res.error} ` : ""}body=${body}`,
      );
    }
    return ok;
  }

  /** Records a journey-level assertion (e.g. pagination consistency) as a check on this route. */
  assert(route: Route, name: string, condition: boolean): boolean {
    return check(null, { [name]: () => condition }, { ...this.tags, name: route });
  }

  // --- endpoints -----------------------------------------------------------

  /** GET /health: liveness, no token. */
  health(): boolean {
    const res = this.request("GET", "/health", undefined, null);
    const body = parseBody(res);
    return this.verify(res, "/health", {
      "health: 200": () => res.status === 200,
      'health: status "ok"': () => isObject(body) && body.status === "ok",
    });
  }

  /** Status of an authenticated read, for the setup preflight (no checks: it is not part of the measured load). */
  probeAuth(): number {
    return this.request("GET", "/v1/orders", undefined, null, { limit: 1 }).status;
  }

  /** POST /v1/orders → 201 Order, pending, with the amount and currency sent. */
  createOrder(input: { amount: number; currency: string; description: string }): Order | null {
    const body: JSONObject = { ...input, metadata: { source: "k6", scenario: this.scenario } };
    const res = this.request("POST", "/v1/orders", undefined, body);
    const order = toOrder(parseBody(res));
    const ok = this.verify(res, "/v1/orders", {
      "create order: 201": () => res.status === 201,
      "create order: id starts with ord_": () => order?.id.startsWith("ord_") === true,
      "create order: pending with the amount and currency sent": () =>
        order !== null &&
        order.status === "pending" &&
        order.amount === input.amount &&
        order.currency === input.currency,
    });
    return ok ? order : null;
  }

  /** POST /v1/payments → 201 Payment in requires_confirmation, amount and currency from the order. */
  createPayment(order: Order, paymentMethod: string): Payment | null {
    const res = this.request("POST", "/v1/payments", undefined, {
      order_id: order.id,
      payment_method: paymentMethod,
    });
    const payment = toPayment(parseBody(res));
    const ok = this.verify(res, "/v1/payments", {
      "create payment: 201": () => res.status === 201,
      "create payment: id starts with pay_": () => payment?.id.startsWith("pay_") === true,
      "create payment: requires_confirmation": () => payment?.status === "requires_confirmation",
      "create payment: order, amount and currency of the order": () =>
        payment !== null &&
        payment.orderId === order.id &&
        payment.amount === order.amount &&
        payment.currency === order.currency,
    });
    return ok ? payment : null;
  }

  /**
   * POST /v1/payments/{id}/confirm → 200 in all cases: a decline is a
   * payment with status "failed", not an HTTP error. The sandbox test
   * payment method decides which outcome is right.
   */
  confirmPayment(payment: Payment, expected: ExpectedOutcome): Payment | null {
    const res = this.request("POST", "/v1/payments/:id/confirm", payment.id, {});
    const confirmed = toPayment(parseBody(res));
    const ok = this.verify(res, "/v1/payments/:id/confirm", {
      "confirm payment: 200": () => res.status === 200,
      "confirm payment: succeeded or failed": () =>
        confirmed !== null && (confirmed.status === "succeeded" || confirmed.status === "failed"),
      "confirm payment: outcome of the test payment method": () =>
        confirmed !== null &&
        confirmed.id === payment.id &&
        confirmed.status === expected.status &&
        (expected.status === "succeeded" || confirmed.failureCode === expected.failureCode),
    });
    return ok ? confirmed : null;
  }

  /** POST /v1/payments/{id}/cancel → 200 Payment canceled, with the reason given. */
  cancelPayment(payment: Payment, reason: CancellationReason): Payment | null {
    const res = this.request("POST", "/v1/payments/:id/cancel", payment.id, { reason });
    const canceled = toPayment(parseBody(res));
    const ok = this.verify(res, "/v1/payments/:id/cancel", {
      "cancel payment: 200": () => res.status === 200,
      "cancel payment: canceled with the reason given": () =>
        canceled !== null &&
        canceled.id === payment.id &&
        canceled.status === "canceled" &&
        canceled.cancellationReason === reason,
    });
    return ok ? canceled : null;
  }

  /** POST /v1/orders/{id}/cancel → 200 Order canceled. */
  cancelOrder(order: Order): Order | null {
    const res = this.request("POST", "/v1/orders/:id/cancel", order.id, {});
    const canceled = toOrder(parseBody(res));
    const ok = this.verify(res, "/v1/orders/:id/cancel", {
      "cancel order: 200": () => res.status === 200,
      "cancel order: canceled": () =>
        canceled !== null && canceled.id === order.id && canceled.status === "canceled",
    });
    return ok ? canceled : null;
  }

  /** GET /v1/orders?limit=&starting_after= → 200 list of orders, at most `limit` of them. */
  listOrders(limit: number, startingAfter?: string): OrderPage | null {
    const res = this.request("GET", "/v1/orders", undefined, null, { limit, starting_after: startingAfter });
    const page = toOrderPage(parseBody(res));
    const ok = this.verify(res, "/v1/orders", {
      "list orders: 200": () => res.status === 200,
      "list orders: a list of orders with has_more": () => page !== null,
      "list orders: at most limit items, ids start with ord_": () =>
        page !== null && page.data.length <= limit && page.data.every((order) => order.id.startsWith("ord_")),
    });
    return ok ? page : null;
  }

  /** GET /v1/orders/{id} → 200 that order. */
  getOrder(id: string): Order | null {
    const res = this.request("GET", "/v1/orders/:id", id, null);
    const order = toOrder(parseBody(res));
    const ok = this.verify(res, "/v1/orders/:id", {
      "get order: 200": () => res.status === 200,
      "get order: the order asked for": () => order !== null && order.id === id,
    });
    return ok ? order : null;
  }
}

/** Seconds since the running scenario started (for time-window tags). */
export function scenarioElapsedSeconds(): number {
  return (Date.now() - exec.scenario.startTime) / 1000;
}
