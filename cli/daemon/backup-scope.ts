/**
 * Which backups a tenant's user may touch (issue #12). The backup service runs with the node's
 * credential and reads the targets, which hold every tenant's backups; so the admin routes check
 * the tenant recorded in the backup's manifest (its source volume's, `VolumeRecord.tenant`) before
 * they act. Another tenant's backup, or one with no tenant, answers exactly as a missing one.
 */
import { markDenied } from '../../proto/auth.js';
import { ErrorCode, isGalleonError } from '../../proto/errors.js';
import { backupNotFound, type BackupService } from '../../dataplane/backup/service.js';

/** Whether a caller of `tenant` (null: tenantless, sees all) owns a backup recorded with `owner`. */
export function ownsBackup(tenant: string | null, owner: string | null | undefined): boolean {
  return tenant === null || owner === tenant;
}

/**
 * Throws the not-found of a missing backup unless the caller's tenant owns backup `id`. An
 * incomplete or damaged backup fails `find` with its own line; a tenant gets that line only for
 * its own (the `running/` record carries the tenant; a damaged manifest is no tenant's).
 */
export async function requireOwnBackup(backups: Pick<BackupService, 'find' | 'list'>, tenant: string | null, id: string): Promise<void> {
  if (tenant === null) return;
  let owner: string | undefined;
  try {
    owner = (await backups.find(id)).volume.tenant;
  } catch (err) {
    if (!isGalleonError(err, ErrorCode.BACKUP_NOT_FOUND) && !isGalleonError(err, ErrorCode.CHECKSUM_MISMATCH)) throw err;
    const listed = (await backups.list()).filter((b) => b.id === id);
    if (listed.some((b) => ownsBackup(tenant, b.tenant))) throw err;
    throw listed.length > 0 ? markDenied(backupNotFound(id)) : backupNotFound(id);
  }
  if (!ownsBackup(tenant, owner)) throw markDenied(backupNotFound(id));
}
