import { Args, Flags } from '@oclif/core';
import type { Volume } from '../../../proto/metadata-types.js';
import { GalleonCommand } from '../../lib/base-command.js';
import { formatBytes, parseVolumeSize, roundingNote } from '../../lib/size.js';

export default class VolumeExpand extends GalleonCommand {
  static override description = 'Grow a volume to a new size (volumes never shrink).';
  static override examples = ['<%= config.bin %> volume expand web-data --size 2G'];
  static override args = { volume: Args.string({ description: 'Volume name or UUID.', required: true }) };
  static override flags = { size: Flags.string({ char: 's', summary: 'New total size with a K/M/G/T suffix.', required: true }) };

  async run(): Promise<Volume & { requestedSizeBytes?: number }> {
    const { args, flags } = await this.parse(VolumeExpand);
    const sizeBytes = parseVolumeSize(flags.size);
    const volume = await (await this.admin(flags)).route<Volume>('volumeExpand', { ref: args.volume }, { size: sizeBytes });
    const note = roundingNote(sizeBytes, volume);
    this.print(`Volume ${volume.name} is now ${formatBytes(volume.sizeBytes)}.${note === null ? '' : `\n${note}`}`);
    return note === null ? volume : { ...volume, requestedSizeBytes: sizeBytes };
  }
}
