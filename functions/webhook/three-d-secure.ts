import type { Context, Hono } from "hono";
import { bodyLimit } from "hono/body-limit";
import { paymentColumns } from "../../lib/payments/columns.ts";
import type { Actor, ServiceContext, VerbContext } from "../../lib/payments/context.ts";
import { isId } from "../../lib/payments/ids.ts";
import { type Currency, isCurrency, toDecimalString } from "../../lib/payments/money.ts";
import { toProviderPayment } from "../../lib/payments/provider-payment.ts";
import type { PaymentRow } from "../../lib/payments/serialize.ts";
import { afterSettleCommit, settleFromRequiresAction } from "../../lib/payments/settle.ts";
import { recordAuthentication } from "../../lib/providers/sandbox.ts";

const PATH = "/sandbox/3ds/:id";

/**
 * The sandbox's hosted 3-D Secure page: where next_action.redirect_url sends the customer of a
 * pm_card_threeDSecureRequired payment. No login: the payment id in the URL is the capability (random, 128 bits,
 * only handed to the merchant), and the page shows nothing but the amount. "Complete" or "Fail" is recorded in the
 * sandbox's own ledger (so reconciliation hears the same story) and applied through the same settle path as any
 * provider answer; then the customer goes back to the payment's return_url.
 */
export function mountThreeDSecure(app: Hono, service: ServiceContext): void {
  app.get(PATH, async (c) => {
    label(c);
    const payment = await sandboxPayment(service, c.req.param("id"));
    if (!payment) return page(c, 404, "Not found", "<p>There is no authentication here.</p>");
    if (payment.status !== "requires_action") return result(c, payment);
    return page(
      c,
      200,
      "Confirm your payment",
      `<p class="amount">${escapeHtml(amountText(payment))}</p>
       <p>Sandbox 3-D Secure: choose how the customer's bank answers.</p>
       <form method="post" action="/sandbox/3ds/${escapeHtml(payment.id)}">
         <button type="submit" name="action" value="complete">Complete</button>
         <button type="submit" name="action" value="fail">Fail</button>
       </form>`,
    );
  });

  // The form is one field; anything bigger is not from this page.
  const smallForm = bodyLimit({
    maxSize: 1024,
    onError: (c) => page(c, 413, "Too large", "<p>Request too large.</p>"),
  });
  app.post(PATH, smallForm, async (c) => {
    label(c);
    const payment = await sandboxPayment(service, c.req.param("id"));
    if (!payment) return page(c, 404, "Not found", "<p>There is no authentication here.</p>");
    const form = await c.req.parseBody().catch(() => ({}) as Record<string, unknown>);
    const action = form.action;
    if (action !== "complete" && action !== "fail") {
      return page(c, 400, "Bad request", "<p>Choose Complete or Fail.</p>");
    }
    const settled =
      payment.status === "requires_action"
        ? ((await authenticate(service, c, payment.id, action === "complete")) ?? payment)
        : payment;
    if (!settled.return_url) return result(c, settled);
    const back = new URL(settled.return_url);
    back.searchParams.set("payment_id", settled.id);
    back.searchParams.set("status", settled.status);
    return c.redirect(back.toString(), 303);
  });
}

/**
 * Records the answer at the sandbox and settles the payment from requires_action, in one transaction that holds the
 * payment (its order first, as every such transaction does): a cancel racing the customer's answer either comes
 * first, and the sandbox then never charges a canceled payment, or waits and finds the payment settled (409).
 * Returns the payment after.
 */
