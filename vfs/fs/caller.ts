/**
 * The caller of a FUSE request as the namespace wants it. Supplementary groups are not in
 * fuse's context; chown/chmod (the only rules that need them) read them from /proc/<pid>/status.
 */
import { readFile } from 'node:fs/promises';
import type { FsCaller } from '../../proto/metadata-types.js';
import type { FuseCaller } from '../fuse/types.js';

/** Kernel groups limit (NGROUPS_MAX). */
const maxGroups = 65_536;

export function parseGroups(status: string): number[] {
  const line = status.split('\n').find((l) => l.startsWith('Groups:'));
  if (line === undefined) return [];
  return line.slice('Groups:'.length).trim().split(/\s+/).filter((s) => s !== '').map(Number).filter(Number.isSafeInteger).slice(0, maxGroups);
}

export async function callerWithGroups(c: FuseCaller): Promise<FsCaller> {
  if (c.pid <= 0) return { uid: c.uid, gid: c.gid };
  const status = await readFile(`/proc/${c.pid}/status`, 'utf8').catch(() => '');
  return { uid: c.uid, gid: c.gid, groups: parseGroups(status) };
}
