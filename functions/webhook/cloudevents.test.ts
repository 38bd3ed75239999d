import type { AddressInfo } from "node:net";
import { serve } from "@hono/node-server";
import { CloudEvent, HTTP } from "cloudevents";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  processingPayment,
  sandboxEventId,
  sandboxHeaders,
  sandboxNotificationBody,
  TEST_ENV,
} from "../../test/events/support.ts";
import { startTestService, type TestService } from "../../test/support/harness.ts";
import { PROVIDER_NOTIFICATION_TYPE } from "./schema.ts";

let t: TestService;
let secret: string;
beforeAll(async () => {
  t = await startTestService({ env: TEST_ENV });
  secret = t.config.providers.sandbox.webhookSecret;
});
afterAll(() => t.close());

/** A provider notification wrapped as the broker delivers it (format in schema.ts). */
function notificationEvent(
  rawBody: string,
  options: {
    headers?: Record<string, string>;
    provider?: string;
    data?: Record<string, unknown>;
    type?: string;
  } = {},
) {
  return new CloudEvent({
    type: options.type ?? PROVIDER_NOTIFICATION_TYPE,
    source: "/provider-gateway/sandbox",
    ...(options.provider === undefined
      ? { provider: "sandbox" }
      : options.provider
        ? { provider: options.provider }
        : {}),
    datacontenttype: "application/json",
    data: {
      body: rawBody,
      headers: options.headers ?? lowerCase(sandboxHeaders(secret, rawBody)),
      ...options.data,
    },
  });
}

const lowerCase = (h: Record<string, string>) =>
  Object.fromEntries(Object.entries(h).map(([k, v]) => [k.toLowerCase(), v]));

async function deliver(message: { headers: Record<string, unknown>; body: unknown }) {
  const res = await t.app.request("/", {
    method: "POST",
    headers: message.headers as Record<string, string>,
    body: message.body as string,
  });
  const text = await res.text();
  return { status: res.status, text, body: text ? JSON.parse(text) : undefined, headers: res.headers };
}

const paymentStatus = async (id: string) => (await t.call("GET", `/v1/payments/${id}`)).body.status;

