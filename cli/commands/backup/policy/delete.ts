import { Args } from '@oclif/core';
import type { BackupPolicy } from '../../../../proto/metadata-types.js';
import { GalleonCommand } from '../../../lib/base-command.js';

export default class BackupPolicyDelete extends GalleonCommand {
  static override description = 'Delete a backup policy (its backups stay).';
  static override examples = ['<%= config.bin %> backup policy delete 1a2b3c4d'];
  static override args = { id: Args.string({ description: 'Policy id.', required: true }) };

  async run(): Promise<BackupPolicy> {
    const { args, flags } = await this.parse(BackupPolicyDelete);
    const p = await (await this.admin(flags)).route<BackupPolicy>('backupPolicyDelete', { id: args.id });
    this.print(`Backup policy ${p.id} deleted; its backups were kept.`);
    return p;
  }
}
