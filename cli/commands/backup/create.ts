import { Args, Flags } from '@oclif/core';
import { GalleonCommand } from '../../lib/base-command.js';
import type { BackupResult } from '../../../dataplane/backup/engine.js';
import type { JobView } from '../../../dataplane/backup/service.js';

export default class BackupCreate extends GalleonCommand {
  static override description = 'Back up a volume to a target, read at a snapshot (one it takes and deletes after, or --snapshot): full, incremental (blocks changed since its last backup) or differential (since its last full).';
  static override examples = [
    '<%= config.bin %> backup create db-data --target nightly',
    '<%= config.bin %> backup create db-data --target offsite --strategy full',
    '<%= config.bin %> backup create db-data --target offsite --snapshot db-data-monday   # back up an existing snapshot',
    '<%= config.bin %> backup create db-data --target nightly --detach   # print the job and return',
  ];
  static override flags = {
    target: Flags.string({ char: 't', summary: 'Backup target name (galleon backup-target list).', required: true }),
    strategy: Flags.string({ summary: 'What to copy.', options: ['full', 'incremental', 'differential'], default: 'incremental' }),
    snapshot: Flags.string({ summary: 'Back up this snapshot of the volume (kept); default: take one now and delete it when done.' }),
    detach: Flags.boolean({ summary: 'Return once the job started (follow it with galleon backup list).', default: false }),
  };
  static override args = { volume: Args.string({ description: 'Volume name or id.', required: true }) };

  async run(): Promise<BackupResult | JobView> {
    const { args, flags } = await this.parse(BackupCreate);
    const admin = await this.admin(flags);
    const job = await admin.route<JobView>('backupCreate', {}, { volume: args.volume, target: flags.target, strategy: flags.strategy, ...(flags.snapshot === undefined ? {} : { snapshot: flags.snapshot }) });
    if (flags.detach) {
      this.print(`Backup ${job.backupId} of ${job.volume} started (job ${job.id}).`);
      return job;
    }
    const { followJob, jobMode } = await import('../../lib/backup-views.js');
    const done = await followJob(admin, job, jobMode(this.jsonEnabled()));
    const r = done.result as BackupResult;
    const fell = r.strategy !== r.requestedStrategy ? ` (${r.requestedStrategy} had no earlier backup to compare with)` : '';
    this.print(`Backup ${r.id} of ${r.volume} complete: ${r.strategy}${fell}, ${r.blocks} blocks, ${r.changedBlocks} changed, ${r.uploadedBlocks} uploaded (${r.uploadedBytes} bytes) to ${r.target}.`);
    return r;
  }
}
