import { Args } from '@oclif/core';
import type { BackupTarget } from '../../../proto/metadata-types.js';
import { GalleonCommand } from '../../lib/base-command.js';

export default class BackupTargetRemove extends GalleonCommand {
  static override description = 'Forget a backup target (what it holds stays where it is; refused while a policy uses it).';
  static override examples = ['<%= config.bin %> backup-target remove nightly'];
  static override args = { name: Args.string({ description: 'Target name.', required: true }) };

  async run(): Promise<BackupTarget> {
    const { args, flags } = await this.parse(BackupTargetRemove);
    const t = await (await this.admin(flags)).route<BackupTarget>('backupTargetRemove', { name: args.name });
    this.print(`Backup target ${t.name} removed; the backups it holds were left in place.`);
    return t;
  }
}
