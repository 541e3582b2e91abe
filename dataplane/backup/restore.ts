/**
 * Restore: a new volume from a complete manifest. Every block object is checked against the
 * manifest (SHA-256, CRC32C, length) before it is written; one that fails stops the restore
 * naming the block. The namespace is recreated first with new inode numbers (a map from the
 * backup's inodes), so file blocks land under the new inodes; sizes, modes, owners, times and
 * extended attributes follow the data, directories' times last.
 *
 * A restore with an id (the service's) marks the new volume with `restoringLabel` from its creation
 * to its last step, and keeps `restoring/<id>.json` on the target meanwhile: a daemon killed
 * mid-way deletes the marked, partly written volume when it starts again and restores it again
 * (service.ts `resumeRestores`).
 *
 * A backup of an encrypted volume holds the sealed bodies and the source's data keys wrapped by
 * the cluster's key provider: each object is checked as stored, then opened with the identity it
 * was sealed under (the sealing volume's key, its id, the block's ORIGINAL inode and number), and
 * written through the block client, which seals it again with the new volume's own key under a
 * writer id of its own (never a nonce of the source's writers).
 */
import { crc32c } from '@node-rs/crc32';
import { ErrorCode, GalleonError, invariant, isGalleonError } from '../../proto/errors.js';
import type { FsCaller, MetadataApi, Volume, VolumeSpec } from '../../proto/metadata-types.js';
import type { BlockClient } from '../client/block-client.js';
import { VolumeCipher } from '../client/keyring.js';
import type { ObjectStore } from './object-store.js';
import { readManifest } from './catalog.js';
import { sha256Of, type JobHooks } from './engine.js';
import { blockObjectKey, parseBlockKey, restoringLabel, type Manifest, type NamespaceDump, type NamespaceEntry, type WrappedKey } from './logic/manifest.js';

/** Blocks fetched and written at once during a restore. */
export const restoreBatchBlocks = 16;
const root: FsCaller = { uid: 0, gid: 0 };

export interface RestoreResult {
  backup: string;
  volume: Volume;
  blocks: number;
  bytes: number;
  files: number;
}

export interface RestoreIo {
  /** The daemon's step that gives the new volume a data key when its class encrypts. */
  prepareVolume?: (spec: VolumeSpec) => Promise<VolumeSpec>;
  /** Opens a data key wrapped by the cluster's key provider (backups of encrypted volumes). */
  unwrapKey?: (w: WrappedKey, what: string) => Promise<Buffer>;
  /** The restore's id: the new volume carries `restoringLabel` = it until the last step is done. */
  restoreId?: string;
  /** A backup made on another cluster: that cluster's key file, which `unwrapKey` uses (named in errors). */
  sourceKeyFile?: string;
  /** The new volume's tenant (the caller's). */
  tenant?: string;
}

/** Openers of the sealed bodies of an encrypted backup, by sealing volume id (empty for a plain one). */
async function openersOf(m: Manifest, io: RestoreIo): Promise<Map<string, VolumeCipher>> {
  const out = new Map<string, VolumeCipher>();
  const keys = Object.entries(m.encryption?.keys ?? {});
  if (keys.length === 0) return out;
  const unwrap = io.unwrapKey;
  if (unwrap === undefined) {
    throw new GalleonError(ErrorCode.KEY_UNAVAILABLE, `backup ${m.id} holds sealed blocks of an encrypted volume, and this daemon has no key provider`, { hint: 'restore it on a daemon started with the cluster key file (--key-file) or the KMS that wrapped its keys' });
  }
  const refuse = (): Promise<number> => Promise.reject(new GalleonError(ErrorCode.INTERNAL, 'a backup opener never seals'));
  for (const [volumeId, w] of keys) {
    const key = await unwrap(w, `volume ${m.volume.name} (backup ${m.id})`).catch((err: unknown) => { throw keyRefused(m, w, io.sourceKeyFile, err); });
    out.set(volumeId, new VolumeCipher(volumeId, key, refuse));
  }
  return out;
}

/**
 * A data key the restore cannot open, said for the operator: without `--source-key-file` the
 * likely cause is a backup made on another cluster (its key provider wrapped the key); with it,
 * the file given is not that cluster's. Other errors pass as they are.
 */
