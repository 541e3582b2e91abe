/**
 * `vfs status VOLUME`: the mount's own counters (pending writes, last sync, open handles) and the
 * namespace's (bytes, inodes), with files and directories counted by a walk of the tree bounded
 * to `maxStatusWalkEntries` entries (`counted: 'partial'` past it).
 */
import type { FsApi } from '../../proto/metadata-types.js';
import type { MountInfo, VfsStatus } from '../../proto/vfs-types.js';
export type { VfsStatus } from '../../proto/vfs-types.js';
import type { VolumeMount } from '../fs/index.js';

export const maxStatusWalkEntries = 100_000;
const walkPageEntries = 1024;


async function countTree(api: Pick<FsApi, 'fsReaddir'>, volumeId: string, session: string | undefined): Promise<{ files: number; directories: number; counted: 'exact' | 'partial' }> {
  let files = 0;
  let directories = 1;
  let seen = 0;
  const stack = [1];
  while (stack.length > 0) {
    const dir = stack.pop() ?? 1;
    let cursor: string | null = null;
    do {
      // As the mount's session: a directory it holds the delegation of is read, not recalled
      // (its buffered new files are counted by the mount's counters, not here).
      const page = await api.fsReaddir(volumeId, dir, cursor, walkPageEntries, session === undefined ? undefined : { session });
      for (const e of page.entries) {
        seen++;
        if (e.attr.type === 'dir') { directories++; stack.push(e.attr.ino); } else files++;
      }
      cursor = page.cursor;
      if (seen >= maxStatusWalkEntries) return { files, directories, counted: 'partial' };
    } while (cursor !== null);
  }
  return { files, directories, counted: 'exact' };
}

export async function vfsStatus(api: Pick<FsApi, 'fsReaddir' | 'fsStatfs'>, info: MountInfo, mount: VolumeMount): Promise<VfsStatus> {
  const c = mount.counters();
  const [fsStat, tree] = await Promise.all([api.fsStatfs(info.volumeId), countTree(api, info.volumeId, mount.session?.())]);
  return {
    ...info, ...tree, usedBytes: fsStat.usedBytes, totalBytes: fsStat.totalBytes, inodes: fsStat.inodes,
    openHandles: c.openHandles, pendingWriteBytes: c.pendingWriteBytes, lastSyncMs: c.lastSyncMs,
    namespaceWrites: c.namespaceWrites, pendingCloses: c.pendingCloses, writebackFiles: c.writebackFiles, writebackBytes: c.writebackBytes,
    ...(c.fuseRequests === undefined ? {} : { fuseRequests: c.fuseRequests }),
    readCache: c.readCache,
  };
}
