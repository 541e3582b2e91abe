import type { BackupTarget } from '../../../proto/metadata-types.js';
import { GalleonCommand } from '../../lib/base-command.js';

export default class BackupTargetList extends GalleonCommand {
  static override description = 'List backup targets (secret keys are never shown).';
  static override examples = ['<%= config.bin %> backup-target list'];

  async run(): Promise<BackupTarget[]> {
    const { flags } = await this.parse(BackupTargetList);
    const ts = await (await this.admin(flags)).route<BackupTarget[]>('backupTargetList', {});
    const { targetTable } = await import('../../lib/backup-views.js');
    this.print(ts.length === 0 ? 'No backup targets. Add one with: galleon backup-target add NAME --dir PATH' : targetTable(ts));
    return ts;
  }
}