function keyRefused(m: Manifest, w: WrappedKey, sourceKeyFile: string | undefined, err: unknown): unknown {
  if (!isGalleonError(err, ErrorCode.KEY_UNAVAILABLE)) return err;
  const usage = `galleon backup restore ${m.id} --name NEW --source-key-file FILE`;
  if (sourceKeyFile === undefined) {
    return new GalleonError(ErrorCode.KEY_UNAVAILABLE, `backup ${m.id}'s data key is wrapped by another cluster's key provider (${w.provider} ${w.keyId}), which this cluster's cannot open (${err.message})`,
      { hint: `pass the key file of the cluster that made the backup (its cluster.key, on the node that runs the restore): ${usage}; or configure the KMS key that wrapped it`, cause: err });
  }
  return new GalleonError(ErrorCode.KEY_UNAVAILABLE, `backup ${m.id}'s data key (wrapped by ${w.provider} ${w.keyId}) does not open with --source-key-file ${sourceKeyFile} (${err.message})`,
    { hint: 'pass the key file of the cluster that made the backup, with its rotated versions (the current <dir>/cluster.key of that cluster)', cause: err });
}

export async function restoreBackup(api: MetadataApi, client: BlockClient, store: ObjectStore, id: string, name: string, h: JobHooks, io: RestoreIo = {}): Promise<RestoreResult> {
  const m = await readManifest(store, id);
  // Keys first: a backup whose keys do not open here fails before any volume is made.
  const openers = await openersOf(m, io);
  const prepareVolume = io.prepareVolume ?? ((spec: VolumeSpec) => Promise.resolve(spec));
  const startedAtMs = h.nowMs();
  let p = { phase: 'volume', blocksDone: 0, blocksTotal: Object.keys(m.blocks).length, bytesDone: 0, startedAtMs, updatedAtMs: startedAtMs };
  const report = (c: Partial<typeof p>): void => { p = { ...p, ...c, updatedAtMs: h.nowMs() }; h.onProgress(p); };
  report({});
  // Marked from its creation (one command) until done: a partly written volume never looks complete.
  const marker = io.restoreId === undefined ? {} : { labels: { [restoringLabel]: io.restoreId } };
  const vol = await api.createVolume(await prepareVolume({
    name, size: m.volume.sizeBytes, blockSize: m.volume.blockSizeBytes, storageClass: m.volume.storageClass,
    replicas: m.volume.replicas, accessMode: m.volume.accessMode as Volume['accessMode'], type: m.volume.type as Volume['type'], ...marker,
    ...(io.tenant === undefined ? {} : { tenant: io.tenant }),
  }));
  report({ phase: 'namespace' });
  const inodes = await restoreTree(api, vol.id, m.namespace);
  report({ phase: 'blocks' });
  const keys = Object.keys(m.blocks).sort();
  for (let i = 0; i < keys.length; i += restoreBatchBlocks) {
    h.signal.throwIfAborted();
    const batch = keys.slice(i, i + restoreBatchBlocks);
    const bytes = await Promise.all(batch.map((k) => restoreBlock(client, store, m, k, vol, inodes, openers)));
    report({ blocksDone: p.blocksDone + batch.length, bytesDone: p.bytesDone + bytes.reduce((a, b) => a + b, 0) });
  }
  report({ phase: 'attributes' });
  const files = await restoreAttributes(api, vol.id, m.namespace, inodes);
  if (io.restoreId !== undefined) await api.updateVolumeLabels(vol.id, { [restoringLabel]: null });
  report({ phase: 'done' });
  return { backup: id, volume: await api.getVolume(vol.id), blocks: keys.length, bytes: p.bytesDone, files };
}

async function restoreBlock(client: BlockClient, store: ObjectStore, m: Manifest, key: string, vol: Volume, inodes: Map<number, number>, openers: Map<string, VolumeCipher>): Promise<number> {
  const e = m.blocks[key];
  if (e === undefined) return 0;
  const data = await store.get(blockObjectKey(e.sha256));
  if (data === null) {
    throw new GalleonError(ErrorCode.BLOCK_NOT_FOUND, `backup ${m.id}: block ${key} (object ${e.sha256.slice(0, 12)}…) is missing from ${store.where}`,
      { hint: `run galleon backup verify ${m.id} to list every damaged block; restore from another backup`, details: { block: key } });
  }
  if (data.length !== e.bytes || sha256Of(data) !== e.sha256 || crc32c(data) !== e.crc32c) {
    throw new GalleonError(ErrorCode.CHECKSUM_MISMATCH, `backup ${m.id}: block ${key} does not match its manifest (object ${e.sha256.slice(0, 12)}… is corrupt)`,
      { hint: `run galleon backup verify ${m.id} to list every damaged block; restore from another backup`, details: { block: key } });
  }
  const { inode, blockNo } = parseBlockKey(key);
  const target = inode === 0 ? 0 : inodes.get(inode);
  if (target === undefined) return 0; // a file the tree no longer names: nothing to restore it into
  const plain = await openSealed(m, key, e.sealedBy, data, openers);
  await client.writeBlock(vol.id, target, blockNo, plain, vol.writeConcern);
  return plain.length;
}

