/**
 * What the mount manager should do, as a pure function of what the cluster has and what this
 * node has mounted: mount every volume not yet mounted at `<mountPoint>/<name>`, unmount what
 * it auto-mounted whose volume is gone (or renamed away). Explicit mounts (`vfs mount`) are
 * never touched by this plan. No I/O, no clock: tested exhaustively in test/vfs/manager.
 */
import { join } from 'node:path';
import type { Volume } from '../../proto/metadata-types.js';

export interface MountedEntry {
  volumeId: string;
  dir: string;
  auto: boolean;
}

export interface MountPlan {
  mount: { volume: Volume; dir: string }[];
  unmount: MountedEntry[];
}

/** A name usable as one path component (volume names are validated, but a mount dir must never escape). */
export function safeComponent(name: string): boolean {
  return name !== '' && name !== '.' && name !== '..' && !name.includes('/') && !name.includes('\0');
}

export function planMounts(mountPoint: string, volumes: readonly Volume[], mounted: readonly MountedEntry[]): MountPlan {
  const want = new Map<string, Volume>();
  // A volume whose file tree is still being copied or restored cannot be mounted yet: a later round will.
  for (const v of volumes) if (v.state !== 'deleting' && v.treeState === undefined && safeComponent(v.name)) want.set(v.id, v);
  const have = new Map(mounted.map((m) => [m.volumeId, m]));
  const plan: MountPlan = { mount: [], unmount: [] };
  for (const m of mounted) {
    const v = want.get(m.volumeId);
    if (m.auto && (v === undefined || join(mountPoint, v.name) !== m.dir)) plan.unmount.push(m);
  }
  const unmounting = new Set(plan.unmount.map((m) => m.volumeId));
  for (const v of want.values()) {
    if (!have.has(v.id) || unmounting.has(v.id)) plan.mount.push({ volume: v, dir: join(mountPoint, v.name) });
  }
  return plan;
}
