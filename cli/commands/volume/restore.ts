import { Args, Flags } from '@oclif/core';
import type { Volume } from '../../../proto/metadata-types.js';
import { GalleonCommand, yesFlag } from '../../lib/base-command.js';

export default class VolumeRestore extends GalleonCommand {
  static override description = 'Roll a volume back in place to one of its snapshots (instant). Refused while it is mounted anywhere; the blocks of files made since are freed in the background.';
  static override examples = ['<%= config.bin %> volume restore db --snapshot db-nightly --yes'];
  static override args = { volume: Args.string({ description: 'Volume name or UUID.', required: true }) };
  static override flags = { snapshot: Flags.string({ char: 's', summary: 'Snapshot of this volume to roll back to.', required: true }),
    wait: Flags.boolean({ summary: 'Answer once the blocks of files made since the snapshot are freed (default: in the background).', default: false }),
    yes: yesFlag,
  };

  async run(): Promise<Volume> {
    const { args, flags } = await this.parse(VolumeRestore);
    await this.confirm(`restore volume ${args.volume}`, `Roll volume ${args.volume} back to snapshot ${flags.snapshot}? Writes made since are hidden.`, flags.yes);
    const volume = await (await this.admin(flags)).route<Volume & { freed?: { blocks: number } }>('volumeRestore', { ref: args.volume }, { snapshot: flags.snapshot, wait: flags.wait });
    this.print(`Volume ${volume.name} restored to snapshot ${flags.snapshot}.${volume.freed === undefined ? '' : ` Freed ${volume.freed.blocks} block(s) of files made since.`}`);
    return volume;
  }
}
