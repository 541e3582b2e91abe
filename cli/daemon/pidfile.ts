/**
 * `<storage>/galleon.pid`: written by the daemon once it owns the storage path, removed on a
 * graceful stop. A live pid there means the storage is taken (two daemons on one LevelDB would
 * fail anyway, with a worse message).
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ErrorCode, GalleonError } from '../../proto/errors.js';

export const pidFileName = 'galleon.pid';
/** Where a detached daemon's output goes, beside its pid file. */
export const logFileName = 'galleon.log';

export function isProcessAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

export async function readPidFile(storagePath: string): Promise<number | null> {
  try {
    const pid = Number((await readFile(join(storagePath, pidFileName), 'utf8')).trim());
    return Number.isInteger(pid) && pid > 0 ? pid : null;
  } catch {
    return null;
  }
}

export async function assertStorageFree(storagePath: string): Promise<void> {
  const pid = await readPidFile(storagePath);
  if (pid !== null && pid !== process.pid && isProcessAlive(pid)) {
    throw new GalleonError(ErrorCode.FAILED_PRECONDITION, `a daemon (pid ${pid}) already runs on ${storagePath}`, {
      hint: 'stop it with `galleon daemon stop`, or use another --storage-path',
    });
  }
}
