/**
 * The closed-loop load generator both systems are measured with: `inFlight` workers each issue
 * one request, wait for its answer, and issue the next, for `durationMs`. Latency is measured
 * per request on the monotonic clock.
 */

export interface LoadOptions {
  inFlight: number;
  durationMs: number;
  /** Issues request number `n` (unique across workers). */
  request: (n: number) => Promise<void>;
}

export interface LoadResult {
  inFlight: number;
  completed: number;
  errors: number;
  elapsedMs: number;
  opsPerSec: number;
  p50Ms: number;
  p99Ms: number;
  firstError: string | null;
}

export async function runLoad(options: LoadOptions): Promise<LoadResult> {
  const latenciesNs: number[] = [];
  let errors = 0;
  let firstError: string | null = null;
  let next = 0;
  const started = process.hrtime.bigint();
  const deadline = started + BigInt(options.durationMs) * 1_000_000n;
  const worker = async (): Promise<void> => {
    while (process.hrtime.bigint() < deadline) {
      const n = next++;
      const t0 = process.hrtime.bigint();
      try {
        await options.request(n);
        latenciesNs.push(Number(process.hrtime.bigint() - t0));
      } catch (err) {
        errors++;
        firstError ??= err instanceof Error ? err.message : String(err);
      }
    }
  };
  await Promise.all(Array.from({ length: options.inFlight }, worker));
  const elapsedMs = Number(process.hrtime.bigint() - started) / 1e6;
  latenciesNs.sort((a, b) => a - b);
  return {
    inFlight: options.inFlight,
    completed: latenciesNs.length,
    errors,
    elapsedMs,
    opsPerSec: latenciesNs.length / (elapsedMs / 1000),
    p50Ms: percentile(latenciesNs, 0.5) / 1e6,
    p99Ms: percentile(latenciesNs, 0.99) / 1e6,
    firstError,
  };
}

/** Nearest-rank percentile of an ascending array; NaN when empty. */
export function percentile(sorted: readonly number[], q: number): number {
  if (sorted.length === 0) return Number.NaN;
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1));
  return sorted[rank]!;
}
