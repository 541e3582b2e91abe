/**
 * `waitForChange(sinceIndex, timeoutMs)`: a long poll the mount managers use instead of a
 * polling loop. Answered by any member from what it applied: at once when a command that
 * changes the volume table (create, delete, expand, clone, restore, a step of snapshot tree work,
 * a snapshot delete (a prune request), or a new access policy — auto-mounts follow policies, vfs/manager/plan.ts) was applied after
 * `sinceIndex`, else when one is, else after `timeoutMs` (`changed: false`). Recalls and ends of
 * directory delegations wake it too (a client waiting for a recalled directory, a holder told of a
 * recall: metadata/state/logic/ns-delegation.ts), and so do flush requests before a snapshot and
 * their answers (ns-flush.ts); a mount manager woken by one re-reads the volume table and the open
 * flush requests. The answer's
 * `index` is the next `sinceIndex`. A member that just started counts its start as a change,
 * so a watcher that moves to it re-reads the table once rather than missing anything.
 */
import type { AppliedRecord } from '../state/contract.js';
import { invariant } from '../../proto/errors.js';

/** Longest a watch call may wait (the client's deadline is this plus a margin). */
export const maxWatchTimeoutMs = 60_000;
/** Watchers one member serves at once; past it the oldest is answered early (it re-polls). */
export const maxWatchers = 1_024;

/**
 * `cloneVolume` creates a volume; `restoreVolume` and the paced steps of `fsPurgeDeleted` may end a
 * clone's copy or a restore of its file tree (issue #11), after which its volume can be mounted.
 * The steps wake watchers only while such work or a purge is pending. `setVolumePolicy`: auto-mounts
 * follow access policies. `deleteSnapshot` (and `restoreVolume`) ask for a prune of the volume's
 * versions, which the data-role daemons' prune runners pick up (cli/daemon/prune-runner.ts).
 */
const volumeMethods = new Set(['createVolume', 'deleteVolume', 'expandVolume', 'cloneVolume', 'restoreVolume', 'deleteSnapshot', 'fsPurgeDeleted', 'setVolumePolicy']);
/** Commands that recall or may end a directory delegation (a lease's end ends its session's delegations). */
const delegationMethods = new Set(['fsRecall', 'fsReleaseDelegation', 'fsCommitBatch', 'releaseLease', 'expireLeases']);
/** A flush request before a snapshot (mount managers answer it) and each answer (the snapshot's daemon waits for them): ns-flush.ts. */
const flushMethods = new Set(['fsFlushRequest', 'fsFlushAck']);

export interface WatchAnswer { index: number; changed: boolean }

interface Waiter { since: number; resolve: (a: WatchAnswer) => void; timer: NodeJS.Timeout }

export class VolumeWatch {
  private changeIndex: number;
  private readonly waiters = new Set<Waiter>();

  constructor(startIndex: number, private readonly appliedIndex: () => number) {
    this.changeIndex = startIndex;
  }

  /** From the driver's onApplied: records just applied, in order. */
  noteApplied(records: readonly AppliedRecord[]): void {
    for (const r of records) {
      if (r.kind === 'command' && (volumeMethods.has(r.command.method) || delegationMethods.has(r.command.method) || flushMethods.has(r.command.method))) this.changeIndex = Math.max(this.changeIndex, r.index);
    }
    this.wake();
  }

  /** A snapshot replaced the state: anything may have changed. */
  noteRestored(): void {
    this.changeIndex = Math.max(this.changeIndex, this.appliedIndex());
    this.wake();
  }

  wait(sinceIndex: number, timeoutMs: number): Promise<WatchAnswer> {
    invariant(timeoutMs >= 0 && timeoutMs <= maxWatchTimeoutMs, `watch timeout ${timeoutMs} ms`);
    if (this.changeIndex > sinceIndex) return Promise.resolve({ index: this.appliedIndex(), changed: true });
    if (this.waiters.size >= maxWatchers) {
      const oldest = this.waiters.values().next().value;
      if (oldest !== undefined) this.answer(oldest, false);
    }
    return new Promise((resolve) => {
      const w: Waiter = { since: sinceIndex, resolve, timer: setTimeout(() => this.answer(w, false), timeoutMs) };
      this.waiters.add(w);
    });
  }

  /** Answers everyone (member stopping). */
  close(): void {
    for (const w of [...this.waiters]) this.answer(w, false);
  }

  private wake(): void {
    for (const w of [...this.waiters]) if (this.changeIndex > w.since) this.answer(w, true);
  }

  private answer(w: Waiter, changed: boolean): void {
    if (!this.waiters.delete(w)) return;
    clearTimeout(w.timer);
    w.resolve({ index: changed ? this.appliedIndex() : Math.max(w.since, this.changeIndex), changed });
  }
}
