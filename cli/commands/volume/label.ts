import { Args } from '@oclif/core';
import type { Volume } from '../../../proto/metadata-types.js';
import { GalleonCommand } from '../../lib/base-command.js';
import { parseLabelChanges } from '../../lib/labels.js';
import { formatLabels } from '../../lib/format.js';

export default class VolumeLabel extends GalleonCommand {
  static override description = 'Set (key=value) or remove (key-) labels on a volume.';
  static override examples = ['<%= config.bin %> volume label web-data team=web tier=gold', '<%= config.bin %> volume label web-data tier-'];
  static override strict = false;
  static override args = {
    volume: Args.string({ description: 'Volume name or UUID.', required: true }),
    changes: Args.string({ description: 'key=value to set, key- to remove (one or more).', required: true }),
  };

  async run(): Promise<Volume> {
    const { args, argv, flags } = await this.parse(VolumeLabel);
    const changes = parseLabelChanges((argv as string[]).slice(1));
    const volume = await (await this.admin(flags)).route<Volume>('volumeLabel', { ref: args.volume }, { labels: changes });
    this.print(`Volume ${volume.name} labels: ${formatLabels(volume.labels)}`);
    return volume;
  }
}
