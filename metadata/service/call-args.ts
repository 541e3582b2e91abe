/**
 * The argument shapes of every metadata API method, checked at the gRPC edge with zod before a
 * call is dispatched (issue #10: `createVolume` with no arguments created a 1 GiB volume; a query
 * with arguments of the wrong type could reach the state machine). Only the shape is checked —
 * types, the required arguments, sizes; the state machine still validates every value. Optional
 * trailing arguments may be null (JSON has no undefined: the client sends `mode ?? null`).
 */
import { z } from 'zod';
import { ErrorCode, GalleonError } from '../../proto/errors.js';
import { maxWrappedKeyChars } from '../state/logic/volume-keys.js';

/** Ids, names, addresses: the longest is a 63-character name; leave room. */
export const maxArgStringChars = 512;
/** No method takes more than 6 arguments. */
export const maxArgs = 8;
/** A heartbeat reports one entry per PG the node holds. */
export const maxHeartbeatPgs = 1_000_000;

const str = z.string().min(1).max(maxArgStringChars);
const int = z.number().int().nonnegative();
const obj = z.record(z.string().max(maxArgStringChars), z.unknown());
const opt = <T extends z.ZodType>(t: T) => t.nullable().optional();
/** The tenant a command acts for (auth-guard.ts adds it; the state machine checks it in the apply). */
const scope = opt(z.object({ tenant: str }).strict());
/** The node a lease call acts for (grpc-server.ts adds it from the node certificate; node-claims.ts). */
const holderScope = opt(z.object({ holder: str }).strict());

const shapes: Record<string, z.ZodType> = {
  createStorageClass: z.tuple([obj]),
  deleteStorageClass: z.tuple([str]),
  createVolume: z.tuple([obj]),
  updateVolumeLabels: z.tuple([str, obj, scope]),
  expandVolume: z.tuple([str, z.union([int, str]), scope]),
  deleteVolume: z.tuple([str, scope]),
  getVolumeKey: z.tuple([str]),
  allocateKeyWriter: z.tuple([str]),
  rewrapVolumeKey: z.tuple([str, z.string().min(1).max(maxWrappedKeyChars), obj]),
  createSnapshot: z.tuple([str, opt(str), scope]),
  deleteSnapshot: z.tuple([str, scope]),
  cloneVolume: z.tuple([str, str, opt(obj), scope]),
  restoreVolume: z.tuple([str, str, scope]),
  finishVolumePrune: z.tuple([str, int]),
  listSnapshots: z.tuple([opt(str)]),
  getSnapshot: z.tuple([str]),
  getSnapshotTree: z.tuple([str, str.nullable(), int]),
  registerDataNode: z.tuple([obj]),
  heartbeatDataNode: z.tuple([str, int, z.array(z.unknown()).max(maxHeartbeatPgs)]),
  acquireLease: z.tuple([str, str, str, int, opt(z.enum(['rw', 'ro'])), opt(int)]),
  renewLease: z.tuple([str, int, holderScope]),
  releaseLease: z.tuple([str, holderScope]),
  claimPgPrimary: z.tuple([str, int, str, int]),
  markPgReplicaOutOfSync: z.tuple([str, int, str, int, str, int]),
  addBackupTarget: z.tuple([obj]),
  removeBackupTarget: z.tuple([str]),
  getBackupTarget: z.tuple([str]),
  listBackupTargets: z.tuple([]),
  createBackupPolicy: z.tuple([obj]),
  deleteBackupPolicy: z.tuple([str]),
  listBackupPolicies: z.tuple([]),
  claimBackupRun: z.tuple([str, int, int, str]),
  finishBackupRun: z.tuple([str, int, str.nullable(), z.string().max(maxArgStringChars).nullable(), str]),
  getStorageClass: z.tuple([str]),
  getVolume: z.tuple([str]),
  getPlacement: z.tuple([str]),
  listStorageClasses: z.tuple([]),
  listVolumes: z.tuple([]),
  listDataNodes: z.tuple([]),
  clusterStatus: z.tuple([]),
  addMember: z.tuple([str, str, opt(str)]),
  promoteMember: z.tuple([str]),
  removeMember: z.tuple([str]),
  transferLeadership: z.tuple([str]),
  createUser: z.tuple([obj]),
  deleteUser: z.tuple([str]),
  listUsers: z.tuple([]),
  createToken: z.tuple([obj]),
  revokeToken: z.tuple([str]),
  listTokens: z.tuple([opt(str)]),
  setVolumePolicy: z.tuple([str, z.array(z.unknown()).max(64), scope]),
  authLookup: z.tuple([str]),
};

/** Throws INVALID_ARGUMENT naming the first argument of the wrong shape; unknown methods pass (dispatch refuses them). */
export function checkCallArgs(method: string, args: unknown[]): void {
  const shape = Object.hasOwn(shapes, method) ? shapes[method] : undefined;
  if (shape === undefined) return;
  if (args.length > maxArgs) throw new GalleonError(ErrorCode.INVALID_ARGUMENT, `${method} takes at most ${maxArgs} arguments`, { hint: 'use MetadataClient' });
  const r = shape.safeParse(args);
  if (r.success) return;
  const issue = r.error.issues[0];
  const at = issue?.path[0];
  throw new GalleonError(ErrorCode.INVALID_ARGUMENT,
    `${method}: ${typeof at === 'number' ? `argument ${at + 1}` : 'arguments'} ${issue?.message ?? 'have the wrong shape'}`.replace(/\s+/g, ' '),
    { hint: 'check the method\'s arguments (proto/metadata-types.ts), or use MetadataClient' });
}
