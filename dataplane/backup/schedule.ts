/**
 * Backup policies on a schedule. The cron expression is parsed by croner (no dependencies, UTC
 * by option, 5- or 6-field expressions, actively kept; `nextRun(after)` is all we need). The
 * scheduler runs in every daemon with the metadata role and acts only while its member leads:
 *
 *  1. an unfinished run claimed by another scheduler identity (`<node>:<term>`: a former leader,
 *     or this node in an earlier term) is taken over with `claimBackupRun` and run again;
 *  2. a policy whose `nextDueMs` has come is claimed with `claimBackupRun(id, due, next)` — the
 *     state machine grants one claim per due time — and then run;
 *  3. the run ends with `finishBackupRun`, accepted only from the current claimer, which then
 *     writes the run journal on the target (`runs/<policy>/<dueMs>-<backup>.json`).
 * A run taken over after its manifest was written is not run again: its backup is found on the
 * target by its (policy, due time) and the run is finished with it.
 * `next` is the schedule's first time after `due` (not after now), so a due time missed while no
 * leader was up is still run, once; a backlog deeper than `maxCatchUpRuns` skips to the present.
 * Losing leadership aborts the runs this node holds (the new leader takes them over), which
 * keeps a run from being done twice unless it completes inside that one tick.
 */
import { Cron } from 'croner';
import type { Logger } from 'pino';
import { ErrorCode, GalleonError, isGalleonError } from '../../proto/errors.js';
import type { BackupPolicy, BackupPolicySpec, MetadataApi } from '../../proto/metadata-types.js';
import type { BackupService } from './service.js';

export const schedulerTickMs = 500;
/** Due times more than this many behind the clock are skipped, not all run (a leaderless weekend). */
export const maxCatchUpRuns = 10;

export function parseSchedule(expr: string): Cron {
  try {
    return new Cron(expr, { paused: true, timezone: 'UTC' });
  } catch (err) {
    throw new GalleonError(ErrorCode.INVALID_ARGUMENT, `--schedule ${JSON.stringify(expr)} is not a cron expression: ${(err as Error).message}`,
      { hint: 'give five fields (minute hour day month weekday), e.g. "0 2 * * *" for 02:00 UTC daily' });
  }
}

/** The first due time strictly after `afterMs`. */
export function nextDue(expr: string, afterMs: number): number {
  const next = parseSchedule(expr).nextRun(new Date(afterMs));
  if (next === null) throw new GalleonError(ErrorCode.INVALID_ARGUMENT, `--schedule ${JSON.stringify(expr)} never fires again`, { hint: 'give a schedule with future times' });
  return next.getTime();
}

/** The due time after `dueMs`, or (when that is far behind) the first one after now. */
export function followingDue(expr: string, dueMs: number, nowMs: number): number {
  let next = nextDue(expr, dueMs);
  let behind = 0;
  for (let t = next; t <= nowMs && behind <= maxCatchUpRuns; t = nextDue(expr, t)) behind += 1;
  if (behind > maxCatchUpRuns) next = nextDue(expr, nowMs);
  return next;
}

export type PolicyBody = Omit<BackupPolicySpec, 'firstDueMs'> & { strategy?: string };

export async function createPolicy(api: MetadataApi, b: PolicyBody, nowMs: number): Promise<BackupPolicy> {
  return api.createBackupPolicy({ ...b, firstDueMs: nextDue(b.schedule, nowMs) });
}

export interface SchedulerDeps {
  api: () => MetadataApi;
  backups: () => BackupService;
  /** This member's identity while it leads (`<node>:<term>`), else null. */
  leadership: () => string | null;
  logger: Logger;
}

export class BackupScheduler {
  private timer: NodeJS.Timeout | null = null;
  private ticking = false;
  private readonly running = new Map<string, { dueMs: number; by: string; abort: AbortController }>();

  constructor(private readonly d: SchedulerDeps) {}

  start(): void {
    this.timer = setInterval(() => { void this.tick(); }, schedulerTickMs);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
    for (const r of this.running.values()) r.abort.abort();
  }

  private async tick(): Promise<void> {
    if (this.ticking) return;
    this.ticking = true;
    try {
      const me = this.d.leadership();
      for (const [id, r] of this.running) if (r.by !== me) { r.abort.abort(); this.running.delete(id); }
      if (me === null) return;
      const policies = await this.d.api().listBackupPolicies();
      for (const p of policies) if (!this.running.has(p.id)) await this.consider(p, me);
    } catch (err) {
      if (!isGalleonError(err, ErrorCode.NOT_LEADER) && !isGalleonError(err, ErrorCode.NO_LEADER)) this.d.logger.warn({ err }, 'backup scheduler tick failed');
    } finally {
      this.ticking = false;
    }
  }

  private async consider(p: BackupPolicy, me: string): Promise<void> {
    const now = Date.now();
    const last = p.lastRun;
    let claimed: BackupPolicy;
    if (last !== null && !last.done) {
      if (last.claimedBy === me) return; // ours and running (or about to be finished)
      claimed = await this.d.api().claimBackupRun(p.id, last.dueMs, p.nextDueMs, me);
      this.d.logger.info({ policy: p.id, dueMs: last.dueMs, from: last.claimedBy }, 'backup run taken over');
    } else {
      if (p.nextDueMs > now) return;
      claimed = await this.d.api().claimBackupRun(p.id, p.nextDueMs, followingDue(p.schedule, p.nextDueMs, now), me);
    }
    const dueMs = claimed.lastRun?.dueMs ?? p.nextDueMs;
    const abort = new AbortController();
    this.running.set(p.id, { dueMs, by: me, abort });
    void this.runOne(claimed, dueMs, me, abort.signal).finally(() => {
      if (this.running.get(p.id)?.abort === abort) this.running.delete(p.id);
    });
  }

  private async runOne(p: BackupPolicy, dueMs: number, me: string, signal: AbortSignal): Promise<void> {
    let backupId: string | null = null;
    let error: string | null = null;
    try {
      const r = await this.d.backups().runScheduled(p, dueMs, signal);
      backupId = r.backup.id;
      if (r.verify !== null && !r.verify.ok) error = `verification of ${backupId} failed: ${[...r.verify.missing, ...r.verify.corrupt].slice(0, 5).join(', ')}`;
      this.d.logger.info({ policy: p.id, dueMs, backup: backupId, deleted: r.deleted }, 'scheduled backup done');
    } catch (err) {
      if (signal.aborted) return; // leadership lost: the next leader takes the run over
      error = err instanceof Error ? err.message : String(err);
      this.d.logger.warn({ err, policy: p.id, dueMs }, 'scheduled backup failed');
    }
    try {
      await this.d.api().finishBackupRun(p.id, dueMs, backupId, error, me);
    } catch (err) {
      this.d.logger.warn({ err, policy: p.id, dueMs }, 'could not record the end of a scheduled backup');
      return;
    }
    // Only the claimer whose end the cluster accepted writes the journal: one entry per due time.
    await this.d.backups().recordRun(p, { policyId: p.id, dueMs, backupId, error, claimedBy: me, finishedAtMs: Date.now() })
      .catch((err: unknown) => { this.d.logger.warn({ err, policy: p.id, dueMs }, 'could not write the run journal'); });
  }
}
