/**
 * Which snapshots a backup run took and nobody will delete: a daemon killed between taking its
 * `backup-<id>` snapshot and recording the run (or a scheduled run's leader that died: the
 * takeover runs under a new id) leaves one behind. Pure: the daemon passes what it listed.
 */
import { isBackupId } from './manifest.js';

/** Names of the snapshots a backup run takes itself (`service.ts` backupAt). */
export const backupSnapshotPrefix = 'backup-';

export function backupIdOfSnapshot(name: string): string | null {
  if (!name.startsWith(backupSnapshotPrefix)) return null;
  const id = name.slice(backupSnapshotPrefix.length);
  return isBackupId(id) ? id : null;
}

export interface OrphanInputs {
  snapshots: readonly { id: string; name: string; createdAtMs: number }[];
  /** `running/` records on every target: ended or not, with their last progress stamp. */
  records: readonly { id: string; ended?: unknown; scheduled?: unknown; progress?: { updatedAtMs: number } }[];
  /** Backup ids with a job running on this daemon. */
  runningHere: ReadonlySet<string>;
  nowMs: number;
  /**
   * A run on another node records itself within this after taking its snapshot, and a running
   * scheduled run rewrites its record at least this often: younger than this, nothing is touched.
   */
  graceMs: number;
}

/**
 * The snapshots to delete: named by a backup run, older than the grace, and no run will use them
 * again — not one running here, not an unended unscheduled run (its node resumes it at that
 * snapshot, then deletes it), not a scheduled run whose record moved within the grace (alive).
 */
export function orphanBackupSnapshots(o: OrphanInputs): { id: string; name: string }[] {
  const records = new Map(o.records.map((r) => [r.id, r]));
  const inUse = (backupId: string): boolean => {
    if (o.runningHere.has(backupId)) return true;
    const r = records.get(backupId);
    if (r === undefined || r.ended !== undefined) return false;
    if (r.scheduled === undefined) return true;
    return o.nowMs - (r.progress?.updatedAtMs ?? 0) < o.graceMs;
  };
  return o.snapshots.filter((s) => {
    const backupId = backupIdOfSnapshot(s.name);
    return backupId !== null && o.nowMs - s.createdAtMs >= o.graceMs && !inUse(backupId);
  }).map((s) => ({ id: s.id, name: s.name })).sort((a, b) => (a.name < b.name ? -1 : 1));
}
