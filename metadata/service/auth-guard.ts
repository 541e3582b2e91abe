/**
 * Who may make which metadata call, and what a tenant sees of its answer (issue #12). One guard
 * for both edges that take metadata calls: the gRPC API (grpc-server.ts, a caller's own token)
 * and the daemon's admin endpoint (cli/daemon/admin-auth.ts, which calls the metadata API with
 * the node credential on behalf of the user it authenticated). So a rule is written once.
 *
 * Per call: the role must grant the method's need (`methodNeed`); for a user with a tenant, the
 * object named must be its tenant's (another tenant's answers exactly as a missing one does), a
 * new volume or class is stamped with its tenant, and lists are filtered. Tenantless principals
 * (the node credential, a cluster-wide admin) cost no lookup at all. The lookups of a tenant's
 * call are linearizable reads (not stale): a volume created a moment ago by another tenant must
 * not slip through a lagging replica. Between that read and the command a volume could be deleted
 * and a namesake created by another tenant: so a tenant's command on an existing volume also
 * carries its tenant (`TenantScope`, at `scopedArgIndex`), and the state machine refuses it in the
 * same apply when the volume is not that tenant's (metadata/state/logic/lookup.ts).
 */
import { ErrorCode, GalleonError } from '../../proto/errors.js';
import {
  hiddenVolume, markDenied, requireClusterWide, requireNeed, seesClass, seesTenant, tenantOf, volumeAccess, type Need, type Principal, type TokenInfo, type User,
} from '../../proto/auth.js';
import type { Snapshot, StorageClass, Volume } from '../../proto/metadata-types.js';

const readMethods = [
  'getStorageClass', 'listStorageClasses', 'getVolume', 'listVolumes', 'listDataNodes', 'clusterStatus', 'getPlacement',
  'listSnapshots', 'getSnapshot', 'getSnapshotTree', 'getBackupTarget', 'listBackupTargets', 'listBackupPolicies',
];
const writeMethods = [
  'createStorageClass', 'deleteStorageClass', 'createVolume', 'updateVolumeLabels', 'expandVolume', 'deleteVolume',
  'createSnapshot', 'deleteSnapshot', 'cloneVolume', 'restoreVolume',
];
const adminMethods = [
  'createUser', 'deleteUser', 'listUsers', 'createToken', 'revokeToken', 'listTokens', 'setVolumePolicy',
  'addMember', 'promoteMember', 'removeMember', 'transferLeadership', 'removeDataNode',
  'addBackupTarget', 'removeBackupTarget', 'createBackupPolicy', 'deleteBackupPolicy',
];
/**
 * For nodes only (the default for anything unlisted; named here where a user might think it
 * theirs): `finishVolumePrune` marks a volume's version prune done, which only a daemon that
 * posted the round to every data node knows (cli/daemon/prune-runner.ts).
 */
const nodeMethods = ['finishVolumePrune'];
const needByMethod = new Map<string, Need>([
  ...readMethods.map((m) => [m, 'read'] as const), ...writeMethods.map((m) => [m, 'write'] as const), ...adminMethods.map((m) => [m, 'admin'] as const),
  ...nodeMethods.map((m) => [m, 'node'] as const),
]);
/** Calls that act on every tenant: refused to a user with a tenant. */
const clusterWideMethods = new Set([
  'addMember', 'promoteMember', 'removeMember', 'transferLeadership', 'removeDataNode',
  // Backup targets and policies are cluster-wide (dataplane/backup/README.md says why).
  'getBackupTarget', 'listBackupTargets', 'listBackupPolicies', 'addBackupTarget', 'removeBackupTarget', 'createBackupPolicy', 'deleteBackupPolicy',
]);
/** Calls that name an existing volume first. */
const volumeRefMethods = new Set(['getVolume', 'updateVolumeLabels', 'expandVolume', 'deleteVolume', 'getPlacement', 'setVolumePolicy', 'createSnapshot', 'restoreVolume']);
/**
 * Calls that name an existing snapshot, and its argument position. A snapshot is its volume's
 * tenant's (a volume with snapshots cannot be deleted, so the volume is always there to ask).
 */
const snapshotRefArg: ReadonlyMap<string, number> = new Map([['getSnapshot', 0], ['getSnapshotTree', 0], ['deleteSnapshot', 0], ['cloneVolume', 0], ['restoreVolume', 1]]);

/** Commands on an existing volume that take the caller's tenant scope, and its argument position. */
export const scopedArgIndex: ReadonlyMap<string, number> = new Map([
  ['deleteVolume', 1], ['updateVolumeLabels', 2], ['expandVolume', 2], ['setVolumePolicy', 2],
  ['createSnapshot', 2], ['deleteSnapshot', 1], ['cloneVolume', 3], ['restoreVolume', 2],
]);

/** The arguments with the tenant scope at its position (any scope the caller sent is replaced). */
function withScope(method: string, args: unknown[], tenant: string): unknown[] {
  const at = scopedArgIndex.get(method);
  if (at === undefined) return args;
  const out = args.slice(0, at);
  while (out.length < at) out.push(null);
  return [...out, { tenant }];
}

