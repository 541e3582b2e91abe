/**
 * What the mount manager should do, as a pure function of what the cluster has and what this
 * node has mounted: mount every volume not yet mounted at `<mountPoint>/<name>`, unmount what
 * it auto-mounted whose volume is gone (or renamed away). Explicit mounts (`vfs mount`) are
 * never touched by this plan. No I/O, no clock: tested exhaustively in test/vfs/manager.
 *
 * Access policies (issue #12): an auto-mount acts as the node's mount principal (`mountPrincipal`:
 * user <node id>, role operator, no tenant). A volume whose policy gives it no access is not
 * mounted (`denied`, reported as refused); `ro` mounts read-only, as a ReadOnlyMany volume does.
 * A policy change is applied at the next round: an auto-mount whose access changed is unmounted
 * and mounted again in its new mode (or not at all).
 */
import { join } from 'node:path';
import type { Volume } from '../../proto/metadata-types.js';
import { volumeAccess, type Principal, type VolumeAccess } from '../../proto/auth.js';

export interface MountedEntry {
  volumeId: string;
  dir: string;
  auto: boolean;
  /** Absent: read-write. */
  readOnly?: boolean;
}

export interface MountPlan {
  mount: { volume: Volume; dir: string; readOnly: boolean }[];
  unmount: MountedEntry[];
  /** Volumes the mount principal may not mount (policy), with what it lacks. */
  denied: { volume: Volume; dir: string }[];
}

/** Who a node's auto-mounts act as, for volume access policies. */
export function mountPrincipal(nodeId: string): Principal {
  return { kind: 'user', user: nodeId, role: 'operator', tenant: null, tokenId: 'auto-mount' };
}

/** What an auto-mount of `v` may be: the policy's access, never more than ro for ReadOnlyMany. */
export function autoMountAccess(p: Principal, v: Pick<Volume, 'accessMode' | 'tenant' | 'policy'>): VolumeAccess {
  const a = volumeAccess(p, v);
  return a === 'rw' && v.accessMode === 'ReadOnlyMany' ? 'ro' : a;
}

/** A name usable as one path component (volume names are validated, but a mount dir must never escape). */
export function safeComponent(name: string): boolean {
  return name !== '' && name !== '.' && name !== '..' && !name.includes('/') && !name.includes('\0');
}

export function planMounts(mountPoint: string, volumes: readonly Volume[], mounted: readonly MountedEntry[], access: (v: Volume) => VolumeAccess = () => 'rw'): MountPlan {
  const want = new Map<string, { v: Volume; a: VolumeAccess }>();
  // A volume whose file tree is still being copied or restored cannot be mounted yet: a later round will.
  for (const v of volumes) if (v.state !== 'deleting' && v.treeState === undefined && safeComponent(v.name)) want.set(v.id, { v, a: access(v) });
  const have = new Map(mounted.map((m) => [m.volumeId, m]));
  const plan: MountPlan = { mount: [], unmount: [], denied: [] };
  for (const m of mounted) {
    const w = want.get(m.volumeId);
    const modeChanged = w !== undefined && (w.a === 'none' || (w.a === 'ro') !== (m.readOnly === true));
    if (m.auto && (w === undefined || join(mountPoint, w.v.name) !== m.dir || modeChanged)) plan.unmount.push(m);
  }
  const unmounting = new Set(plan.unmount.map((m) => m.volumeId));
  for (const { v, a } of want.values()) {
    if (have.has(v.id) && !unmounting.has(v.id)) continue;
    const dir = join(mountPoint, v.name);
    if (a === 'none') plan.denied.push({ volume: v, dir });
    else plan.mount.push({ volume: v, dir, readOnly: a === 'ro' });
  }
  return plan;
}
