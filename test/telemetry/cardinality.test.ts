/**
 * Series counts must not grow with traffic: every label value comes from a closed set (routes as templates,
 * statuses, providers, currencies), never from an id, a merchant or a raw path. Otherwise each order would add
 * series to every pod, and Prometheus (and the collector's memory) would grow without bound.
 */
import { randomBytes } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { initializeMetrics } from "../../lib/telemetry/baseline.ts";
import { TEST_ENV } from "../events/support.ts";
import { startTestService, type TestService } from "../support/harness.ts";
import { type Exposition, parseExposition } from "./exposition.ts";

let t: TestService;
beforeAll(async () => {
  t = await startTestService({ env: TEST_ENV });
  initializeMetrics(t.service.providers);
});
afterAll(() => t.close());

const hex = (bytes: number) => randomBytes(bytes).toString("hex");

/** Everything a request carries that is unique to it, so the scrape can be searched for any of it. */
const seen = new Set<string>();
const unique = (value: string) => {
  seen.add(value);
  return value;
};

/** `n` rounds of traffic where every id, merchant, path and query string is new. */
async function traffic(n: number): Promise<void> {
  for (let i = 0; i < n; i++) {
    const merchant = unique(`acct_${hex(6)}`);
    const order = await t.call("POST", "/v1/orders", {
      merchant,
      body: { amount: 100 + i, currency: "USD", metadata: { ref: unique(`ref-${hex(4)}`) } },
      headers: { "X-Request-Id": unique(`req-${hex(8)}`) },
    });
    expect(order.status).toBe(201);
    seen.add(order.body.id);
    const payment = await t.call("POST", "/v1/payments", {
      merchant,
      body: { order_id: order.body.id, payment_method: i % 3 ? "pm_card_visa" : "pm_card_chargeDeclined" },
    });
    seen.add(payment.body.id);
    await t.call("POST", `/v1/payments/${payment.body.id}/confirm`, { merchant });
    await t.call("GET", `/v1/orders/${order.body.id}?expand=${unique(hex(5))}`, { merchant });
    // Unknown ids, unknown paths, another merchant's object: 404s with paths never seen before.
    expect((await t.call("GET", `/v1/payments/${unique(`pay_${hex(16)}`)}`, { merchant })).status).toBe(404);
    expect((await t.call("GET", `/v1/orders/${order.body.id}`)).status).toBe(404);
    expect((await t.call("GET", `/${unique(`nope-${hex(4)}`)}/${hex(4)}`)).status).toBe(404);
    await t.call("POST", `/v1/webhooks/${unique(`prov${hex(3)}`)}`, { body: {}, token: null });
    await t.call("GET", `/v1/orders?limit=5&${unique(`q${hex(3)}`)}=${unique(hex(4))}`, { merchant });
  }
}

/** Every series of the service's own metrics (prom-client's process and GC families may add some over time). */
const seriesKeys = (e: Exposition) =>
  new Set(
    [...e.values()]
      .filter((family) => !/^(nodejs|process)_/.test(family.name))
      .flatMap((family) => family.samples.map((s) => `${s.name}${JSON.stringify(s.labels)}`)),
  );

async function scrape(): Promise<{ text: string; exposition: Exposition }> {
  const text = await (await t.app.request("/metrics")).text();
  return { text, exposition: parseExposition(text) };
}

describe("metric cardinality", () => {
  it("does not grow with distinct ids, merchants, paths and query strings", {
    timeout: 120_000,
  }, async () => {
    await scrape(); // the scrape is a request too: its own series exists from here on
    await traffic(100);
    const first = seriesKeys((await scrape()).exposition);
    await traffic(100);
    const { text, exposition } = await scrape();
    const second = seriesKeys(exposition);

    // 100 more orders, merchants, ids and paths add no series. A handful may (an outcome or status code seen for
    // the first time, e.g. a 5xx from a slow machine); a label holding an id would add hundreds.
    const added = [...second].filter((key) => !first.has(key));
    expect(added.length, `series added by the second 100 rounds:\n${added.join("\n")}`).toBeLessThanOrEqual(
      5,
    );
    for (const family of exposition.values()) expect(family.samples.length, family.name).toBeLessThan(1_000);

    // Nothing unique to a request appears anywhere in the scrape.
    const leaked = [...seen].filter((value) => text.includes(value));
    expect(leaked).toEqual([]);

    const problems: string[] = [];
    for (const family of exposition.values()) {
      for (const sample of family.samples) {
        for (const [label, value] of Object.entries(sample.labels)) {
          if (/\b(ord|pay|re|evt|acct|req)_[0-9a-zA-Z]{6,}/.test(value))
            problems.push(`${sample.name}{${label}="${value}"}: an id`);
          if (value.includes("?")) problems.push(`${sample.name}{${label}="${value}"}: a query string`);
          // Routes are templates: every path segment is a literal word or a :param.
          if (value.startsWith("/") && !value.split("/").every((s) => /^(:[a-z_]+|[a-z0-9_.-]*)$/.test(s))) {
            problems.push(`${sample.name}{${label}="${value}"}: a raw path`);
          }
        }
      }
    }
    expect(problems).toEqual([]);

    // The 404s all landed on one label value instead of one per path.
    const unmatched = exposition
      .get("http_requests_total")
      ?.samples.filter((s) => s.labels.route === "unmatched" && s.labels.status === "404");
    expect(unmatched?.length).toBe(1);
    expect(unmatched?.[0]?.value).toBeGreaterThanOrEqual(200);
  });
});
