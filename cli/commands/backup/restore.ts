import { resolve } from 'node:path';
import { Args, Flags } from '@oclif/core';
import { GalleonCommand } from '../../lib/base-command.js';
import { usageError } from '../../lib/errors.js';
import type { JobView } from '../../../dataplane/backup/service.js';
import type { RestoreResult } from '../../../dataplane/backup/restore.js';

export default class BackupRestore extends GalleonCommand {
  static override description = 'Restore a backup into a NEW volume, checking every block against the backup\'s manifest; a file-system volume gets its tree back.';
  static override examples = [
    '<%= config.bin %> backup restore bk-0mabc1234ef --name db-data-restored',
    '<%= config.bin %> backup restore bk-0mabc1234ef --name db-data --source-key-file /secure/cluster-a.key   # a backup another cluster made',
  ];
  static override flags = {
    name: Flags.string({ char: 'n', summary: 'Name of the new volume.', required: true }),
    'source-key-file': Flags.string({
      summary: 'A backup made on ANOTHER cluster: that cluster\'s key file (its cluster.key), which wraps the backup\'s data keys. A path on the node that runs the restore.',
      description: 'Only the internal key provider\'s keys need it; a backup wrapped by a KMS key that this cluster also uses restores without it. The restored volume is sealed with this cluster\'s own key.',
    }),
    detach: Flags.boolean({ summary: 'Return once the job started (the new volume carries the label galleon.io/restoring until the restore is done).', default: false }),
  };
  static override args = { id: Args.string({ description: 'Backup id.', required: true }) };

  async run(): Promise<RestoreResult | JobView> {
    const { args, flags } = await this.parse(BackupRestore);
    const admin = await this.admin(flags);
    const keyFile = flags['source-key-file'];
    if (keyFile?.trim() === '') throw usageError('--source-key-file is empty', 'name the key file of the cluster that made the backup (its cluster.key), e.g. --source-key-file /secure/cluster-a.key');
    // Absolute: the daemon resolves it, and its working directory is not the caller's.
    const body = keyFile === undefined ? { name: flags.name } : { name: flags.name, sourceKeyFile: resolve(keyFile) };
    const job = await admin.route<JobView>('backupRestore', { id: args.id }, body);
    if (flags.detach) {
      this.print(`Restore of backup ${job.backupId} into ${flags.name} started (job ${job.id}).`);
      return job;
    }
    const { followJob, jobMode } = await import('../../lib/backup-views.js');
    const r = (await followJob(admin, job, jobMode(this.jsonEnabled()))).result as RestoreResult;
    this.print(`Restored backup ${r.backup} into volume ${r.volume.name}: ${r.blocks} blocks (${r.bytes} bytes) checked and written, ${r.files} files.`);
    return r;
  }
}
