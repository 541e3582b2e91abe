/**
 * The tests' poll-with-a-deadline: calls `probe` until it returns something other than
 * undefined, null or false, and fails naming `what` (and the probe's last error) when
 * `timeoutMs` passes. Tests await conditions with it instead of sleeping. The loop itself is
 * chaos/lib/wait.ts `waitFor` (chaos/ stays runnable without test/; tests may import chaos/lib);
 * this only reads null and false as "not yet" too.
 */
import { waitFor } from '../../chaos/lib/wait.js';

export type Probe<T> = () => Promise<T | undefined | null | false> | T | undefined | null | false;

export function pollUntil<T>(what: string, probe: Probe<T>, timeoutMs: number, pollMs: number): Promise<T> {
  return waitFor(what, timeoutMs, async () => {
    const v = await probe();
    return v === null || v === false ? undefined : v;
  }, pollMs);
}

/** Whether any process of the process group `pgid` is alive (signal 0 to the group). */
export function groupAlive(pgid: number): boolean {
  try {
    process.kill(-pgid, 0);
    return true;
  } catch {
    return false;
  }
}
