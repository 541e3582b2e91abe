import { Args } from '@oclif/core';
import { GalleonCommand } from '../../lib/base-command.js';
import type { JobView } from '../../../dataplane/backup/service.js';

export default class BackupCancel extends GalleonCommand {
  static override description = 'Cancel a running backup, restore or verification (by job id or backup id) on the daemon that runs it.';
  static override examples = ['<%= config.bin %> backup cancel bk-0mabc1234ef'];
  static override args = { id: Args.string({ description: 'Job id or backup id.', required: true }) };

  async run(): Promise<JobView> {
    const { args, flags } = await this.parse(BackupCancel);
    const j = await (await this.admin(flags)).route<JobView>('backupCancel', { id: args.id });
    this.print(`Cancelling ${j.kind} ${j.backupId} (job ${j.id}); a cancelled backup is never listed complete.`);
    return j;
  }
}
