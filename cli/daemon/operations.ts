/**
 * Progress of the daemon's background work that is not a backup job: the freeing after a
 * snapshot delete and after an in-place volume restore (issue #11). Each gets an id; its view has
 * the backup job's shape (dataplane/backup/service.ts `JobView`: id, kind, state, progress with
 * phase, done/total, bytes, start) so the CLI follows both with one helper (cli/lib/backup-views.ts
 * `followJob`). `unit` says what done/total count: block versions for a delete, blocks for a restore.
 *
 * Why in memory, and neither cancellable nor resumed here: by the time an operation is listed,
 * its metadata command (snapshot record gone, volume rolled back) is committed — finished as far
 * as the user is concerned. What follows only frees space, and that work is driven by the
 * metadata state, not by this record: the namespace's old versions by the leader's paced gcStep,
 * block versions no retained cut needs by the volume's prune request (`Volume.prune`, set by the
 * delete or restore command; a data-role daemon resumes a round a daemon death cut short:
 * prune-runner.ts), blocks a restore dropped stay queued in the namespace for the volume's
 * read-write mounts' reaper. So a daemon restart loses this view, never data; Ctrl-C of `--wait`
 * stops watching, not the work.
 */
import { ErrorCode, GalleonError, invariant } from '../../proto/errors.js';
import type { Progress } from '../../dataplane/backup/catalog.js';

/** Finished operations kept for `operation get` (the oldest finished go first). */
export const maxOperationsKept = 200;

export type OperationKind = 'snapshot-delete' | 'volume-restore';
export type OperationUnit = 'versions' | 'blocks';

export interface OperationView {
  id: string;
  kind: OperationKind;
  /** The snapshot deleted or the volume restored (name). */
  subject: string;
  /** The volume's id (a restore's view is also found by it: `volume get`). */
  volumeId: string;
  unit: OperationUnit;
  state: 'running' | 'done' | 'failed';
  progress: Progress;
  result: unknown;
  error: { code: string; message: string; hint?: string } | null;
}

/** One operation's progress, updated by the work as it goes. */
export class OperationHandle {
  constructor(readonly view: OperationView, private readonly nowMs: () => number) {}

  phase(phase: string, total?: number): void {
    this.view.progress.phase = phase;
    if (total !== undefined) this.view.progress.blocksTotal = total;
    this.view.progress.updatedAtMs = this.nowMs();
  }

  add(done: number, bytes: number): void {
    invariant(done >= 0 && bytes >= 0, 'progress only grows');
    this.view.progress.blocksDone += done;
    this.view.progress.bytesDone += bytes;
    this.view.progress.updatedAtMs = this.nowMs();
  }

  finish(result: unknown): void {
    const p = this.view.progress;
    // A total not known beforehand (a restore's dropped blocks) is what was done.
    if (p.blocksTotal < p.blocksDone) p.blocksTotal = p.blocksDone;
    this.phase('done');
    this.view.state = 'done';
    this.view.result = result;
  }

  fail(err: unknown): void {
    const g = err instanceof GalleonError ? err : new GalleonError(ErrorCode.INTERNAL, err instanceof Error ? err.message : String(err));
    this.view.state = 'failed';
    this.view.error = { code: g.code, message: g.message, ...(g.hint === undefined ? {} : { hint: g.hint }) };
    this.view.progress.updatedAtMs = this.nowMs();
  }
}

export class OperationLog {
  private readonly ops = new Map<string, OperationHandle>();
  private seq = 0;

  constructor(private readonly nowMs: () => number = Date.now) {}

  start(kind: OperationKind, subject: string, volumeId: string, unit: OperationUnit, total: number): OperationHandle {
    const now = this.nowMs();
    const id = `op-${now.toString(36)}-${(++this.seq).toString(36)}`;
    const h = new OperationHandle({
      id, kind, subject, volumeId, unit, state: 'running', result: null, error: null,
      progress: { phase: 'starting', blocksDone: 0, blocksTotal: total, bytesDone: 0, startedAtMs: now, updatedAtMs: now },
    }, this.nowMs);
    this.ops.set(id, h);
    this.trim();
    return h;
  }

  get(id: string): OperationView {
    const h = this.ops.get(id);
    if (h === undefined) throw operationNotFound(id);
    return h.view;
  }

  /** The newest operation on a volume, or null. */
  latestFor(volumeId: string): OperationView | null {
    let found: OperationView | null = null;
    for (const h of this.ops.values()) if (h.view.volumeId === volumeId) found = h.view;
    return found;
  }

  private trim(): void {
    for (const [id, h] of this.ops) {
      if (this.ops.size <= maxOperationsKept) return;
      if (h.view.state !== 'running') this.ops.delete(id);
    }
  }
}

export function operationNotFound(id: string): GalleonError {
  return new GalleonError(ErrorCode.OPERATION_NOT_FOUND, `operation ${id} not found on this daemon`, {
    hint: 'operations are kept by the daemon that ran them, until it restarts; ask that daemon (--daemon-address)',
  });
}
