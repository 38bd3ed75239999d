/**
 * The user journeys that the load tests replay. Each one is a function of an
 * Api (which carries the scenario tag and the merchant's token), so the mix,
 * the spike and the soak test run exactly the same steps.
 */
import {
  Api,
  type ExpectedOutcome,
  pickMerchant,
  pickOne,
  pickWeighted,
  randomInt,
  type SetupData,
  think,
  thinkMidpoint,
} from "./lib.ts";
import { THINK } from "./think-times.ts";

export { THINK };

/**
 * Currencies, weighted towards the ones the service mostly sees. JPY has no
 * minor unit, so its amounts are whole yen; the others are in cents/kopecks.
 */
const CURRENCIES: ReadonlyArray<readonly [string, number]> = [
  ["RUB", 40],
  ["USD", 25],
  ["EUR", 20],
  ["GBP", 5],
  ["JPY", 5],
  ["KZT", 5],
];

/**
 * Sandbox test payment methods and what confirm must then answer. Mostly
 * successful cards, with a few declines so that the failure path (a 200 with
 * status "failed", not an HTTP error) is under load too.
 */
const PAYMENT_METHODS: ReadonlyArray<readonly [{ method: string; outcome: ExpectedOutcome }, number]> = [
  [{ method: "pm_card_visa", outcome: { status: "succeeded" } }, 80],
  [{ method: "pm_card_mastercard", outcome: { status: "succeeded" } }, 7],
  [{ method: "pm_card_mir", outcome: { status: "succeeded" } }, 7],
  [{ method: "pm_card_chargeDeclined", outcome: { status: "failed", failureCode: "card_declined" } }, 6],
];

/** Page size of the status checks; the API allows 1-100. */
const PAGE_LIMIT = 20;

/** Share of cancellations that also cancel the order afterwards (the customer abandons it). */
const ORDER_CANCEL_SHARE = 0.3;

/**
 * A new order's fields. The description holds no long digit run on purpose:
 * the service rejects any 13-19 digit Luhn-valid run as a possible card number,
 * and e.g. a Date.now() (13 digits) would pass Luhn one time in ten.
 */
function newOrder(): { amount: number; currency: string; description: string } {
  const currency = pickWeighted(CURRENCIES);
  const amount = currency === "JPY" ? randomInt(100, 50_000) : randomInt(100, 250_000);
  return { amount, currency, description: `Load test order (${currency})` };
}

/** 70 %: create order, create payment, confirm; succeeded or failed as the test card says. */
export function paymentFlow(api: Api): void {
  const order = api.createOrder(newOrder());
  if (order === null) return;
  think(THINK.checkout);
  const { method, outcome } = pickWeighted(PAYMENT_METHODS);
  const payment = api.createPayment(order, method);
  if (payment === null) return;
  think(THINK.confirm);
  api.confirmPayment(payment, outcome);
}

/**
 * 15 %: a dashboard polling orders. Lists 20 at a time and follows
 * `starting_after` (the last id of the page) for two or three pages while
 * has_more, then opens one of the orders seen. Keyset pagination should make
 * the later pages cost the same as the first.
 */
export function statusChecks(api: Api): void {
  const pages = randomInt(2, 3);
  const seen = new Set<string>();
  let startingAfter: string | undefined;
  for (let i = 0; i < pages; i++) {
    const page = api.listOrders(PAGE_LIMIT, startingAfter);
    if (page === null) break;
    if (startingAfter !== undefined) {
      // Newest first, keyset: orders created meanwhile land before page 1,
      // so a later page must never repeat an order already shown.
      api.assert(
        "/v1/orders",
        "list orders: next page does not repeat orders",
        page.data.every((o) => !seen.has(o.id)),
      );
    }
    for (const order of page.data) seen.add(order.id);
    const last = page.data[page.data.length - 1];
    if (!page.hasMore || last === undefined) break;
    startingAfter = last.id;
    think(THINK.page);
  }
  const id = pickOne(Array.from(seen));
  if (id === undefined) return; // a merchant with no orders yet (start of a run)
  think(THINK.detail);
  api.getOrder(id);
}

/**
 * 10 %: create order, create payment, then the customer backs out: cancel the
 * payment (requested_by_customer) and, sometimes, the order too.
 */
export function cancellation(api: Api): void {
  const order = api.createOrder(newOrder());
  if (order === null) return;
  think(THINK.checkout);
  const payment = api.createPayment(order, "pm_card_visa");
  if (payment === null) return;
  think(THINK.cancel);
  if (api.cancelPayment(payment, "requested_by_customer") === null) return;
  if (Math.random() < ORDER_CANCEL_SHARE) {
    think(THINK.detail);
    api.cancelOrder(order);
  }
}

/** 5 %: what a monitor or a load balancer does. */
export function health(api: Api): void {
  api.health();
}

/**
 * Average think time (before THINK_SCALE) and request count of one iteration
 * of each journey, for sizing VU pools and estimating throughput. Kept next to
 * the journeys so that the two stay in step.
 */
const PROFILE: Readonly<Record<Journey, { readonly think: number; readonly requests: number }>> = {
  payment_flow: { think: thinkMidpoint(THINK.checkout) + thinkMidpoint(THINK.confirm), requests: 3 },
  // 2 or 3 pages (fewer when has_more ends it), then one order.
  status_checks: { think: 1.5 * thinkMidpoint(THINK.page) + thinkMidpoint(THINK.detail), requests: 3.5 },
  cancellations: {
    think:
      thinkMidpoint(THINK.checkout) +
      thinkMidpoint(THINK.cancel) +
      ORDER_CANCEL_SHARE * thinkMidpoint(THINK.detail),
    requests: 3 + ORDER_CANCEL_SHARE,
  },
  health: { think: 0, requests: 1 },
};

/** Average requests one iteration of the journey sends. */
export function requestsPerIteration(journey: Journey): number {
  return PROFILE[journey].requests;
}

/**
 * Average length of one iteration in seconds: think time (scaled) plus an
 * allowance per request for the service's answer.
 */
export function journeySeconds(journey: Journey, thinkScale: number, secondsPerRequest = 0.3): number {
  const { think: thinkSeconds, requests } = PROFILE[journey];
  return thinkSeconds * thinkScale + requests * secondsPerRequest;
}

/** The journeys by scenario name. */
export const JOURNEYS = {
  payment_flow: paymentFlow,
  status_checks: statusChecks,
  cancellations: cancellation,
  health,
} as const;
export type Journey = keyof typeof JOURNEYS;

/**
 * One iteration: pick a merchant (renewing its token if needed), run the
 * journey under the scenario's tags, record its server time.
 */
export function runJourney(
  journey: Journey,
  data: SetupData,
  options: { scenario?: string; tags?: Readonly<Record<string, string>>; pace?: boolean } = {},
): void {
  const api = new Api(options.scenario ?? journey, pickMerchant(data), options.tags);
  JOURNEYS[journey](api);
  api.finish();
  if (options.pace === true) think(THINK.pace);
}
