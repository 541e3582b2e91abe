import type { Volume } from '../../../proto/metadata-types.js';
import { GalleonCommand } from '../../lib/base-command.js';

export default class VolumeList extends GalleonCommand {
  static override description = 'List all volumes.';
  static override examples = ['<%= config.bin %> volume list', '<%= config.bin %> volume list --json'];

  async run(): Promise<Volume[]> {
    const { flags } = await this.parse(VolumeList);
    const volumes = await (await this.admin(flags)).route<Volume[]>('volumeList', {});
    const { volumeTable } = await import('../../lib/views.js');
    this.print(volumeTable(volumes));
    return volumes;
  }
}
