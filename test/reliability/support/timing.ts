export function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2
    ? (sorted[mid] as number)
    : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
}

/**
 * Whether two samples of answer times (milliseconds) differ in kind: their medians further apart than the larger of
 * 0.2 ms and 20 % of the smaller median. Measured here (loopback PostgreSQL, in-process requests): an answer takes
 * 0.6–1.8 ms, one more database round trip about 0.2–0.3 ms, and the medians of 200 interleaved samples of the same
 * request differ by 0.01–0.05 ms; the bound sits between the two. Medians, not means: one garbage-collection pause or a neighbour's burst
 * moves a mean by milliseconds and a median of 200 by nothing. This is a statistical check of equal treatment, not
 * a speed target: both samples are taken together, interleaved, on the same machine.
 */
export function distinguishable(
  a: readonly number[],
  b: readonly number[],
): { distinguishable: boolean; summary: string } {
  const ma = median(a);
  const mb = median(b);
  const bound = Math.max(0.2, 0.2 * Math.min(ma, mb));
  const difference = Math.abs(ma - mb);
  return {
    distinguishable: difference > bound,
    summary: `medians ${ma.toFixed(3)} ms and ${mb.toFixed(3)} ms (n=${a.length}/${b.length}), difference ${difference.toFixed(3)} ms, bound ${bound.toFixed(3)} ms`,
  };
}
