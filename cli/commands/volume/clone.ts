import { Args, Flags } from '@oclif/core';
import type { Volume } from '../../../proto/metadata-types.js';
import { GalleonCommand } from '../../lib/base-command.js';

export default class VolumeClone extends GalleonCommand {
  static override description = 'Create a volume from a snapshot: it reads through to the snapshot and writes only its own blocks (instant at any size).';
  static override examples = ['<%= config.bin %> volume clone db-nightly --name db-test'];
  static override args = { snapshot: Args.string({ description: 'Snapshot name or UUID.', required: true }) };
  static override flags = { name: Flags.string({ char: 'n', summary: 'Name of the new volume.', required: true }) };

  async run(): Promise<Volume> {
    const { args, flags } = await this.parse(VolumeClone);
    const volume = await (await this.admin(flags)).route<Volume>('volumeClone', { ref: args.snapshot }, { name: flags.name });
    this.print(`Volume ${volume.name} (${volume.id}) cloned from snapshot ${args.snapshot}.`);
    return volume;
  }
}
