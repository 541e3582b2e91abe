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
 * The file tree is still read LIVE (`readLiveNamespace`): namespace-at-snapshot reads are built
 * elsewhere (branch s-snapns); the one line marked SEAM in `SnapshotSource.namespace` switches.
 */
import { ErrorCode, GalleonError } from '../../proto/errors.js';
import type { FsAttr, MetadataApi, Snapshot, Volume } from '../../proto/metadata-types.js';
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
/** Directory pages are read this many names at a time. */
export const readdirPageEntries = 1024;
/** A dump larger than this many names is refused (it travels in one manifest). */
export const maxNamespaceEntries = 1_000_000;

export function volumeRecord(v: Volume): VolumeRecord {
  return {
    id: v.id, name: v.name, sizeBytes: v.sizeBytes, blockSizeBytes: v.blockSizeBytes, storageClass: v.storageClass,
    replicas: v.replicas, accessMode: v.accessMode, type: v.type,
  };
}

export type SnapshotSourceApi = Pick<MetadataApi, 'getVolume' | 'getVolumeKey' | 'fsGetattr' | 'fsReaddir' | 'fsReadlink' | 'fsListxattr' | 'fsGetxattr'>;

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
    return readLiveNamespace(this.api, this.volume.id); // SEAM(s-snapns): read the tree at this.snapshot instead
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

/** The volume's file tree as it is now (names, attributes, symlink targets, xattrs), breadth first. */
export async function readLiveNamespace(api: SnapshotSourceApi, volumeId: string): Promise<NamespaceDump | null> {
  const root = await api.fsGetattr(volumeId, 1);
  const entries: NamespaceEntry[] = [];
  const queue = [1];
  for (let dir = queue.shift(); dir !== undefined; dir = queue.shift()) {
    let cursor: string | null = null;
    do {
      const page = await api.fsReaddir(volumeId, dir, cursor, readdirPageEntries);
      for (const e of page.entries) {
        entries.push(await entryOf(api, volumeId, dir, e.name, e.attr));
        if (e.attr.type === 'dir') queue.push(e.attr.ino);
      }
      if (entries.length > maxNamespaceEntries) throw new GalleonError(ErrorCode.FAILED_PRECONDITION, `namespace of volume ${volumeId} has more than ${maxNamespaceEntries} names`, { hint: 'back up the raw blocks of such a volume with a snapshot clone, or split it' });
      cursor = page.cursor;
    } while (cursor !== null);
  }
  if (entries.length === 0) return null;
  return { root: { mode: root.mode, uid: root.uid, gid: root.gid, atimeNs: root.atimeNs, mtimeNs: root.mtimeNs }, entries };
}

async function entryOf(api: SnapshotSourceApi, volumeId: string, parent: number, name: string, a: FsAttr): Promise<NamespaceEntry> {
  const e: NamespaceEntry = {
    parent, name, ino: a.ino, type: a.type, mode: a.mode, uid: a.uid, gid: a.gid, size: a.size, rdev: a.rdev, atimeNs: a.atimeNs, mtimeNs: a.mtimeNs,
  };
  if (a.type === 'symlink') e.target = await api.fsReadlink(volumeId, a.ino);
  if ((a.xattrCount ?? 0) > 0) {
    const xattrs: Record<string, string> = {};
    for (const n of await api.fsListxattr(volumeId, a.ino)) xattrs[n] = await api.fsGetxattr(volumeId, a.ino, n);
    e.xattrs = xattrs;
  }
  return e;
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