/** A stored body opened with the identity it was sealed under (a plain backup's body as it is). */
async function openSealed(m: Manifest, key: string, sealedBy: string | undefined, data: Buffer, openers: Map<string, VolumeCipher>): Promise<Buffer> {
  if (sealedBy === undefined) return data;
  const opener = openers.get(sealedBy);
  // checkManifest refuses a manifest whose entries name no key: a missing opener is a broken invariant.
  invariant(opener !== undefined, `backup ${m.id}: block ${key} sealed by ${sealedBy}, which has no key in the manifest`);
  const { inode, blockNo } = parseBlockKey(key);
  try {
    return await opener.open({ volumeId: sealedBy, inode, blockNo }, data);
  } catch (err) {
    throw new GalleonError(ErrorCode.CHECKSUM_MISMATCH, `backup ${m.id}: block ${key} failed authentication with the backup's data key`,
      { hint: `run galleon backup verify ${m.id}; restore from another backup`, details: { block: key }, cause: err });
  }
}

/** Creates every name; returns backup inode -> new inode. */
async function restoreTree(api: MetadataApi, volumeId: string, ns: NamespaceDump | null): Promise<Map<number, number>> {
  const map = new Map<number, number>([[1, 1]]);
  if (ns === null) return map;
  const fresh = new Set(ns.entries.map((e) => e.ino)).size;
  let next = 0;
  let end = 0;
  const take = async (): Promise<number> => {
    if (next >= end) {
      const r = await api.fsAllocateInodes(volumeId, Math.min(65_536, Math.max(1, fresh)));
      next = r.start;
      end = r.end;
    }
    return next++;
  };
  for (const e of ns.entries) {
    const parent = map.get(e.parent);
    if (parent === undefined) throw new GalleonError(ErrorCode.CHECKSUM_MISMATCH, `namespace of the backup names ${e.name} under unknown directory ${e.parent}`, { hint: 'the manifest is damaged; use another backup' });
    const linked = map.get(e.ino);
    if (linked !== undefined) {
      await api.fsLink(volumeId, root, linked, parent, e.name);
      continue;
    }
    const ino = await take();
    await createEntry(api, volumeId, parent, ino, e);
    map.set(e.ino, ino);
  }
  return map;
}

async function createEntry(api: MetadataApi, volumeId: string, parent: number, ino: number, e: NamespaceEntry): Promise<void> {
  switch (e.type) {
    case 'dir': await api.fsMkdir(volumeId, root, parent, e.name, ino, e.mode, 0); return;
    case 'file': await api.fsCreate(volumeId, root, parent, e.name, ino, e.mode, { umask: 0 }); return;
    case 'symlink': await api.fsSymlink(volumeId, root, parent, e.name, ino, e.target ?? ''); return;
    default: await api.fsMknod(volumeId, root, parent, e.name, ino, e.type, e.mode, e.rdev, 0);
  }
}

/** Sizes, modes, owners, xattrs, then times (directories last, deepest first: creating names touches their parents). */
async function restoreAttributes(api: MetadataApi, volumeId: string, ns: NamespaceDump | null, inodes: Map<number, number>): Promise<number> {
  if (ns === null) return 0;
  const done = new Set<number>();
  let files = 0;
  for (const e of ns.entries) {
    const ino = inodes.get(e.ino);
    if (ino === undefined || done.has(ino)) continue;
    done.add(ino);
    if (e.type === 'file') {
      files += 1;
      if (e.size > 0) await api.fsCommitWrite(volumeId, ino, e.size);
    }
    for (const [n, v] of Object.entries(e.xattrs ?? {})) await api.fsSetxattr(volumeId, root, ino, n, v, 0);
    if (e.type !== 'symlink') await api.fsSetattr(volumeId, root, ino, { mode: e.mode, uid: e.uid, gid: e.gid });
    else await api.fsSetattr(volumeId, root, ino, { uid: e.uid, gid: e.gid });
  }
  const times = [...ns.entries].reverse();
  for (const e of times) {
    const ino = inodes.get(e.ino);
    if (ino !== undefined) await api.fsSetattr(volumeId, root, ino, { atime: e.atimeNs, mtime: e.mtimeNs });
  }
  await api.fsSetattr(volumeId, root, 1, { mode: ns.root.mode, uid: ns.root.uid, gid: ns.root.gid, atime: ns.root.atimeNs, mtime: ns.root.mtimeNs });
  return files;
}