async function authenticate(
  service: ServiceContext,
  c: Context,
  paymentId: string,
  authenticated: boolean,
): Promise<PaymentRow | undefined> {
  let settled: { row: PaymentRow; ctx: VerbContext } | undefined;
  const payment = await service.db.transaction(async (tx) => {
    await tx.query(
      "SELECT 1 FROM orders WHERE id = (SELECT order_id FROM payments WHERE id = $1) FOR UPDATE",
      [paymentId],
    );
    const { rows } = await tx.query<PaymentRow>(
      `SELECT ${paymentColumns()} FROM payments WHERE id = $1 AND provider = 'sandbox' FOR UPDATE`,
      [paymentId],
    );
    const payment = rows[0];
    if (payment?.status !== "requires_action") return payment;
    const outcome = await recordAuthentication(
      tx,
      toProviderPayment(payment),
      service.config.publicBaseUrl,
      authenticated,
    );
    if (!outcome) return payment;
    const actor: Actor = {
      merchantId: payment.merchant_id,
      requestId: variable(c, "requestId") ?? "",
      traceparent: variable(c, "traceparent"),
      type: "provider",
      id: payment.provider,
      source: "webhook",
    };
    const ctx: VerbContext = { ...service, actor };
    const action = `payment.3ds.${authenticated ? "complete" : "fail"}`;
    const row = await settleFromRequiresAction(tx, ctx, payment.id, outcome, action);
    if (row) settled = { row, ctx };
    return row ?? payment;
  });
  if (settled) await afterSettleCommit(settled.ctx, settled.row);
  return payment;
}

async function sandboxPayment(service: ServiceContext, id: string): Promise<PaymentRow | undefined> {
  if (!isId(id, "pay")) return undefined;
  const { rows } = await service.db.query<PaymentRow>(
    `SELECT ${paymentColumns()} FROM payments WHERE id = $1 AND provider = 'sandbox'`,
    [id],
  );
  return rows[0];
}

function result(c: Context, payment: PaymentRow) {
  const back = payment.return_url
    ? `<p><a href="${escapeHtml(withResult(payment.return_url, payment))}">Return to the merchant</a></p>`
    : "";
  return page(
    c,
    200,
    "Authentication finished",
    `<p class="amount">${escapeHtml(amountText(payment))}</p><p>Payment status: <strong id="status">${escapeHtml(payment.status)}</strong></p>${back}`,
  );
}

function withResult(returnUrl: string, payment: PaymentRow): string {
  const url = new URL(returnUrl);
  url.searchParams.set("payment_id", payment.id);
  url.searchParams.set("status", payment.status);
  return url.toString();
}

function amountText(payment: PaymentRow): string {
  return isCurrency(payment.currency)
    ? `${toDecimalString(payment.amount, payment.currency as Currency)} ${payment.currency}`
    : `${payment.amount} ${payment.currency}`;
}

function page(c: Context, status: 200 | 400 | 404 | 413, title: string, body: string) {
  c.header("Cache-Control", "no-store");
  // No scripts, no framing (clickjacking the buttons), no referrer leaking the capability URL. form-action is left
  // open on purpose: browsers apply it to the redirect to the merchant's return_url as well.
  c.header(
    "Content-Security-Policy",
    "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'; base-uri 'none'",
  );
  c.header("X-Frame-Options", "DENY");
  c.header("Referrer-Policy", "no-referrer");
  c.header("X-Content-Type-Options", "nosniff");
  return c.html(
    `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(title)} · Sandbox 3-D Secure</title>
<style>body{font-family:system-ui,sans-serif;max-width:28rem;margin:3rem auto;padding:0 1rem}.amount{font-size:2rem;margin:1rem 0}button{font-size:1rem;padding:.6rem 1.4rem;margin-right:.5rem}</style>
</head>
<body>
<h1>${escapeHtml(title)}</h1>
${body}
</body>
</html>`,
    status,
  );
}

function label(c: Context) {
  (c.set as (key: string, value: string) => void)("route", PATH);
  (c.set as (key: string, value: string) => void)("fn", "webhook");
}

function variable(c: Context, key: string): string | undefined {
  const value = (c.get as (key: string) => unknown)(key);
  return typeof value === "string" ? value : undefined;
}

function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (ch) => `&#${ch.charCodeAt(0)};`);
}
