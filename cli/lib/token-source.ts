/**
 * Which token the CLI sends (issue #12): `--token`, else GALLEON_TOKEN (oclif reads both into the
 * flag), else the admin token `galleon up` wrote to `<dir>/admin-token` (mode 0600) — so on the
 * machine of a local cluster, commands work as its admin without a flag. None: requests go
 * without one, and an authenticated daemon answers 401 with a hint.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';

export const adminTokenFileName = 'admin-token';

export async function resolveToken(flag: string | undefined, dir: string | undefined): Promise<string | undefined> {
  if (flag !== undefined && flag !== '') return flag.trim();
  if (dir === undefined) return undefined;
  try {
    const text = (await readFile(join(dir, adminTokenFileName), 'utf8')).trim();
    return text === '' ? undefined : text;
  } catch {
    return undefined;
  }
}
