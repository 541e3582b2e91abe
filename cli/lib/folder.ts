/**
 * Creating the folders a daemon or `galleon up` owns, with one clear line instead of Node's
 * `EEXIST: file already exists, mkdir '…'` when the path cannot be a folder.
 */
import { mkdir } from 'node:fs/promises';
import { ErrorCode, GalleonError } from '../../proto/errors.js';

const reasons: Record<string, [what: string, hint: string]> = {
  EEXIST: ['a file (not a folder) is in the way', 'choose a path that is a folder or does not exist yet'],
  ENOTDIR: ['part of the path is a file, not a folder', 'choose a path whose parents are folders'],
  ENOENT: ['part of the path does not exist and cannot be created there', 'create the parent folder first, or choose another path'],
  EACCES: ['permission denied', 'choose a folder this user may write, or run as its owner'],
  EPERM: ['not permitted', 'choose a folder this user may write, or run as its owner'],
  EROFS: ['the file system is read-only', 'choose a folder on a writable file system'],
  ENOSPC: ['the disk is full', 'free space or choose another disk'],
};

/** The GalleonError for a failed folder operation on `path` (`what`: "storage path", "cluster folder"). */
export function folderError(err: unknown, what: string, path: string): GalleonError {
  const code = (err as NodeJS.ErrnoException | null)?.code ?? 'EIO';
  const [why, hint] = reasons[code] ?? [`error ${code}`, 'check the path and its permissions'];
  return new GalleonError(code === 'ENOSPC' ? ErrorCode.NO_SPACE : ErrorCode.INVALID_ARGUMENT, `cannot use ${path} as the ${what}: ${why}`, { hint, cause: err });
}

export async function makeFolder(path: string, what: string): Promise<void> {
  try {
    await mkdir(path, { recursive: true });
  } catch (err) {
    throw folderError(err, what, path);
  }
}
