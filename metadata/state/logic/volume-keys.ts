/**
 * Volume data keys in the state machine: only their wrapped form (a key provider wraps them in
 * the client; the state machine never sees a data key or a KEK), the count of writer ids handed
 * out for the key, and the compare-and-set re-wrap of a rotation. Deleting a volume deletes its
 * record (commands.ts, deleteVolume).
 *
 * Writer ids only grow (`allocateKeyWriter`): together with each writer's own counter they make
 * every block nonce unique for the key (dataplane/client/README.md, "Encryption").
 */
import { ErrorCode, GalleonError, invariant } from '../../../proto/errors.js';
import type { KeyProviderName, StorageClass, Volume, VolumeKeyRecord, WrappedDataKey } from '../../../proto/metadata-types.js';
import type { CommandContext } from './commands.js';
import { requireVolume } from './lookup.js';
import { Table, type StateReader, type Tx } from './tx.js';
import { checkKeys, invalidArgument, isRecord } from './validate.js';

export const keyProviders: readonly KeyProviderName[] = ['internal', 'vault'];
/** A wrapped key is well under 1 KiB (Vault's ciphertext of 32 bytes: ~90 chars). */
export const maxWrappedKeyChars = 4096;
export const maxKeyIdChars = 256;
/** Writer ids are 8 bytes in a sealed block; kept to JSON-exact integers. */
export const maxKeyWriters = Number.MAX_SAFE_INTEGER;

/** Checks a wrapped data key of a volume spec against the volume's class. */
export function checkDataKey(sc: StorageClass, raw: unknown): WrappedDataKey | null {
  if (raw === undefined) return null;
  if (!sc.encryption) {
    throw invalidArgument(`storage class ${sc.name} does not encrypt, but a data key was given`, 'drop the data key, or use a class with encryption such as encrypted-storage');
  }
  if (!isRecord(raw)) throw invalidArgument('dataKey must be {provider, keyId, wrapped}', 'let the daemon wrap the data key (galleon volume create)');
  checkKeys('dataKey', raw, ['provider', 'keyId', 'wrapped']);
  const { provider, keyId, wrapped } = raw;
  if (typeof provider !== 'string' || !(keyProviders as readonly string[]).includes(provider)) {
    throw invalidArgument(`dataKey.provider must be one of ${keyProviders.join(', ')}`, 'let the daemon wrap the data key (galleon volume create)');
  }
  if (typeof keyId !== 'string' || keyId.length === 0 || keyId.length > maxKeyIdChars) throw invalidArgument(`dataKey.keyId must be 1 to ${maxKeyIdChars} characters`, 'let the daemon wrap the data key');
  if (typeof wrapped !== 'string' || wrapped.length === 0 || wrapped.length > maxWrappedKeyChars) throw invalidArgument(`dataKey.wrapped must be 1 to ${maxWrappedKeyChars} characters`, 'let the daemon wrap the data key');
  return { provider: provider as KeyProviderName, keyId, wrapped };
}

export function putVolumeKey(tx: Tx, ctx: CommandContext, volumeId: string, k: WrappedDataKey): void {
  const rec: VolumeKeyRecord = { volumeId, provider: k.provider, keyId: k.keyId, wrapped: k.wrapped, writers: 0, wrappedAtMs: ctx.stampMs };
  tx.put(Table.VolumeKey, volumeId, rec);
}

export function deleteVolumeKey(tx: Tx, vol: Volume): void {
  if (tx.get(Table.VolumeKey, vol.id) !== undefined) tx.del(Table.VolumeKey, vol.id);
}

function requireKey(r: StateReader, ref: unknown): { vol: Volume; rec: VolumeKeyRecord } {
  const vol = requireVolume(r, ref);
  const rec = r.get<VolumeKeyRecord>(Table.VolumeKey, vol.id);
  if (rec === undefined) {
    throw new GalleonError(ErrorCode.KEY_UNAVAILABLE, `volume ${vol.name} has no data key (it is not encrypted)`, { hint: 'only volumes of a class with encryption have one' });
  }
  invariant(vol.encrypted === true, `volume ${vol.id} has a key record but is not marked encrypted`);
  return { vol, rec };
}

export const volumeKeyQueries = {
  getVolumeKey: (r: StateReader, [ref]: unknown[]): VolumeKeyRecord => requireKey(r, ref).rec,
};

export const volumeKeyHandlers = {
  allocateKeyWriter(tx: Tx, _ctx: CommandContext, [ref]: unknown[]): number {
    const { rec } = requireKey(tx, ref);
    if (rec.writers >= maxKeyWriters) throw new GalleonError(ErrorCode.FAILED_PRECONDITION, `volume ${rec.volumeId} has used every writer id of its key`, { hint: 'copy the data to a new volume' });
    const next = { ...rec, writers: rec.writers + 1 };
    tx.put(Table.VolumeKey, rec.volumeId, next);
    return next.writers;
  },

  rewrapVolumeKey(tx: Tx, ctx: CommandContext, [ref, expected, nextKey]: unknown[]): VolumeKeyRecord {
    const { vol, rec } = requireKey(tx, ref);
    const sc = tx.get<StorageClass>(Table.StorageClass, vol.storageClass);
    const k = checkDataKey(sc ?? { name: vol.storageClass, encryption: true } as StorageClass, nextKey);
    invariant(k !== null, 'rewrap without a key');
    if (rec.wrapped !== expected) {
      throw new GalleonError(ErrorCode.FAILED_PRECONDITION, `volume ${vol.name}'s data key was re-wrapped meanwhile`, { hint: 'run galleon key rotate again' });
    }
    // Only the wrap changes: the writer count (nonce uniqueness) carries over.
    const next: VolumeKeyRecord = { ...rec, provider: k.provider, keyId: k.keyId, wrapped: k.wrapped, wrappedAtMs: ctx.stampMs };
    tx.put(Table.VolumeKey, vol.id, next);
    return next;
  },
};
