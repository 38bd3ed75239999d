export const PAYMENT_STATUSES = [
  "requires_confirmation",
  "processing",
  "requires_action",
  "requires_capture",
  "succeeded",
  "failed",
  "canceled",
] as const;
export type PaymentStatus = (typeof PAYMENT_STATUSES)[number];

export const ORDER_STATUSES = ["pending", "paid", "canceled"] as const;
export type OrderStatus = (typeof ORDER_STATUSES)[number];

export const TERMINAL_PAYMENT_STATUSES: readonly PaymentStatus[] = ["succeeded", "failed", "canceled"];

/**
 * Every allowed move of a payment. The same table is enforced by a database trigger (migration 001), so a bug
 * in code cannot move a payment out of a terminal state either.
 */
export const PAYMENT_TRANSITIONS: Record<PaymentStatus, readonly PaymentStatus[]> = {
  requires_confirmation: ["processing", "canceled"],
  processing: ["succeeded", "failed", "requires_action", "requires_capture", "requires_confirmation"],
  requires_action: ["processing", "succeeded", "failed", "canceled"],
  requires_capture: ["processing", "succeeded", "canceled"],
  succeeded: [],
  failed: [],
  canceled: [],
};

export type PaymentOperation = "confirm" | "capture" | "cancel";

/** Which statuses each API operation may start from. */
export const OPERATION_FROM: Record<PaymentOperation, readonly PaymentStatus[]> = {
  confirm: ["requires_confirmation"],
  capture: ["requires_capture"],
  cancel: ["requires_confirmation", "requires_action", "requires_capture"],
};

export function isTerminal(status: PaymentStatus): boolean {
  return TERMINAL_PAYMENT_STATUSES.includes(status);
}

export function canTransition(from: PaymentStatus, to: PaymentStatus): boolean {
  return PAYMENT_TRANSITIONS[from].includes(to);
}
