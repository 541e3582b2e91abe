/**
 * No volume of an encrypted class without its wrapped data key (issue #12). The daemons wrap one
 * before they create or clone (cli/daemon/keys.ts), but the metadata API takes calls from anyone
 * its door lets in: a program with a token, the node credential, every caller of a cluster without
 * tokens. Such a volume would be written in clear by the data plane. So the leader checks every
 * `createVolume` and `cloneVolume` before it proposes it:
 *  - the spec carries a `dataKey`, or the class does not encrypt: as asked;
 *  - else the member wraps a fresh data key itself when it has a key provider (`DataKeyWrapper`:
 *    a daemon's member always has one: the cluster key file, or the KMS);
 *  - else the call is refused with one line (a bare member, metadata/service/main.ts, has none),
 *    unless the member was started with `allowUnkeyedEncryption` — test harnesses that are not
 *    about encryption and whose block clients hold no keys, as TLS-less harnesses are not about TLS.
 * The checks read the leader's own applied state (auth-guard.ts `lookupsOver` over its queries: a
 * GuardLookups is a KeyGateLookups); the apply checks the key's shape again.
 */
import { ErrorCode, GalleonError } from '../../proto/errors.js';
import type { Snapshot, StorageClass, Volume, WrappedDataKey } from '../../proto/metadata-types.js';
import { defaultStorageClass } from '../state/logic/storage-classes.js';

/** Wraps a fresh random data key with the cluster's key provider (the plaintext key never leaves it). */
export interface DataKeyWrapper {
  wrapNewKey(): Promise<WrappedDataKey>;
}

export interface KeyGateLookups {
  storageClass(name: string): Promise<StorageClass | null>;
  snapshot(ref: string): Promise<Snapshot | null>;
  volume(id: string): Promise<Volume | null>;
}

export interface KeyGatePolicy {
  wrapper: DataKeyWrapper | null;
  allowUnkeyed: boolean;
}

const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** The call's arguments with a data key where one is needed; throws INVALID_ARGUMENT when none can be had. */
export async function keyedArgs(method: string, args: unknown[], look: KeyGateLookups, policy: KeyGatePolicy): Promise<unknown[]> {
  if (method === 'createVolume') {
    const spec = args[0];
    if (!isRecord(spec) || spec.dataKey !== undefined) return args;
    const sc = await look.storageClass(typeof spec.storageClass === 'string' ? spec.storageClass : defaultStorageClass);
    if (sc === null || !sc.encryption) return args;
    const key = await keyFor(policy, `storage class ${sc.name} encrypts, and this volume spec has no wrapped data key (dataKey)`);
    return key === null ? args : [{ ...spec, dataKey: key }, ...args.slice(1)];
  }
  if (method === 'cloneVolume') {
    if ((args[2] !== undefined && args[2] !== null) || typeof args[0] !== 'string') return args;
    const snap = await look.snapshot(args[0]);
    const source = snap === null ? null : await look.volume(snap.volumeId);
    if (snap === null || source?.encrypted !== true) return args;
    const key = await keyFor(policy, `snapshot ${snap.name} is of encrypted volume ${snap.volumeName}, and this clone has no wrapped data key (dataKey)`);
    return key === null ? args : [args[0], args[1], key, ...args.slice(3)];
  }
  return args;
}

async function keyFor(policy: KeyGatePolicy, what: string): Promise<WrappedDataKey | null> {
  if (policy.wrapper !== null) return policy.wrapper.wrapNewKey();
  if (policy.allowUnkeyed) return null;
  throw new GalleonError(ErrorCode.INVALID_ARGUMENT, `${what}, and this metadata member has no key provider to wrap one`, {
    hint: 'create it through a daemon (galleon volume create / volume clone, or the metadata API of a daemon\'s member, which wraps a key itself); or pick a class without encryption',
  });
}
