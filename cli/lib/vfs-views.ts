/** The mount manager's answers (proto/vfs-types.ts) as the CLI shows them. */
import { maxMountCacheTimeoutSec } from '../../proto/limits.js';
import type { MountInfo, VfsStatus } from '../../proto/vfs-types.js';
import { usageError } from './errors.js';
import { formatTime, keyValues, table } from './format.js';

/** The CLI's names for the mount manager's answers (proto/vfs-types.ts). */
export type MountRow = MountInfo;
export type VfsStatusView = VfsStatus;

export function mountTable(rows: MountRow[]): string {
  if (rows.length === 0) return 'No volumes mounted on this node.';
  return table(['VOLUME', 'MOUNT POINT', 'MODE', 'STATE', 'AUTO', 'MOUNTED', 'ERROR'],
    rows.map((r) => [r.volume, r.mountPoint, r.raw ? `${r.mode},raw` : r.mode, r.state, r.auto ? 'yes' : 'no', formatTime(r.mountedAtMs), r.error]));
}

export function vfsStatusDetails(s: VfsStatusView): string {
  return keyValues([
    ['Volume', s.volume], ['Mount point', s.mountPoint], ['State', s.state], ['Mode', s.mode],
    ['Files', `${s.files}${s.counted === 'partial' ? '+' : ''}`], ['Directories', `${s.directories}${s.counted === 'partial' ? '+' : ''}`],
    ['Bytes', `${s.usedBytes} of ${s.totalBytes}`], ['Pending writes', `${s.pendingWriteBytes} bytes`],
    ['Write-back', `${s.writebackFiles} new files, ${s.writebackBytes} bytes not committed`], ['Open files', s.openHandles],
    ['Namespace writes', `${s.namespaceWrites}${s.pendingCloses > 0 ? ` (${s.pendingCloses} closes pending)` : ''}`],
    ['Last sync', formatTime(s.lastSyncMs)], ['Mounted', formatTime(s.mountedAtMs)],
  ]);
}

/** `--cache-timeout`: seconds, to the millisecond (`1`, `0.25`), from 0 (strict) to `maxMountCacheTimeoutSec`; undefined when not given. */
export function parseCacheTimeout(input: string | undefined): number | undefined {
  if (input === undefined) return undefined;
  const t = input.trim();
  const sec = Number(t);
  if (!/^\d+(\.\d{1,3})?$/.test(t) || sec > maxMountCacheTimeoutSec) {
    throw usageError(`--cache-timeout "${input}" is not a number of seconds from 0 to ${maxMountCacheTimeoutSec}`, 'e.g. --cache-timeout 1 or 0.25 (to the millisecond); 0 asks the namespace every time');
  }
  return sec;
}

/** `-o ro,rw,...` → read-only or not; anything else is refused (one line). */
export function parseMountOptions(o: string | undefined): { readOnly: boolean } | { error: string } {
  let readOnly = false;
  for (const opt of (o ?? '').split(',').map((x) => x.trim()).filter((x) => x !== '')) {
    if (opt === 'ro') readOnly = true;
    else if (opt === 'rw') readOnly = false;
    else return { error: `unknown mount option "${opt}"` };
  }
  return { readOnly };
}
