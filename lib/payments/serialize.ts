import type { Failure, NextAction } from "../providers/provider.ts";
import type { OrderStatus, PaymentStatus } from "./state-machine.ts";

export type Metadata = Record<string, string>;

export interface OrderRow {
  id: string;
  merchant_id: string;
  amount: number;
  currency: string;
  status: OrderStatus;
  description: string | null;
  metadata: Metadata;
  amount_paid: number;
  amount_refunded: number;
  created_at: Date;
  updated_at: Date;
}

export interface PaymentRow {
  id: string;
  merchant_id: string;
  order_id: string;
  amount: number;
  currency: string;
  status: PaymentStatus;
  provider: string;
  provider_payment_id: string | null;
  payment_method: string;
  capture_method: "automatic" | "manual";
  amount_capturable: number;
  amount_captured: number;
  amount_refunded: number;
  next_action: NextAction | null;
  failure: Failure | null;
  cancellation_reason: string | null;
  return_url: string | null;
  description: string | null;
  metadata: Metadata;
  attempt: number;
  processing_since: Date | null;
  created_at: Date;
  updated_at: Date;
}

export interface RefundRow {
  id: string;
  merchant_id: string;
  payment_id: string;
  amount: number;
  currency: string;
  status: "pending" | "succeeded" | "failed";
  reason: string | null;
  failure: Failure | null;
  created_at: Date;
  updated_at: Date;
}

const iso = (d: Date | string) => (d instanceof Date ? d : new Date(d)).toISOString();

export function orderObject(row: OrderRow) {
  return {
    id: row.id,
    object: "order" as const,
    amount: row.amount,
    currency: row.currency,
    status: row.status,
    description: row.description,
    metadata: row.metadata,
    amount_paid: row.amount_paid,
    amount_refunded: row.amount_refunded,
    created_at: iso(row.created_at),
    updated_at: iso(row.updated_at),
  };
}

export function paymentObject(row: PaymentRow) {
  return {
    id: row.id,
    object: "payment" as const,
    order_id: row.order_id,
    amount: row.amount,
    currency: row.currency,
    status: row.status,
    provider: row.provider,
    provider_payment_id: row.provider_payment_id,
    payment_method: row.payment_method,
    capture_method: row.capture_method,
    amount_capturable: row.amount_capturable,
    amount_captured: row.amount_captured,
    amount_refunded: row.amount_refunded,
    next_action: row.next_action,
    failure: row.failure,
    cancellation_reason: row.cancellation_reason,
    return_url: row.return_url,
    description: row.description,
    metadata: row.metadata,
    created_at: iso(row.created_at),
    updated_at: iso(row.updated_at),
  };
}

export function refundObject(row: RefundRow) {
  return {
    id: row.id,
    object: "refund" as const,
    payment_id: row.payment_id,
    amount: row.amount,
    currency: row.currency,
    status: row.status,
    reason: row.reason,
    failure: row.failure,
    created_at: iso(row.created_at),
    updated_at: iso(row.updated_at),
  };
}

export type OrderObject = ReturnType<typeof orderObject>;
export type PaymentObject = ReturnType<typeof paymentObject>;
export type RefundObject = ReturnType<typeof refundObject>;
