import { Args } from '@oclif/core';
import { GalleonCommand, yesFlag } from '../../lib/base-command.js';
import type { DeleteResult } from '../../../dataplane/backup/engine.js';

export default class BackupDelete extends GalleonCommand {
  static override description = 'Delete a backup (complete or never finished) and the stored blocks no other backup needs.';
  static override examples = ['<%= config.bin %> backup delete bk-0mabc1234ef --yes'];
  static override flags = { yes: yesFlag };
  static override args = { id: Args.string({ description: 'Backup id.', required: true }) };

  async run(): Promise<DeleteResult> {
    const { args, flags } = await this.parse(BackupDelete);
    await this.confirm(`delete backup ${args.id}`, `Delete backup ${args.id}?`, flags.yes);
    const r = await (await this.admin(flags)).route<DeleteResult>('backupDelete', { id: args.id });
    this.print(`Backup ${r.id} deleted; ${r.deletedObjects} stored blocks freed${r.collectionDeferred ? ' (freeing waits: another backup is running on the target)' : ''}.`);
    return r;
  }
}
