/**
 * Think times of the load tests, shared by the k6 scripts and the local bench (bench/journeys.ts): nothing here
 * may import k6 modules.
 */

/** A [min, max] range of seconds a user spends between two steps. */
export type ThinkRange = readonly [min: number, max: number];

/**
 * Pauses between steps, in seconds, before THINK_SCALE. They are what a
 * customer or a back-office user plausibly spends; they also set how many
 * sessions are open at once for a given arrival rate (Little's law:
 * concurrency = arrival rate x session length).
 */
export const THINK = {
  /** The order is placed; the customer types card details. */
  checkout: [2, 5],
  /** Payment created; the customer reviews and presses Pay. */
  confirm: [1, 3],
  /** The customer changes their mind before paying. */
  cancel: [1, 4],
  /** A back-office user reads a page of orders before the next one. */
  page: [1, 3],
  /** ...or before opening one order. */
  detail: [0.5, 2],
  /** Closed model only: pause between two journeys of the same user. */
  pace: [1, 3],
} as const satisfies Record<string, ThinkRange>;
