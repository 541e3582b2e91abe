import { Args } from '@oclif/core';
import type { Snapshot } from '../../../proto/metadata-types.js';
import { GalleonCommand } from '../../lib/base-command.js';

export default class SnapshotList extends GalleonCommand {
  static override description = 'List snapshots (of one volume when given), oldest first per volume.';
  static override examples = ['<%= config.bin %> snapshot list', '<%= config.bin %> snapshot list web-data --json'];
  static override args = { volume: Args.string({ description: 'Volume name or UUID.', required: false }) };

  async run(): Promise<Snapshot[]> {
    const { args, flags } = await this.parse(SnapshotList);
    const admin = await this.admin(flags);
    const snaps = args.volume === undefined ? await admin.route<Snapshot[]>('snapshotList', {}) : await admin.route<Snapshot[]>('volumeSnapshots', { ref: args.volume });
    const { snapshotTable } = await import('../../lib/views.js');
    this.print(snapshotTable(snaps));
    return snaps;
  }
}