describe("POST / (provider notifications as CloudEvents)", () => {
  it.each([
    ["binary", HTTP.binary],
    ["structured", HTTP.structured],
  ])("applies a notification in %s mode and answers 204 with an empty body", async (_, encode) => {
    const { payment } = await processingPayment(t);
    const body = sandboxNotificationBody({ paymentId: payment.id, type: "payment.succeeded" });

    const res = await deliver(encode(notificationEvent(body)));

    expect(res.status).toBe(204);
    expect(res.text).toBe("");
    expect(await paymentStatus(payment.id)).toBe("succeeded");
    const audit = await t.service.db.query(
      "SELECT actor_type FROM audit_log WHERE object_id = $1 AND status_after = 'succeeded'",
      [payment.id],
    );
    expect(audit.rows).toEqual([{ actor_type: "provider" }]);
  });

  it("treats the same provider event in a new CloudEvent as a duplicate: 204, applied once", async () => {
    const { payment } = await processingPayment(t);
    const id = sandboxEventId();
    const body = sandboxNotificationBody({ id, paymentId: payment.id, type: "payment.succeeded" });
    expect((await deliver(HTTP.binary(notificationEvent(body)))).status).toBe(204);
    // The same notification straight from the provider, too.
    const direct = await t.app.request("/v1/webhooks/sandbox", {
      method: "POST",
      headers: sandboxHeaders(secret, body),
      body,
    });
    expect((await direct.json()).result).toBe("duplicate");

    expect((await deliver(HTTP.structured(notificationEvent(body)))).status).toBe(204);

    const applied = await t.service.db.query(
      "SELECT count(*)::int AS n FROM audit_log WHERE object_id = $1 AND actor_type = 'provider'",
      [payment.id],
    );
    expect(applied.rows[0]).toEqual({ n: 1 });
    const stored = await t.service.db.query("SELECT deliveries FROM provider_events WHERE event_id = $1", [
      id,
    ]);
    expect(stored.rows[0]).toEqual({ deliveries: 3 });
  });

  it("verifies the carried notification like a direct one: a forged one is 400 and stores nothing", async () => {
    const { payment } = await processingPayment(t);
    const body = sandboxNotificationBody({ paymentId: payment.id, type: "payment.succeeded" });
    const forged = lowerCase(sandboxHeaders("whsec_forger", body));
    const before = await t.service.db.query("SELECT count(*)::int AS n FROM provider_events");

    const res = await deliver(HTTP.binary(notificationEvent(body, { headers: forged })));

    expect(res.status).toBe(400);
    expect(res.headers.get("content-type")).toContain("application/problem+json");
    expect(res.body.code).toBe("validation_failed");
    expect((await t.service.db.query("SELECT count(*)::int AS n FROM provider_events")).rows).toEqual(
      before.rows,
    );
    expect(await paymentStatus(payment.id)).toBe("processing");
  });

  it("answers 503 for a notification whose payment is not known yet, so the broker retries", async () => {
    const body = sandboxNotificationBody({ paymentId: `pay_${"e".repeat(32)}`, type: "payment.succeeded" });
    const res = await deliver(HTTP.binary(notificationEvent(body)));
    expect(res.status).toBe(503);
    expect(res.headers.get("retry-after")).toBe("10");
  });

  it("takes the provider from data when the extension is absent", async () => {
    const { payment } = await processingPayment(t);
    const body = sandboxNotificationBody({ paymentId: payment.id, type: "payment.succeeded" });
    const res = await deliver(
      HTTP.binary(notificationEvent(body, { provider: "", data: { provider: "sandbox" } })),
    );
    expect(res.status).toBe(204);
    expect(await paymentStatus(payment.id)).toBe("succeeded");
  });

  it.each([
    ["another event type", { type: "io.payment-service.payment.succeeded" }, "type"],
    ["an unknown provider", { provider: "paypal" }, "provider"],
    ["no provider at all", { provider: "" }, "provider"],
    ["extension and data disagreeing", { data: { provider: "stripe" } }, "provider"],
    ["data without body", { data: { body: 42 } }, "data.body"],
    [
      "headers that are not strings",
      { data: { headers: { "sandbox-signature": 1 } } },
      "data.headers.sandbox-signature",
    ],
  ])("answers 400 for %s, naming %s (a broker must not retry it)", async (_, options, path) => {
    const body = sandboxNotificationBody({ paymentId: `pay_${"a".repeat(32)}`, type: "payment.succeeded" });
    const res = await deliver(HTTP.binary(notificationEvent(body, options as never)));
    expect(res.status).toBe(400);
    expect(res.body.code).toBe("validation_failed");
    expect(res.body.errors.map((e: { path: string }) => e.path)).toContain(path);
  });

  it("answers 400 for a request that is not a CloudEvent, and for a batch", async () => {
    const plain = await t.app.request("/", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ hello: "world" }),
    });
    expect(plain.status).toBe(400);
    expect((await plain.json()).code).toBe("validation_failed");

    const body = sandboxNotificationBody({ paymentId: `pay_${"b".repeat(32)}`, type: "payment.succeeded" });
    const batch = await t.app.request("/", {
      method: "POST",
      headers: { "Content-Type": "application/cloudevents-batch+json" },
      body: JSON.stringify([notificationEvent(body).toJSON()]),
    });
    expect(batch.status).toBe(400);

    const missingSource = await t.app.request("/", {
      method: "POST",
      headers: {
        "ce-id": "1",
        "ce-specversion": "1.0",
        "ce-type": PROVIDER_NOTIFICATION_TYPE,
        "content-type": "application/json",
      },
      body: "{}",
    });
    expect(missingSource.status).toBe(400);
  });

  it("serves the same over a real port, with the client address from the socket", async () => {
    const server = serve({ fetch: t.app.fetch, port: 0, hostname: "127.0.0.1" });
    await new Promise<void>((resolve) => server.once("listening", () => resolve()));
    try {
      const { port } = server.address() as AddressInfo;
      const { payment } = await processingPayment(t);
      const body = sandboxNotificationBody({ paymentId: payment.id, type: "payment.succeeded" });
      const message = HTTP.structured(notificationEvent(body));
      const res = await fetch(`http://127.0.0.1:${port}/`, {
        method: "POST",
        headers: message.headers as Record<string, string>,
        body: message.body as string,
      });
      expect(res.status).toBe(204);
      expect(await paymentStatus(payment.id)).toBe("succeeded");
    } finally {
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });
});
