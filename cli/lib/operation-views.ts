/**
 * Following and showing a daemon's background operation (cli/daemon/operations.ts: the freeing
 * after a snapshot delete or an in-place restore) with the backup jobs' progress helper.
 */
import type { OperationView } from '../daemon/operations.js';
import type { AdminClient } from './admin-client.js';
import { followJob, jobMode, progressText, rateAndEta, type JobSource } from './backup-views.js';
import { keyValues } from './format.js';

function sourceOf(op: OperationView): JobSource {
  return { route: 'operationGet', unit: op.unit, stallHint: (id) => `see it with galleon operation get ${id}; the freeing goes on in the daemon` };
}

/** To its end: a bar on a terminal, JSON progress lines on stderr with --json. */
export function followOperation(admin: AdminClient, first: OperationView, json: boolean): Promise<OperationView> {
  return followJob(admin, first, jobMode(json), sourceOf(first));
}

export function operationDetails(op: OperationView, nowMs: number): string {
  const { bytesPerSec, etaSec } = rateAndEta(op.progress, nowMs);
  return keyValues([
    ['ID', op.id], ['Kind', op.kind], ['Subject', op.subject], ['State', op.state],
    ['Progress', `${progressText(op.progress, nowMs)} (${op.unit})`],
    ['ETA', op.state === 'running' && etaSec !== null ? `${etaSec} s` : '-'],
    ['Rate', `${bytesPerSec} B/s`],
    ['Error', op.error === null ? undefined : `${op.error.code}: ${op.error.message}`],
  ]);
}
