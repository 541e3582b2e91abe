import { Args } from '@oclif/core';
import type { Snapshot } from '../../../proto/metadata-types.js';
import { GalleonCommand } from '../../lib/base-command.js';

export default class SnapshotGet extends GalleonCommand {
  static override description = 'Show a snapshot by name or UUID, with the clones that read through it.';
  static override examples = ['<%= config.bin %> snapshot get db-nightly', '<%= config.bin %> snapshot get db-nightly --json'];
  static override args = { snapshot: Args.string({ description: 'Snapshot name or UUID.', required: true }) };

  async run(): Promise<Snapshot> {
    const { args, flags } = await this.parse(SnapshotGet);
    const snap = await (await this.admin(flags)).route<Snapshot>('snapshotGet', { ref: args.snapshot });
    const { snapshotDetails } = await import('../../lib/views.js');
    this.print(snapshotDetails(snap));
    return snap;
  }
}
