/**
 * Time as the data plane's shell sees it: a monotonic `now()` in milliseconds and one-shot
 * timers. The server takes a `Clock` (constructor injection) instead of calling `setTimeout` and
 * `performance.now()` itself, so a test or a simulator can drive time by hand (`ManualClock`).
 * `systemClock` is the real one. One conformance suite (test/dataplane/conformance/clock.*)
 * runs against both.
 */
import { invariant } from '../proto/errors.js';

/** A scheduled timer, for `clearTimeout` (what `timer` holds is the clock's own business). */
export interface TimerHandle { readonly timer: unknown }

export interface Clock {
  /** Milliseconds on a monotonic clock (only differences mean anything). */
  now(): number;
  /**
   * Calls `fn` once, no earlier than `ms` from now. Timers due at the same time fire in the
   * order they were set. A pending timer never keeps the process alive.
   */
  setTimeout(fn: () => void, ms: number): TimerHandle;
  /** Cancels a timer that has not fired; a no-op for one that fired or was cancelled. */
  clearTimeout(handle: TimerHandle | undefined): void;
}

/** The process's clock: `performance.now()` and unref'd node timers. */
class SystemClock implements Clock {
  now(): number {
    return performance.now();
  }

  setTimeout(fn: () => void, ms: number): TimerHandle {
    const h: { timer: NodeJS.Timeout | undefined } = { timer: undefined };
    this.arm(h, performance.now() + Math.max(0, ms), fn);
    return h;
  }

  /**
   * Node's timers count from the event loop's cached time, so one can fire up to a millisecond
   * before `performance.now()` shows its delay passed: such a timer is armed again for the rest.
   */
  private arm(h: { timer: NodeJS.Timeout | undefined }, due: number, fn: () => void): void {
    h.timer = setTimeout(() => {
      if (performance.now() < due) { this.arm(h, due, fn); return; }
      fn();
    }, Math.max(0, Math.ceil(due - performance.now())));
    h.timer.unref();
  }

  clearTimeout(handle: TimerHandle | undefined): void {
    if (handle !== undefined) clearTimeout(handle.timer as NodeJS.Timeout | undefined);
  }
}

export const systemClock: Clock = new SystemClock();

interface ManualTimer { timerId: number; due: number; fn: () => void }

/** Most timers a `ManualClock.advance` fires in one call: a timer that re-arms itself at 0 ms would loop forever. */
export const maxTimersPerAdvance = 100_000;

/**
 * A clock that moves only when told (`advance`): for tests and in-process simulations. Timers
 * fire in order of their due time, then of their setting; a timer set while `advance` runs fires
 * in the same call when it falls due within it.
 */
export class ManualClock implements Clock {
  private current: number;
  private nextId = 1;
  /** Pending timers, kept sorted by (due, timerId). */
  private pending: ManualTimer[] = [];

  constructor(startMs = 0) {
    this.current = startMs;
  }

  now(): number {
    return this.current;
  }

  setTimeout(fn: () => void, ms: number): TimerHandle {
    const t: ManualTimer = { timerId: this.nextId++, due: this.current + Math.max(0, ms), fn };
    // Insert after every timer due no later: equal due times keep their setting order.
    let i = this.pending.length;
    while (i > 0 && (this.pending[i - 1] as ManualTimer).due > t.due) i--;
    this.pending.splice(i, 0, t);
    return { timer: t.timerId };
  }

  clearTimeout(handle: TimerHandle | undefined): void {
    if (handle === undefined) return;
    this.pending = this.pending.filter((t) => t.timerId !== handle.timer);
  }

  /** Timers not yet fired. */
  get pendingTimers(): number {
    return this.pending.length;
  }

  /** Moves time forward by `ms`, firing every timer that falls due on the way; returns how many fired. */
  advance(ms: number): number {
    invariant(ms >= 0, 'a clock never goes back');
    const until = this.current + ms;
    let fired = 0;
    for (;;) {
      const next = this.pending[0];
      if (next === undefined || next.due > until) break;
      invariant(fired < maxTimersPerAdvance, `more than ${maxTimersPerAdvance} timers fired in one advance`);
      this.pending.shift();
      this.current = Math.max(this.current, next.due);
      fired++;
      next.fn();
    }
    this.current = until;
    return fired;
  }
}
