/**
 * `<storage>/galleon.pid`: written by the daemon once it owns the storage path, removed on a
 * graceful stop. A live pid there means the storage is taken (two daemons on one LevelDB would
 * fail anyway, with a worse message).
 */
import { readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ErrorCode, GalleonError } from '../../proto/errors.js';

export const pidFileName = 'galleon.pid';
/** Where a detached daemon's output goes, beside its pid file. */
export const logFileName = 'galleon.log';

/**
 * Whether the process runs. A process killed with SIGKILL stays a zombie until its parent (here
 * init, for a detached daemon) reaps it; signal 0 still reaches a zombie, so without the state
 * check `galleon up` took a killed node for a running one and did not restart it (seen in
 * the backup resume test: up returned 0, the node never came back).
 */
export function isProcessAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
  return !isZombie(pid);
}

/** Linux: state Z (zombie) or X (dead) in /proc/<pid>/stat; elsewhere (no /proc) false. */
function isZombie(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name in parentheses may hold spaces and parentheses: the state follows the last ')'.
    const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
    return state === 'Z' || state === 'X';
  } catch {
    return false;
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
