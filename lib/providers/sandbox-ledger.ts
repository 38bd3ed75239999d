import type { Queryable } from "../db/db.ts";
import { type FailureCode, failure } from "./failures.ts";
import type { Failure, NextAction, ProviderOutcome, ProviderPayment } from "./provider.ts";

/**
 * The sandbox provider's own books (table sandbox_charges): one row per operation, unique per idempotency key,
 * the way a real provider keeps its own records apart from ours. Reconciliation and the hosted 3-D Secure page
 * read the same rows, so what the sandbox "did" never depends on our payments table.
 *
 * Row status: authorize/complete rows hold the payment's status after that step ("succeeded", "requires_capture",
 * "requires_action", "processing" or "failed:<code>"); capture "succeeded"; cancel "canceled"; refund "succeeded"
 * or "failed".
 */
export type LedgerOperation = "authorize" | "complete" | "capture" | "cancel" | "refund";

export interface LedgerRow {
  idempotency_key: string;
  provider_payment_id: string;
  operation: LedgerOperation;
  amount: number;
  status: string;
  created_at: Date;
}

/** The sandbox's view of one payment, folded from its ledger rows in order. */
export interface SandboxState {
  outcome: ProviderOutcome;
  /** Authorized and not yet captured or released. */
  capturable: number;
  captured: number;
  refunded: number;
  /** The authorize row of an asynchronous payment that has not completed yet. */
  pendingSince?: Date;
}

export const sandboxPaymentId = (payment: ProviderPayment) =>
  payment.providerPaymentId ?? `sbx_${payment.paymentId.slice(4)}`;

export const threeDSecureUrl = (publicBaseUrl: string, paymentId: string): NextAction => ({
  type: "redirect",
  redirect_url: `${publicBaseUrl}/sandbox/3ds/${paymentId}`,
});

/**
 * Records an operation once per idempotency key and returns the first recorded row (a replay sees the original);
 * `inserted` tells the first call from its repeats.
 */
export async function recordOperation(
  db: Queryable,
  key: string,
  payment: ProviderPayment,
  operation: LedgerOperation,
  amount: number,
  status: string,
): Promise<LedgerRow & { inserted: boolean }> {
  const { rows } = await db.query<LedgerRow & { inserted: boolean }>(
    `INSERT INTO sandbox_charges (idempotency_key, provider_payment_id, payment_id, operation, amount, currency, status, created_at)
     VALUES ($1, $2, $3, $4, $5, $6, $7, clock_timestamp())
     ON CONFLICT (idempotency_key) DO UPDATE SET idempotency_key = EXCLUDED.idempotency_key
     RETURNING idempotency_key, provider_payment_id, operation, amount, status, created_at, (xmax = 0) AS inserted`,
    [key, sandboxPaymentId(payment), payment.paymentId, operation, amount, payment.currency, status],
  );
  const row = rows[0];
  if (!row) throw new Error("sandbox ledger write returned nothing");
  return row;
}

/**
 * The sandbox's lock on one payment, for the rest of the caller's transaction: decisions that read the ledger and
 * then write it (a cancel, the customer's 3-D Secure answer) take turns, as at a real provider.
 */
export async function lockSandboxPayment(tx: Queryable, paymentId: string): Promise<void> {
  await tx.query("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))", [`sandbox:${paymentId}`]);
}

export async function findOperation(db: Queryable, key: string): Promise<LedgerRow | undefined> {
  const { rows } = await db.query<LedgerRow>(
    `SELECT idempotency_key, provider_payment_id, operation, amount, status, created_at
     FROM sandbox_charges WHERE idempotency_key = $1`,
    [key],
  );
  return rows[0];
}

export async function ledgerRows(db: Queryable, paymentId: string): Promise<LedgerRow[]> {
  const { rows } = await db.query<LedgerRow>(
    `SELECT idempotency_key, provider_payment_id, operation, amount, status, created_at
     FROM sandbox_charges WHERE payment_id = $1 ORDER BY created_at, idempotency_key`,
    [paymentId],
  );
  return rows;
}

/** Folds the rows into the payment's current state at the sandbox. */
export function stateOf(rows: LedgerRow[], nextAction: NextAction): SandboxState {
  const state: SandboxState = { outcome: { status: "processing" }, capturable: 0, captured: 0, refunded: 0 };
  for (const row of rows) {
    const id = row.provider_payment_id;
    switch (row.operation) {
      case "authorize":
      case "complete":
        state.outcome = outcomeOf(row.status, id, row.amount, nextAction);
        state.capturable = row.status === "requires_capture" ? row.amount : 0;
        if (row.status === "succeeded") state.captured = row.amount;
        state.pendingSince = row.status === "processing" ? new Date(row.created_at) : undefined;
        break;
      case "capture":
        state.outcome = { status: "succeeded", providerPaymentId: id, amountCaptured: row.amount };
        state.captured = row.amount;
        state.capturable = 0;
        break;
      case "cancel":
        state.outcome = { status: "canceled", providerPaymentId: id };
        state.capturable = 0;
        state.pendingSince = undefined;
        break;
      case "refund":
        if (row.status === "succeeded") state.refunded += row.amount;
        break;
    }
  }
  return state;
}

export function outcomeOf(
  status: string,
  providerPaymentId: string,
  amount: number,
  nextAction: NextAction,
): ProviderOutcome {
  switch (status) {
    case "succeeded":
      return { status: "succeeded", providerPaymentId, amountCaptured: amount };
    case "requires_capture":
      return { status: "requires_capture", providerPaymentId, amountCapturable: amount };
    case "requires_action":
      return { status: "requires_action", providerPaymentId, nextAction };
    case "processing":
      return { status: "processing", providerPaymentId };
    default:
      return { status: "failed", providerPaymentId, failure: failureOf(status) };
  }
}

function failureOf(status: string): Failure {
  const code = status.startsWith("failed:") ? status.slice("failed:".length) : "provider_error";
  return failure(isKnown(code) ? code : "provider_error");
}

const KNOWN = new Set<string>([
  "card_declined",
  "insufficient_funds",
  "expired_card",
  "authentication_failed",
]);
const isKnown = (code: string): code is FailureCode => KNOWN.has(code);