/** What a call needs; anything not listed (heartbeats, leases, the namespace, authLookup) is for nodes only. */
export function methodNeed(method: string): Need {
  return needByMethod.get(method) ?? 'node';
}

/** Whether the call changes state (audited when a user makes it). */
export function isMutating(method: string): boolean {
  return writeMethods.includes(method) || (adminMethods.includes(method) && !method.startsWith('list'));
}

/** Linearizable reads the guard needs; each answers null when the object does not exist. */
export interface GuardLookups {
  volume(ref: string): Promise<Volume | null>;
  storageClass(name: string): Promise<StorageClass | null>;
  snapshot(ref: string): Promise<Snapshot | null>;
  volumes(): Promise<Volume[]>;
  user(name: string): Promise<User | null>;
  tokens(): Promise<TokenInfo[]>;
}

export interface GuardedCall {
  args: unknown[];
  /** The object the call names, for the audit event. */
  object: string | null;
  /** Applied to the call's answer (a tenant's lists are filtered). */
  filter(value: unknown): unknown;
}

const same = (v: unknown): unknown => v;

/** Checks a call before it runs; throws PERMISSION_DENIED, or a not-found for another tenant's object. */
export async function guardCall(p: Principal, method: string, args: unknown[], look: GuardLookups): Promise<GuardedCall> {
  const object = typeof args[0] === 'string' ? args[0] : objectName(args[0]);
  requireNeed(p, methodNeed(method), `call ${method}`);
  if (clusterWideMethods.has(method)) requireClusterWide(p, `call ${method}`);
  const tenant = tenantOf(p);
  if (tenant === null) return { args, object, filter: same };
  if (volumeRefMethods.has(method) && typeof args[0] === 'string') await requireOwnVolume(p, args[0], look, method === 'getPlacement');
  const snapAt = snapshotRefArg.get(method);
  // Pinned to the id checked: a namesake made by another tenant since cannot be the one read or changed.
  if (snapAt !== undefined) args = pinned(args, snapAt, await requireOwnSnapshot(p, args[snapAt], look));
  if (scopedArgIndex.has(method)) return { args: withScope(method, args, tenant), object, filter: same };
  switch (method) {
    case 'listVolumes': return { args, object, filter: (v) => (v as Volume[]).filter((x) => seesTenant(p, x.tenant)) };
    case 'listSnapshots':
      if (typeof args[0] === 'string') await requireOwnVolume(p, args[0], look, false);
      return { args, object, filter: await snapshotFilter(p, look) };
    case 'listStorageClasses': return { args, object, filter: (v) => (v as StorageClass[]).filter((x) => seesClass(p, x.tenant)) };
    case 'listUsers': return { args, object, filter: (v) => (v as User[]).filter((u) => seesTenant(p, u.tenant)) };
    case 'createVolume': return { args: [await stampVolumeSpec(p, tenant, args[0], look)], object, filter: same };
    case 'createStorageClass': return { args: [stamp(tenant, args[0], 'storage class')], object, filter: same };
    case 'getStorageClass': case 'deleteStorageClass': await requireOwnClass(p, args[0], look, method === 'deleteStorageClass'); break;
    case 'createUser': return { args: [stamp(tenant, args[0], 'user')], object, filter: same };
    case 'deleteUser': await requireOwnUser(p, args[0], look); break;
    case 'createToken': await requireOwnUser(p, isRecordLike(args[0]) ? args[0].user : undefined, look); break;
    case 'revokeToken': await requireOwnToken(p, args[0], look); break;
    case 'listTokens': return { args, object, filter: await tokenFilter(p, look) };
    default: break;
  }
  return { args, object, filter: same };
}

