import { Args } from '@oclif/core';
import type { Volume } from '../../../proto/metadata-types.js';
import { GalleonCommand, yesFlag } from '../../lib/base-command.js';

export default class VolumeDelete extends GalleonCommand {
  static override description = 'Delete a volume by name or UUID.';
  static override examples = ['<%= config.bin %> volume delete web-data', '<%= config.bin %> volume delete web-data --yes'];
  static override flags = { yes: yesFlag };
  static override args = { volume: Args.string({ description: 'Volume name or UUID.', required: true }) };

  async run(): Promise<Volume> {
    const { args, flags } = await this.parse(VolumeDelete);
    await this.confirm(`delete volume ${args.volume}`, `Delete volume ${args.volume} and all its data?`, flags.yes);
    const volume = await (await this.admin(flags)).route<Volume>('volumeDelete', { ref: args.volume });
    this.print(`Volume ${volume.name} (${volume.id}) deleted.`);
    return volume;
  }
}
