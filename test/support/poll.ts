/**
 * The one poll-with-a-deadline loop of the test suites: calls `probe` until it returns something
 * other than undefined, null or false, and fails naming `what` (and the probe's last error) when
 * `timeoutMs` passes. Tests await conditions with it instead of sleeping.
 */
export type Probe<T> = () => Promise<T | undefined | null | false> | T | undefined | null | false;

export async function pollUntil<T>(what: string, probe: Probe<T>, timeoutMs: number, pollMs: number): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      const v = await probe();
      if (v !== undefined && v !== null && v !== false) return v;
    } catch (err) {
      lastError = err;
    }
    if (Date.now() > deadline) {
      const why = lastError === undefined ? '' : `: ${lastError instanceof Error ? lastError.message : JSON.stringify(lastError)}`;
      throw new Error(`timed out waiting for ${what}${why}`);
    }
    await new Promise((r) => setTimeout(r, pollMs));
  }
}
