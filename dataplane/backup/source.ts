/**
 * What a backup reads: a small interface, so the engine does not care where the blocks come from
 * (an in-memory source in the engine's tests; `SnapshotSource` in the daemon).
 *
 * `SnapshotSource` reads the blocks of one snapshot (its cut): every write acknowledged before the
 * snapshot was taken is in it, none that started after (the fence round of `takeSnapshot`). It
 * asks the data nodes which addresses hold data (`listCandidatesAt`), so a sparse volume costs
 * its written blocks, not its size. An encrypted volume's blocks are read as the nodes hold
 * them (sealed, never opened here) and named with the volume whose key and address sealed them.
 *
 * The file tree is read at the same snapshot (`readSnapshotNamespace`: the metadata service's
 * `getSnapshotTree`, paged), so names, sizes and blocks are one cut.
 */
import { ErrorCode, GalleonError, invariant } from '../../proto/errors.js';
import type { FsAttr, MetadataApi, Snapshot, SnapshotTreeEntry, SnapshotTreeInode, Volume } from '../../proto/metadata-types.js';
import type { BlockClient } from '../client/block-client.js';
import { listCandidatesAt, readBlockAt, viewOf } from '../client/snapshot-reads.js';
import type { VolumeView } from '../logic/snapshot-versions.js';
import type { ManifestEncryption, NamespaceDump, NamespaceEntry, VolumeRecord } from './logic/manifest.js';

export interface SourceBlock {
  inode: number;
  blockNo: number;
  bytes: Buffer;
  /** Encrypted volumes: `bytes` is a sealed body, sealed by this volume (its key, its id in the AD). */
  sealedBy?: string;
}

export interface BackupSource {
  readonly volume: VolumeRecord;
  readonly blockSizeBytes: number;
  /** The file tree (null for a volume whose tree is the empty root). */
  namespace(): Promise<NamespaceDump | null>;
  /** How many block addresses blocks() will read (for progress: done/total). */
  probeCount(ns: NamespaceDump | null): number | Promise<number>;
  /** Written blocks only: the raw device (inode 0) and every regular file's blocks. */
  blocks(ns: NamespaceDump | null, onProbe: (n: number) => void, signal: AbortSignal): AsyncIterable<SourceBlock>;
  /** After blocks(): the wrapped data keys of the volumes that sealed what it yielded; absent or null: plaintext. */
  encryption?(): Promise<ManifestEncryption | null>;
}

/** Reads in flight while reading a snapshot's blocks. */
export const probeBatchBlocks = 32;
/** A dump larger than this many names is refused (it travels in one manifest). */
export const maxNamespaceEntries = 1_000_000;

export function volumeRecord(v: Volume): VolumeRecord {
  return {
    id: v.id, name: v.name, sizeBytes: v.sizeBytes, blockSizeBytes: v.blockSizeBytes, storageClass: v.storageClass,
    replicas: v.replicas, accessMode: v.accessMode, type: v.type, ...(v.tenant === undefined ? {} : { tenant: v.tenant }),
  };
}

export type SnapshotSourceApi = Pick<MetadataApi, 'getVolume' | 'getVolumeKey' | 'getSnapshotTree'>;

export class SnapshotSource implements BackupSource {
  readonly volume: VolumeRecord;
  readonly blockSizeBytes: number;
  private view: VolumeView | null = null;
  private addresses: { inode: number; blockNo: number }[] | null = null;
  /** Volumes whose sealed bodies blocks() yielded. */
  private readonly sealers = new Set<string>();

  constructor(private readonly api: SnapshotSourceApi, private readonly client: BlockClient, private readonly vol: Volume, readonly snapshot: Snapshot) {
    if (snapshot.volumeId !== vol.id) throw new GalleonError(ErrorCode.INVALID_ARGUMENT, `snapshot ${snapshot.name} is not of volume ${vol.name}`, { hint: `list its snapshots with: galleon snapshot list ${vol.name}` });
    this.volume = volumeRecord(vol);
    this.blockSizeBytes = vol.blockSizeBytes;
  }

  namespace(): Promise<NamespaceDump | null> {
    return readSnapshotNamespace(this.api, this.snapshot.id);
  }

  private async candidates(ns: NamespaceDump | null): Promise<{ inode: number; blockNo: number }[]> {
    if (this.addresses !== null) return this.addresses;
    this.view ??= await viewOf(this.vol, this.snapshot, (id) => this.api.getVolume(id));
    const extents = new Map(fileExtents(ns, this.blockSizeBytes, this.volume.sizeBytes).map((f) => [f.inode, f.blocks]));
    // Only the raw device and the files the tree names, within their size: what a restore can place.
    this.addresses = (await listCandidatesAt(this.client, this.view)).filter((a) => a.blockNo < (extents.get(a.inode) ?? 0));
    return this.addresses;
  }

  async probeCount(ns: NamespaceDump | null): Promise<number> {
    return (await this.candidates(ns)).length;
  }