function isRecordLike(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function objectName(v: unknown): string | null {
  if (!isRecordLike(v)) return null;
  const n = v.name ?? v.user;
  return typeof n === 'string' ? n.slice(0, 128) : null;
}

/** A tenant's spec gets its tenant; naming another one is refused. */
function stamp(tenant: string, spec: unknown, what: string): unknown {
  if (!isRecordLike(spec)) return spec;
  if (spec.tenant !== undefined && spec.tenant !== null && spec.tenant !== tenant) {
    throw new GalleonError(ErrorCode.PERMISSION_DENIED, `a user of tenant ${tenant} may not create a ${what} for tenant ${JSON.stringify(spec.tenant).slice(0, 63)}`, {
      hint: `leave the tenant out: it is yours (${tenant})`,
    });
  }
  return { ...spec, tenant };
}

async function stampVolumeSpec(p: Principal, tenant: string, spec: unknown, look: GuardLookups): Promise<unknown> {
  if (isRecordLike(spec) && typeof spec.storageClass === 'string') await requireOwnClass(p, spec.storageClass, look, false);
  return stamp(tenant, spec, 'volume');
}

async function requireOwnVolume(p: Principal, ref: string, look: GuardLookups, needsData: boolean): Promise<void> {
  const vol = await look.volume(ref);
  if (vol === null) return;
  if (!seesTenant(p, vol.tenant) || (needsData && volumeAccess(p, vol) === 'none')) throw hiddenVolume(ref);
}

/** The same line as a snapshot that does not exist (metadata/state/logic/snapshots.ts). */
function hiddenSnapshot(ref: string): GalleonError {
  return markDenied(new GalleonError(ErrorCode.SNAPSHOT_NOT_FOUND, `snapshot ${JSON.stringify(ref)} not found`, { hint: 'list snapshots with: galleon snapshot list' }));
}

/** The id of the caller's snapshot `ref` (null: none of that name, the call answers so itself). */
async function requireOwnSnapshot(p: Principal, ref: unknown, look: GuardLookups): Promise<string | null> {
  if (typeof ref !== 'string') return null;
  const snap = await look.snapshot(ref);
  if (snap === null) return null;
  const vol = await look.volume(snap.volumeId);
  // No volume (cannot happen while deleting one with snapshots is refused): nobody's, so hidden.
  if (vol === null || !seesTenant(p, vol.tenant)) throw hiddenSnapshot(ref);
  return snap.id;
}

function pinned(args: unknown[], at: number, id: string | null): unknown[] {
  return id === null ? args : args.map((a, i) => (i === at ? id : a));
}

/** A tenant's snapshot list: those of the volumes it sees (listed before: a volume made since is left out, never shown). */
async function snapshotFilter(p: Principal, look: GuardLookups): Promise<(v: unknown) => unknown> {
  const own = new Set((await look.volumes()).filter((v) => seesTenant(p, v.tenant)).map((v) => v.id));
  return (v) => (v as Snapshot[]).filter((s) => own.has(s.volumeId));
}

async function requireOwnClass(p: Principal, name: unknown, look: GuardLookups, deleting: boolean): Promise<void> {
  if (typeof name !== 'string') return;
  const sc = await look.storageClass(name);
  if (sc === null) return;
  if (!seesClass(p, sc.tenant)) {
    throw markDenied(new GalleonError(ErrorCode.STORAGE_CLASS_NOT_FOUND, `storage class ${JSON.stringify(name)} not found`, { hint: 'list classes with: galleon storage-class list' }));
  }
  if (deleting && sc.tenant === undefined) {
    throw new GalleonError(ErrorCode.PERMISSION_DENIED, `storage class ${name} is shared by every tenant; a tenant's user may not delete it`, { hint: 'ask a cluster-wide admin' });
  }
}

function userNotFound(name: string): GalleonError {
  return markDenied(new GalleonError(ErrorCode.USER_NOT_FOUND, `user ${JSON.stringify(name)} not found`, { hint: 'list users with: galleon user list' }));
}

async function requireOwnUser(p: Principal, name: unknown, look: GuardLookups): Promise<void> {
  if (typeof name !== 'string') return;
  const u = await look.user(name);
  if (u !== null && !seesTenant(p, u.tenant)) throw userNotFound(name);
}

async function requireOwnToken(p: Principal, id: unknown, look: GuardLookups): Promise<void> {
  const t = (await look.tokens()).find((x) => x.id === id);
  if (t === undefined) return;
  const u = await look.user(t.user);
  if (u !== null && !seesTenant(p, u.tenant)) {
    throw markDenied(new GalleonError(ErrorCode.TOKEN_NOT_FOUND, `token ${JSON.stringify(id)} not found`, { hint: 'list tokens with: galleon token list' }));
  }
}

async function tokenFilter(p: Principal, look: GuardLookups): Promise<(v: unknown) => unknown> {
  const cache = new Map<string, boolean>();
  for (const t of await look.tokens()) {
    if (!cache.has(t.user)) { const u = await look.user(t.user); cache.set(t.user, u !== null && seesTenant(p, u.tenant)); }
  }
  return (v) => (v as TokenInfo[]).filter((t) => cache.get(t.user) === true);
}

/** Lookups over any function that makes a linearizable metadata call (null for not found). */
export function lookupsOver(call: (method: string, args: unknown[]) => Promise<unknown>): GuardLookups {
  const orNull = async <T>(method: string, args: unknown[], notFound: string): Promise<T | null> => {
    try {
      return await call(method, args) as T;
    } catch (err) {
      if (err instanceof GalleonError && err.code === notFound) return null;
      throw err;
    }
  };
  return {
    volume: (ref) => orNull<Volume>('getVolume', [ref], ErrorCode.VOLUME_NOT_FOUND),
    storageClass: (name) => orNull<StorageClass>('getStorageClass', [name], ErrorCode.STORAGE_CLASS_NOT_FOUND),
    snapshot: (ref) => orNull<Snapshot>('getSnapshot', [ref], ErrorCode.SNAPSHOT_NOT_FOUND),
    volumes: async () => (await call('listVolumes', [])) as Volume[],
    user: async (name) => ((await call('listUsers', [])) as User[]).find((u) => u.name === name) ?? null,
    tokens: async () => (await call('listTokens', [null])) as TokenInfo[],
  };
}
