/**
 * How much slower `large` runs than `small` (the same work beside a large and a tiny structure),
 * as the ratio of each one's fastest of `rounds` interleaved runs. For "this does not scan the
 * whole structure" checks: a linear scan makes the ratio the size ratio (thousands), an index
 * keeps it near 1, and a busy machine slows both sides of a round alike — unlike a bound in
 * milliseconds.
 */
export function slowdown(small: () => void, large: () => void, rounds = 5): number {
  let bestSmall = Number.POSITIVE_INFINITY;
  let bestLarge = Number.POSITIVE_INFINITY;
  for (let r = 0; r < rounds; r++) {
    bestSmall = Math.min(bestSmall, timed(small));
    bestLarge = Math.min(bestLarge, timed(large));
  }
  return bestLarge / Math.max(bestSmall, 0.05);
}

function timed(f: () => void): number {
  const t = performance.now();
  f();
  return performance.now() - t;
}
