import { randomBytes } from "node:crypto";
import { createServer, type IncomingHttpHeaders, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { signPayload } from "../../lib/providers/hmac-signature.ts";
import type { PaymentProvider, ProviderName, WebhookVerifier } from "../../lib/providers/provider.ts";
import type { TestResponse, TestService } from "../support/harness.ts";

/**
 * pm_card_providerTimeout is how these tests get a payment into processing (charged, answer lost); a run of them
 * must not open the sandbox's circuit breaker or wait for retries.
 */
export const TEST_ENV = { PROVIDER_CIRCUIT_THRESHOLD: "1000", PROVIDER_RETRIES: "0" } as const;

/** A sandbox event id as the sandbox makes them (evt_sbx_ + 32 hex). */
export const sandboxEventId = () => `evt_sbx_${randomBytes(16).toString("hex")}`;

export interface SandboxNotificationInput {
  paymentId: string;
  type: "payment.succeeded" | "payment.requires_capture" | "payment.failed" | string;
  id?: string;
  /** Unix seconds; default now. */
  created?: number;
  amount?: number;
  currency?: string;
  providerPaymentId?: string;
  failure?: { code: string; message: string };
}

/** The sandbox's notification body (format of lib/providers/sandbox-webhook.ts), as the raw string it sends. */
export function sandboxNotificationBody(input: SandboxNotificationInput): string {
  return JSON.stringify({
    id: input.id ?? sandboxEventId(),
    type: input.type,
    created: input.created ?? Math.floor(Date.now() / 1000),
    data: {
      payment_id: input.paymentId,
      provider_payment_id: input.providerPaymentId ?? `sbx_${input.paymentId.slice(4)}`,
      amount: input.amount ?? 1999,
      currency: input.currency ?? "USD",
      ...(input.failure ? { failure: input.failure } : {}),
    },
  });
}

/** Headers of a signed sandbox delivery; `timestamp` lets a test replay an old signature. */
export function sandboxHeaders(secret: string, body: string, timestamp?: number): Record<string, string> {
  return { "Content-Type": "application/json", "Sandbox-Signature": signPayload(secret, body, timestamp) };
}

export async function postSandboxWebhook(
  t: TestService,
  body: string,
  headers: Record<string, string> = sandboxHeaders(t.config.providers.sandbox.webhookSecret, body),
): Promise<TestResponse> {
  const res = await t.app.request("/v1/webhooks/sandbox", { method: "POST", headers, body });
  const text = await res.text();
  return { status: res.status, headers: res.headers, text, body: text ? JSON.parse(text) : undefined };
}

/** Adds or replaces providers of one test service by name (test doubles for what the sandbox cannot say). */
export function withProviders(
  t: TestService,
  extra: Partial<Record<ProviderName, PaymentProvider & Partial<WebhookVerifier>>>,
): void {
  const original = t.service.providers;
  t.service.providers = {
    get: (name) => extra[name] ?? original.get(name),
    forCurrency: original.forCurrency,
    names: [...new Set([...original.names, ...(Object.keys(extra) as ProviderName[])])],
  };
}

/** A payment stuck in processing: the sandbox charged it but never answered (pm_card_providerTimeout). */
export async function processingPayment(
  t: TestService,
  options: { amount?: number; currency?: string; capture_method?: string; merchant?: string } = {},
) {
  const order = await t.call("POST", "/v1/orders", {
    merchant: options.merchant,
    body: { amount: options.amount ?? 1999, currency: options.currency ?? "USD" },
  });
  const payment = await t.call("POST", "/v1/payments", {
    merchant: options.merchant,
    body: {
      order_id: order.body.id,
      payment_method: "pm_card_providerTimeout",
      ...(options.capture_method ? { capture_method: options.capture_method } : {}),
    },
  });
  const confirmed = await t.call("POST", `/v1/payments/${payment.body.id}/confirm`, {
    merchant: options.merchant,
  });
  if (confirmed.body.status !== "processing") {
    throw new Error(`expected processing, got ${confirmed.status} ${JSON.stringify(confirmed.body)}`);
  }
  return { order: order.body, payment: confirmed.body };
}

export interface ReceivedRequest {
  headers: IncomingHttpHeaders;
  body: string;
  /** The status this sink answered. */
  status: number;
}

/**
 * A local HTTP sink standing in for a Knative Broker's ingress: records every request; `respond` picks the status
 * (or holds the response, returning a promise) per request, in arrival order.
 */
export async function startSink(
  respond: (
    index: number,
    request: { headers: IncomingHttpHeaders; body: string },
  ) => number | Promise<number> = () => 202,
): Promise<{
  url: string;
  received: ReceivedRequest[];
  /** Forgets what was received; request indexes start at 0 again. */
  reset: () => void;
  close: () => Promise<void>;
  server: Server;
}> {
  const received: ReceivedRequest[] = [];
  let count = 0;
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", async () => {
      const request = { headers: req.headers, body: Buffer.concat(chunks).toString("utf8") };
      const index = count++;
      const status = await respond(index, request);
      received.push({ ...request, status });
      res.writeHead(status).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/`,
    received,
    server,
    reset: () => {
      count = 0;
      received.length = 0;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** The ids a sink accepted (2xx), in arrival order, with each event's partition. */
export function accepted(received: ReceivedRequest[]): { id: string; partition: string; type: string }[] {
  return received
    .filter((r) => r.status >= 200 && r.status < 300)
    .map((r) => ({
      id: String(r.headers["ce-id"]),
      partition: String(r.headers["ce-partitionkey"]),
      type: String(r.headers["ce-type"]),
    }));
}
