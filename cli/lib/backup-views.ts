/**
 * Human output of the backup commands, and following a job (backup, restore, verify) to its end:
 * a progress bar on a terminal (cli-progress: widely used, small, renders to stderr and redraws
 * in place; phase, blocks done/total, bytes/s, ETA), one JSON line per update on stderr with
 * `--json` (stdout stays the result), nothing otherwise.
 */
import { ErrorCode, GalleonError } from '../../proto/errors.js';
import type { BackupTarget } from '../../proto/metadata-types.js';
import type { AdminClient } from './admin-client.js';
import { formatTime, keyValues, table } from './format.js';
import type { BackupSummary, JobView } from '../../dataplane/backup/service.js';
import type { Progress } from '../../dataplane/backup/catalog.js';

/** How often a job is polled while it runs. */
export const jobPollIntervalMs = 250;
/** A job that reports no progress for this long is given up on (the daemon died or hangs). */
export const jobStallTimeoutMs = 120_000;

export function rateAndEta(p: Progress, nowMs: number): { bytesPerSec: number; etaSec: number | null } {
  const secs = Math.max(0.001, (nowMs - p.startedAtMs) / 1000);
  const perBlock = p.blocksDone / secs;
  return { bytesPerSec: Math.round(p.bytesDone / secs), etaSec: perBlock > 0 && p.blocksTotal >= p.blocksDone ? Math.round((p.blocksTotal - p.blocksDone) / perBlock) : null };
}

export function progressText(p: Progress | null, nowMs: number): string {
  if (p === null) return '-';
  const { bytesPerSec } = rateAndEta(p, nowMs);
  return `${p.phase} ${p.blocksDone}/${p.blocksTotal} ${(bytesPerSec / 1048576).toFixed(1)} MiB/s`;
}

/** What followJob polls: a backup job (the default) or a background operation (cli/daemon/operations.ts). */
export interface JobSource {
  route: 'backupJob' | 'operationGet';
  /** What done/total count, for the bar. */
  unit: string;
  /** Said when the job stalls. */
  stallHint: (id: string) => string;
}

export const backupJobSource: JobSource = {
  route: 'backupJob', unit: 'blocks', stallHint: (id) => `see it with galleon backup list; cancel it with galleon backup cancel ${id}`,
};

/** The fields of a job view followJob reads (JobView and OperationView have them). */
export interface FollowedJob {
  id: string;
  state: string;
  progress: Progress;
  error: { code: string; message: string; hint?: string } | null;
}

export async function followJob<J extends FollowedJob = JobView>(admin: AdminClient, first: J, mode: 'bar' | 'json' | 'quiet', source: JobSource = backupJobSource): Promise<J> {
  const { SingleBar, Presets } = await import('cli-progress');
  const bar = mode === 'bar'
    ? new SingleBar({ format: `{phase} |{bar}| {value}/{total} ${source.unit} | {rate} MiB/s | ETA {etaText}`, stream: process.stderr, hideCursor: true, clearOnComplete: false }, Presets.shades_classic)
    : null;
  bar?.start(Math.max(1, first.progress.blocksTotal), first.progress.blocksDone, { phase: first.progress.phase, rate: '0.0', etaText: '-' });
  let job = first;
  let lastChangeMs = Date.now();
  let last = '';
  for (;;) {
    const now = Date.now();
    const key = JSON.stringify(job.progress);
    if (key !== last) {
      last = key;
      lastChangeMs = now;
      const { bytesPerSec, etaSec } = rateAndEta(job.progress, now);
      if (mode === 'json') process.stderr.write(`${JSON.stringify({ progress: { job: job.id, ...job.progress, bytesPerSec, etaSec } })}\n`);
      bar?.setTotal(Math.max(1, job.progress.blocksTotal));
      // Our own ETA (blocks per second so far): cli-progress's own prints NaN before the first step.
      bar?.update(job.progress.blocksDone, { phase: job.progress.phase.padEnd(10), rate: (bytesPerSec / 1048576).toFixed(1), etaText: etaSec === null ? '-' : `${etaSec}s` });
    } else if (now - lastChangeMs > jobStallTimeoutMs) {
      bar?.stop();
      throw new GalleonError(ErrorCode.TIMEOUT, `job ${job.id} made no progress for ${jobStallTimeoutMs / 1000} s`, { hint: source.stallHint(job.id) });
    }
    if (job.state !== 'running') break;
    await new Promise((r) => setTimeout(r, jobPollIntervalMs));
    job = await admin.route<J>(source.route, { id: job.id });
  }
  bar?.stop();
  if (job.state !== 'done') {
    const e = job.error ?? { code: ErrorCode.INTERNAL, message: `job ${job.id} ${job.state}` };
    throw GalleonError.fromJSON({ ...e, details: {} });
  }
  return job;
}

export function jobMode(json: boolean): 'bar' | 'json' | 'quiet' {
  if (json) return 'json';
  return process.stderr.isTTY === true ? 'bar' : 'quiet';
}

export function targetTable(ts: (BackupTarget & { credentials?: string })[]): string {
  return table(['NAME', 'KIND', 'WHERE', 'CREDENTIALS', 'CREATED'], ts.map((t) => [
    t.name, t.kind, t.kind === 'dir' ? t.path : `${t.endpoint}/${t.bucket}/${t.prefix}`, t.kind === 's3' ? t.credentials ?? '-' : '-', formatTime(t.createdAtMs),
  ]));
}

export function backupTable(bs: BackupSummary[], nowMs: number): string {
  return table(['ID', 'VOLUME', 'TARGET', 'STRATEGY', 'STATE', 'BLOCKS', 'UPLOADED', 'VERIFIED', 'CREATED', 'PROGRESS'], bs.map((b) => [
    b.id, b.volume, b.target, b.strategy, b.state, b.blocks, b.uploadedBlocks,
    b.verified === null ? '-' : `${b.verified.ok ? 'ok' : 'FAILED'} (${b.verified.samplePercent}%)`, formatTime(b.createdAtMs),
    b.state === 'complete' ? '-' : progressText(b.progress, nowMs),
  ]));
}

export function backupDetails(b: BackupSummary & { changed?: number; namespaceEntries?: number }): string {
  return keyValues([
    ['ID', b.id], ['Volume', `${b.volume} (${b.volumeId})`], ['Target', b.target], ['Strategy', b.strategy], ['Parent', b.parent],
    ['State', b.state], ['Blocks', b.blocks], ['Bytes', b.bytes], ['Changed blocks', b.changed], ['Uploaded blocks', b.uploadedBlocks],
    ['Names in tree', b.namespaceEntries], ['Created', formatTime(b.createdAtMs)], ['Completed', formatTime(b.completedAtMs)],
    ['Verified', b.verified === null ? 'never' : `${b.verified.ok ? 'ok' : 'FAILED'} at ${formatTime(b.verified.atMs)} (${b.verified.samplePercent}% sample)`],
  ]);
}
