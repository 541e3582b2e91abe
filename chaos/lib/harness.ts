/**
 * What every chaos run does around its own workload and faults: a fault loop that paces faults
 * from one to the next (so a slow restart does not thin them out) and always heals what it broke,
 * a bounded "who leads" question, retries of idempotent setup and verification calls, and the
 * tails of the processes' logs when a run fails. The runs' nemeses decide what to break; this
 * module decides when.
 */
import { readFile } from 'node:fs/promises';
import type { Random } from './random.js';
import { delay, waitFor, withTimeout } from './wait.js';

export interface FaultPacing {
  /** Mean time from one fault to the next; each gap is drawn within ±25 % of it. */
  intervalMs: number;
  /** Least time everything is up between two faults. */
  minUpMs: number;
}

/** A fault just injected: how long it lasts, and how to undo it. */
export interface Fault {
  outageMs: number;
  heal(): Promise<void>;
}

/** Runs faults one at a time until stopped; `stop()` ends the wait for the next one at once. */
export class FaultLoop {
  private stopping = false;
  private wake: (() => void) | null = null;

  constructor(private readonly rnd: Random, private readonly pacing: FaultPacing) {}

  stop(): void {
    this.stopping = true;
    this.wake?.();
  }

  /** `strike` picks a target, injects the fault and records it. */
  async run(strike: () => Promise<Fault>): Promise<void> {
    const { intervalMs, minUpMs } = this.pacing;
    let lastFaultAtMs = Date.now();
    while (!this.stopping) {
      const jitter = this.rnd.between(-intervalMs / 4, intervalMs / 4);
      await this.sleep(Math.max(minUpMs, intervalMs + jitter - (Date.now() - lastFaultAtMs)));
      if (this.stopping) break;
      lastFaultAtMs = Date.now();
      const fault = await strike();
      // The outage is served in full even when stopping: a heal always follows a fault.
      await delay(fault.outageMs);
      await fault.heal();
    }
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => { this.wake = null; resolve(); }, ms);
      this.wake = () => { clearTimeout(timer); this.wake = null; resolve(); };
    });
  }
}

/** The metadata leader's id, or null when the cluster (mid-election, say) does not answer within `timeoutMs`. */
export async function leaderWithin(client: { clusterStatus(): Promise<{ leaderId: string | null }> }, timeoutMs: number): Promise<string | null> {
  try {
    return (await withTimeout(client.clusterStatus(), timeoutMs)).leaderId;
  } catch {
    return null;
  }
}

/** Retries an idempotent call, each attempt bounded by `attemptTimeoutMs`, until it succeeds or `timeoutMs` passes. */
export function retryCall<T>(what: string, timeoutMs: number, attemptTimeoutMs: number, fn: () => Promise<T>): Promise<T> {
  return waitFor(what, timeoutMs, async () => withTimeout(fn(), attemptTimeoutMs), 200);
}

/** Prints the last `lines` lines of each process's log to stderr (a process with no log yet is skipped). */
export async function printLogTails(procs: readonly { id: string; logPath: string }[], lines: number): Promise<void> {
  for (const p of procs) {
    try {
      const tail = (await readFile(p.logPath, 'utf8')).split('\n').slice(-lines).join('\n');
      console.error(`--- last lines of ${p.id} (${p.logPath}):\n${tail}`);
    } catch {
      // No log yet.
    }
  }
}
