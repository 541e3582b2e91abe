/**
 * Paces background work (scrub, segment GC, tombstone purge) by budgets: the work is done in
 * steps, and a step that did `amount` units against a limit of `perSecond` units may not end
 * sooner than amount / perSecond after it began — the pacer sleeps out the rest. With several
 * limits (blocks and bytes) the slowest one sets the pace. An abort ends the wait at once, so a
 * stopping store never waits out a budget.
 */
import { setTimeout as sleep } from 'node:timers/promises';

/** Work a step did against one limit. */
export interface StepWork {
  amount: number;
  perSecond: number;
}

export interface PacerOptions {
  signal?: AbortSignal;
  /** Monotonic milliseconds; tests pass their own. */
  nowMs?: () => number;
  /** Waits `ms` unless `signal` aborts first (never throws); tests pass their own. */
  wait?: (ms: number, signal?: AbortSignal) => Promise<void>;
}

async function abortableSleep(ms: number, signal?: AbortSignal): Promise<void> {
  await sleep(ms, undefined, signal === undefined ? {} : { signal }).catch(() => undefined);
}

export class Pacer {
  private readonly nowMs: () => number;
  private readonly wait: (ms: number, signal?: AbortSignal) => Promise<void>;
  private stepStartedMs: number;

  constructor(private readonly opts: PacerOptions = {}) {
    this.nowMs = opts.nowMs ?? (() => performance.now());
    this.wait = opts.wait ?? abortableSleep;
    this.stepStartedMs = this.nowMs();
  }

  /** Starts timing a step now (a step also starts when the previous one ends). */
  begin(): void {
    this.stepStartedMs = this.nowMs();
  }

  /** Ends the step: sleeps until it has lasted as long as its slowest limit allows, then starts the next. */
  async end(...work: readonly StepWork[]): Promise<void> {
    let budgetMs = 0;
    for (const w of work) budgetMs = Math.max(budgetMs, (w.amount / w.perSecond) * 1000);
    const leftMs = budgetMs - (this.nowMs() - this.stepStartedMs);
    if (leftMs > 0 && this.opts.signal?.aborted !== true) await this.wait(leftMs, this.opts.signal);
    this.begin();
  }
}
