import { Args } from '@oclif/core';
import type { Volume } from '../../../proto/metadata-types.js';
import type { OperationView } from '../../daemon/operations.js';
import { GalleonCommand } from '../../lib/base-command.js';

export default class VolumeGet extends GalleonCommand {
  static override description = 'Show a volume by name or UUID.';
  static override examples = ['<%= config.bin %> volume get web-data', '<%= config.bin %> volume get a1b2c3d4-e5f6-7890-abcd-ef1234567890 --json'];
  static override args = { volume: Args.string({ description: 'Volume name or UUID.', required: true }) };

  async run(): Promise<Volume & { operation?: OperationView }> {
    const { args, flags } = await this.parse(VolumeGet);
    const volume = await (await this.admin(flags)).route<Volume & { operation?: OperationView }>('volumeGet', { ref: args.volume });
    const { volumeDetails } = await import('../../lib/views.js');
    this.print(volumeDetails(volume));
    if (volume.operation !== undefined) {
      const { progressText } = await import('../../lib/backup-views.js');
      // The freeing after a restore this daemon ran (cli/daemon/operations.ts).
      this.print(`Restore freeing: ${volume.operation.state}, ${progressText(volume.operation.progress, Date.now())} ${volume.operation.unit} (galleon operation get ${volume.operation.id})`);
    }
    return volume;
  }
}