  async *blocks(ns: NamespaceDump | null, onProbe: (n: number) => void, signal: AbortSignal): AsyncIterable<SourceBlock> {
    const all = await this.candidates(ns);
    const view = this.view;
    if (view === null) return;
    const sealed = this.vol.encrypted === true;
    for (let start = 0; start < all.length; start += probeBatchBlocks) {
      signal.throwIfAborted();
      const batch = all.slice(start, start + probeBatchBlocks);
      const got = await Promise.all(batch.map((a) => readBlockAt(this.client, view, a.inode, a.blockNo, { sealed })));
      onProbe(batch.length);
      for (const [i, r] of got.entries()) {
        const a = batch[i];
        if (r === null || a === undefined) continue;
        if (sealed) this.sealers.add(r.volumeId);
        yield { inode: a.inode, blockNo: a.blockNo, bytes: r.data, ...(sealed ? { sealedBy: r.volumeId } : {}) };
      }
    }
  }

  /** The data keys as the metadata service keeps them: wrapped by the cluster's key provider, never in clear. */
  async encryption(): Promise<ManifestEncryption | null> {
    if (this.vol.encrypted !== true) return null;
    const keys: ManifestEncryption['keys'] = {};
    for (const id of [...this.sealers, this.vol.id].sort()) {
      const k = await this.api.getVolumeKey(id);
      keys[id] = { provider: k.provider, keyId: k.keyId, wrapped: k.wrapped };
    }
    return { keys };
  }
}

/** Snapshot tree records asked for per page (the service's largest page). */
export const snapshotTreePageRecords = 1024;

/**
 * The file tree at a snapshot, breadth first from the root, names in byte order. A record may
 * come twice across pages, always with the same value: inodes are keyed by number, entries by
 * (parent, name).
 */
export async function readSnapshotNamespace(api: SnapshotSourceApi, snapshotId: string): Promise<NamespaceDump | null> {
  const inodes = new Map<number, SnapshotTreeInode>();
  const children = new Map<number, Map<string, SnapshotTreeEntry>>();
  let cursor: string | null = null;
  do {
    const page = await api.getSnapshotTree(snapshotId, cursor, snapshotTreePageRecords);
    for (const i of page.inodes) inodes.set(i.attr.ino, i);
    for (const e of page.entries) {
      const names = children.get(e.parent) ?? new Map<string, SnapshotTreeEntry>();
      names.set(e.name, e);
      children.set(e.parent, names);
    }
    cursor = page.cursor;
  } while (cursor !== null);
  const root = inodes.get(1);
  if (root === undefined) return null;
  const entries: NamespaceEntry[] = [];
  for (let queue = [1], dir = queue.shift(); dir !== undefined; dir = queue.shift()) {
    for (const e of [...(children.get(dir)?.values() ?? [])].sort((a, b) => Buffer.compare(Buffer.from(a.name), Buffer.from(b.name)))) {
      const inode = inodes.get(e.ino);
      invariant(inode !== undefined, `snapshot ${snapshotId}: entry ${e.parent}/${e.name} names inode ${e.ino}, absent from its tree`);
      entries.push(dumpEntry(e.parent, e.name, inode.attr, inode.target, inode.xattrs));
      if (e.type === 'dir') queue.push(e.ino);
    }
    if (entries.length > maxNamespaceEntries) throw tooManyNames(snapshotId);
  }
  if (entries.length === 0) return null;
  const a = root.attr;
  return { root: { mode: a.mode, uid: a.uid, gid: a.gid, atimeNs: a.atimeNs, mtimeNs: a.mtimeNs }, entries };
}

function tooManyNames(of: string): GalleonError {
  return new GalleonError(ErrorCode.FAILED_PRECONDITION, `namespace of ${of} has more than ${maxNamespaceEntries} names`, { hint: 'back up the raw blocks of such a volume with a snapshot clone, or split it' });
}

function dumpEntry(parent: number, name: string, a: FsAttr, target?: string, xattrs?: Record<string, string>): NamespaceEntry {
  return {
    parent, name, ino: a.ino, type: a.type, mode: a.mode, uid: a.uid, gid: a.gid, size: a.size, rdev: a.rdev, atimeNs: a.atimeNs, mtimeNs: a.mtimeNs,
    ...(target === undefined ? {} : { target }),
    ...(xattrs === undefined || Object.keys(xattrs).length === 0 ? {} : { xattrs }),
  };
}

/** The raw device (inode 0, the whole volume) and each regular file once (hard links share an inode). */
export function fileExtents(ns: NamespaceDump | null, blockSizeBytes: number, volumeSizeBytes: number): { inode: number; blocks: number }[] {
  const out = [{ inode: 0, blocks: Math.ceil(volumeSizeBytes / blockSizeBytes) }];
  const seen = new Set<number>();
  for (const e of ns?.entries ?? []) {
    if (e.type !== 'file' || seen.has(e.ino)) continue;
    seen.add(e.ino);
    out.push({ inode: e.ino, blocks: Math.ceil(e.size / blockSizeBytes) });
  }
  return out;
}
