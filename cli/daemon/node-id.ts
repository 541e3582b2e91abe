/**
 * A node's identity lives in `<storage>/node-id`, written once: restarting with the same
 * storage keeps the same Raft member id. Asking for a different id on that storage is an error,
 * because the Raft log under it belongs to the old id.
 */
import { randomBytes } from 'node:crypto';
import { makeFolder } from '../lib/folder.js';
import { readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ErrorCode, GalleonError } from '../../proto/errors.js';

export const nodeIdFileName = 'node-id';

export async function resolveNodeId(storagePath: string, requested: string | null): Promise<string> {
  await makeFolder(storagePath, 'storage path');
  const file = join(storagePath, nodeIdFileName);
  let persisted: string | null = null;
  try {
    persisted = (await readFile(file, 'utf8')).trim();
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  if (persisted !== null && persisted !== '') {
    if (requested !== null && requested !== persisted) {
      throw new GalleonError(ErrorCode.FAILED_PRECONDITION, `storage ${storagePath} belongs to node ${persisted}, not ${requested}`, {
        hint: `drop --node-id, use --node-id ${persisted}, or point --storage-path at an empty directory`,
      });
    }
    return persisted;
  }
  const id = requested ?? `node-${randomBytes(4).toString('hex')}`;
  // Write-then-rename so a crash never leaves an empty id file behind.
  await writeFile(`${file}.tmp`, `${id}\n`);
  await rename(`${file}.tmp`, file);
  return id;
}
