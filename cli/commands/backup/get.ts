import { Args } from '@oclif/core';
import { GalleonCommand } from '../../lib/base-command.js';
import type { BackupSummary } from '../../../dataplane/backup/service.js';

export default class BackupGet extends GalleonCommand {
  static override description = 'Show one backup.';
  static override examples = ['<%= config.bin %> backup get bk-0mabc1234ef'];
  static override args = { id: Args.string({ description: 'Backup id.', required: true }) };

  async run(): Promise<BackupSummary> {
    const { args, flags } = await this.parse(BackupGet);
    const b = await (await this.admin(flags)).route<BackupSummary>('backupGet', { id: args.id });
    const { backupDetails } = await import('../../lib/backup-views.js');
    this.print(backupDetails(b));
    return b;
  }
}
