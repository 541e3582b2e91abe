import { Flags } from '@oclif/core';
import { GalleonCommand } from '../../lib/base-command.js';
import type { BackupSummary } from '../../../dataplane/backup/service.js';

export default class BackupList extends GalleonCommand {
  static override description = 'List backups on every target: complete ones, and those running or never finished (with their progress).';
  static override examples = ['<%= config.bin %> backup list', '<%= config.bin %> backup list --volume db-data --json'];
  static override flags = { volume: Flags.string({ char: 'v', summary: 'Only the backups of this volume (name or id).' }) };

  async run(): Promise<BackupSummary[]> {
    const { flags } = await this.parse(BackupList);
    const all = await (await this.admin(flags)).route<BackupSummary[]>('backupList', {});
    const bs = flags.volume === undefined ? all : all.filter((b) => b.volume === flags.volume || b.volumeId === flags.volume);
    const { backupTable } = await import('../../lib/backup-views.js');
    this.print(bs.length === 0 ? 'No backups.' : backupTable(bs, Date.now()));
    return bs;
  }
}
