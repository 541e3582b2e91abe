/**
 * What a backup reads: a small interface, so the engine does not care whether the blocks come
 * from a live volume (here) or from a snapshot (the snapshot work, issue #11's first half, adds
 * a source over its snapshot reads; `backup create` switches to it when snapshots land).
 *
 * `LiveVolumeSource` reads the volume as it is now. It is a crash-consistent copy ONLY of an
 * idle volume: blocks written while the backup runs may be caught half-way (some blocks old, some
 * new), and the namespace is read before the blocks. Back up an unmounted or quiet volume until
 * snapshots land.
 */
import { ErrorCode, isGalleonError } from '../../proto/errors.js';
import type { FsAttr, MetadataApi, Volume } from '../../proto/metadata-types.js';
import type { BlockClient } from '../client/block-client.js';
import type { NamespaceDump, NamespaceEntry, VolumeRecord } from './logic/manifest.js';

export interface SourceBlock {
  inode: number;
  blockNo: number;
  bytes: Buffer;
}

export interface BackupSource {
  readonly volume: VolumeRecord;
  readonly blockSizeBytes: number;
  /** The file tree (null for a volume whose tree is the empty root). */
  namespace(): Promise<NamespaceDump | null>;
  /** How many block addresses blocks() will probe (for progress: done/total). */
  probeCount(ns: NamespaceDump | null): number;
  /** Written blocks only: the raw device (inode 0) and every regular file's blocks. */
  blocks(ns: NamespaceDump | null, onProbe: (n: number) => void, signal: AbortSignal): AsyncIterable<SourceBlock>;
}

/** Reads in flight while probing (a never-written block answers BLOCK_NOT_FOUND). */
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

export class LiveVolumeSource implements BackupSource {
  readonly volume: VolumeRecord;
  readonly blockSizeBytes: number;

  constructor(private readonly api: MetadataApi, private readonly client: BlockClient, volume: Volume) {
    this.volume = volumeRecord(volume);
    this.blockSizeBytes = volume.blockSizeBytes;
  }

  async namespace(): Promise<NamespaceDump | null> {
    const root = await this.api.fsGetattr(this.volume.id, 1);
    const entries: NamespaceEntry[] = [];
    const queue = [1];
    for (let dir = queue.shift(); dir !== undefined; dir = queue.shift()) {
      let cursor: string | null = null;
      do {
        const page = await this.api.fsReaddir(this.volume.id, dir, cursor, readdirPageEntries);
        for (const e of page.entries) {
          entries.push(await this.entryOf(dir, e.name, e.attr));
          if (e.attr.type === 'dir') queue.push(e.attr.ino);
        }
        if (entries.length > maxNamespaceEntries) throw new Error(`namespace of ${this.volume.name} has more than ${maxNamespaceEntries} names`);
        cursor = page.cursor;
      } while (cursor !== null);
    }
    if (entries.length === 0) return null;
    return { root: { mode: root.mode, uid: root.uid, gid: root.gid, atimeNs: root.atimeNs, mtimeNs: root.mtimeNs }, entries };
  }

  private async entryOf(parent: number, name: string, a: FsAttr): Promise<NamespaceEntry> {
    const e: NamespaceEntry = {
      parent, name, ino: a.ino, type: a.type, mode: a.mode, uid: a.uid, gid: a.gid, size: a.size, rdev: a.rdev, atimeNs: a.atimeNs, mtimeNs: a.mtimeNs,
    };
    if (a.type === 'symlink') e.target = await this.api.fsReadlink(this.volume.id, a.ino);
    if ((a.xattrCount ?? 0) > 0) {
      const xattrs: Record<string, string> = {};
      for (const n of await this.api.fsListxattr(this.volume.id, a.ino)) xattrs[n] = await this.api.fsGetxattr(this.volume.id, a.ino, n);
      e.xattrs = xattrs;
    }
    return e;
  }

  probeCount(ns: NamespaceDump | null): number {
    return fileExtents(ns, this.blockSizeBytes, this.volume.sizeBytes).reduce((n, f) => n + f.blocks, 0);
  }

  async *blocks(ns: NamespaceDump | null, onProbe: (n: number) => void, signal: AbortSignal): AsyncIterable<SourceBlock> {
    for (const f of fileExtents(ns, this.blockSizeBytes, this.volume.sizeBytes)) {
      for (let start = 0; start < f.blocks; start += probeBatchBlocks) {
        signal.throwIfAborted();
        const nos = Array.from({ length: Math.min(probeBatchBlocks, f.blocks - start) }, (_, i) => start + i);
        const got = await Promise.all(nos.map((b) => this.readOrNull(f.inode, b)));
        onProbe(nos.length);
        for (const [i, data] of got.entries()) if (data !== null) yield { inode: f.inode, blockNo: nos[i] ?? 0, bytes: data };
      }
    }
  }

  private async readOrNull(inode: number, blockNo: number): Promise<Buffer | null> {
    try {
      return (await this.client.readBlock(this.volume.id, inode, blockNo)).data;
    } catch (err) {
      if (isGalleonError(err, ErrorCode.BLOCK_NOT_FOUND)) return null;
      throw err;
    }
  }
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
